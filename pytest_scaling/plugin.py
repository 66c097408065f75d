"""The pytest plugin (entry point ``pytest11: scaling``): options, the ``scaling_sweep`` fixture, report
collection (xdist workers included) and the reporters. The work happens in ``runners``, ``gate`` and ``reports``.

Nothing heavy is imported until a scaling test runs, so the plugin costs nothing elsewhere.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .reports.formats import FORMATS
from .runners.ray_address import CONNECT_TIMEOUT
from .runners.tracking import TRACKERS
from .training.topology import launch_rank
from .values import argument, multipliers, positive_number, whole_number

_SEEDS_HELP = "seeds per size for sweeps that give a count (seeds=2); explicit seed lists are kept"
_PATH_OPTIONS = ("--scaling-baselines", "--scaling-cache", *(f.option for f in FORMATS), "--scaling-tracker-dir")


def _int_at_least(minimum: int):
    return argument(lambda text: whole_number(text, minimum))


_lr_grid = argument(multipliers)


def _workers(text: str) -> int | str:
    """``auto`` or an integer >= 1."""
    if text.strip() == "auto":
        return "auto"
    try:
        return _int_at_least(1)(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected auto or an integer >= 1, got {text!r}") from None


_seconds = argument(positive_number, "expected a number of seconds > 0, got {text!r}")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("scaling", "scaling-law regression tests (pytest-scaling)")
    group.addoption("--scaling", action="store_true", help="run tests marked 'scaling' (skipped otherwise)")
    group.addoption("--scaling-only", action="store_true", help="run only tests marked 'scaling' (implies --scaling)")
    group.addoption("--scaling-update", action="store_true",
                    help="record missing baselines; re-record baselines, each by the test that recorded it "
                    "(implies --scaling)")  # fmt: skip
    group.addoption("--scaling-allow-diverged", action="store_true",
                    help="record baselines even when some of their runs diverged")  # fmt: skip
    group.addoption("--scaling-retrain", action="store_true",
                    help="retrain every run once, ignoring the run cache's earlier entries")  # fmt: skip
    group.addoption("--scaling-baselines", metavar="DIR",
                    help="baseline directory (default: scaling_baselines/); write --scaling-baselines=DIR")  # fmt: skip
    group.addoption("--scaling-cache", metavar="DIR",
                    help="run cache directory (default: .scaling/); write --scaling-cache=DIR")  # fmt: skip
    group.addoption("--scaling-seeds", metavar="N", type=_int_at_least(1), help=_SEEDS_HELP)
    group.addoption("--scaling-max-params", metavar="N", type=_int_at_least(1),
                    help="skip sizes with more non-embedding parameters (small CI runners)")  # fmt: skip
    group.addoption("--scaling-device", choices=("auto", "cpu", "cuda"), help="training device (default: auto)")
    group.addoption("--scaling-workers", metavar="N", type=_workers,
                    help="processes that train a sweep's runs side by side on a CPU (default: auto)")  # fmt: skip
    group.addoption("--scaling-backend", choices=("local", "ray"),
                    help="where a sweep's runs train: local (the default) or ray (Ray tasks)")  # fmt: skip
    group.addoption("--scaling-ray-address", metavar="ADDR",
                    help="the Ray cluster (default: $RAY_ADDRESS, else a local instance for the session)")  # fmt: skip
    group.addoption("--scaling-ray-timeout", metavar="SECONDS", type=_seconds,
                    help="how long the Ray cluster's address may take to accept a connection before the sweep "
                         f"fails (default: {CONNECT_TIMEOUT:g})")  # fmt: skip
    group.addoption("--scaling-ray-cpus", metavar="N", type=_int_at_least(1),
                    help="CPUs each run's Ray task asks for when it trains on CPUs (default: 1)")  # fmt: skip
    group.addoption("--scaling-lr-grid", metavar="M,M,...", type=_lr_grid,
                    help="search each size's learning rate over these multipliers of the rule, e.g. 0.25,0.5,1,2 "
                         "(for sweeps that do not give lr_grid)")  # fmt: skip
    group.addoption("--scaling-tracker", choices=tuple(TRACKERS),
                    help="log every run's learning curve to this experiment tracker (offline)")
    group.addoption("--scaling-tracker-dir", metavar="DIR",
                    help="where the tracker writes (default: .scaling-runs beside the run cache)")
    for report_format in FORMATS:
        group.addoption(report_format.option, metavar=report_format.metavar, help=report_format.help)
    parser.addini("scaling_baselines", "baseline directory, relative to the rootdir", default="scaling_baselines")
    parser.addini("scaling_cache", "run cache directory, relative to the rootdir", default=".scaling")
    parser.addini("scaling_device", "training device: auto, cpu or cuda", default="auto")
    parser.addini("scaling_max_params", "skip sizes with more non-embedding parameters", default="")
    parser.addini("scaling_workers", "processes that train a sweep's runs side by side: auto or N", default="auto")
    parser.addini("scaling_backend", "where a sweep's runs train: local or ray", default="local")
    parser.addini("scaling_ray_address", "the Ray cluster's address (default: $RAY_ADDRESS, else local)", default="")
    parser.addini("scaling_ray_cpus", "CPUs each run's Ray task asks for on CPUs", default="1")
    parser.addini("scaling_ray_timeout", "seconds the Ray cluster's address may take to accept a connection",
                  default=f"{CONNECT_TIMEOUT:g}")  # fmt: skip
    parser.addini("scaling_tracker", "experiment tracker for every run's curve: tensorboard, mlflow or wandb",
                  default="")
    parser.addini("scaling_tracker_dir", "where the tracker writes, relative to the rootdir", default="")
    parser.addini("scaling_lr_grid", "learning-rate multipliers each size searches, e.g. 0.25,0.5,1,2", default="")


@dataclass
class ScalingSession:
    """The run's scaling state (kept in ``config.stash``)."""

    enabled: bool
    update: bool
    allow_diverged: bool
    retrain: bool
    baselines: Path
    cache: Path
    device: str
    seeds: int | None
    max_params: int | None
    workers: int | str
    backend: object  # "local" or a RayBackend
    lr_grid: list[float] | None
    writer: bool
    tracker: str | None = None
    tracker_dir: Path | None = None
    started: float = field(default_factory=time.perf_counter)
    started_at: float = field(default_factory=time.time)
    reports: list = field(default_factory=list)
    written: list = field(default_factory=list)
    errors: list = field(default_factory=list)


SESSION = pytest.StashKey[ScalingSession]()


def _resolve(config: pytest.Config, option: str, ini: str) -> Path:
    value = config.getoption(option) or config.getini(ini)
    path = Path(value)
    return path if path.is_absolute() else Path(config.rootpath) / path


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "scaling: a scaling-law test; runs only under --scaling")
    device = config.getoption("scaling_device") or config.getini("scaling_device")
    if device not in ("auto", "cpu", "cuda"):
        raise pytest.UsageError(f"scaling_device must be auto, cpu or cuda, got {device!r}")
    max_params = config.getoption("scaling_max_params")
    if max_params is None and config.getini("scaling_max_params"):
        try:
            max_params = _int_at_least(1)(config.getini("scaling_max_params"))
        except argparse.ArgumentTypeError as exc:
            raise pytest.UsageError(f"scaling_max_params: {exc}") from None
    workers = config.getoption("scaling_workers")
    if workers is None:
        try:
            workers = _workers(config.getini("scaling_workers"))
        except argparse.ArgumentTypeError as exc:
            raise pytest.UsageError(f"scaling_workers: {exc}") from None
    backend = _backend(config)
    lr_grid = config.getoption("scaling_lr_grid")
    if lr_grid is None and config.getini("scaling_lr_grid"):
        try:
            lr_grid = _lr_grid(config.getini("scaling_lr_grid"))
        except argparse.ArgumentTypeError as exc:
            raise pytest.UsageError(f"scaling_lr_grid: {exc}") from None
    update = config.getoption("scaling_update")
    config.stash[SESSION] = ScalingSession(
        enabled=config.getoption("scaling") or config.getoption("scaling_only") or update,
        update=update,
        allow_diverged=config.getoption("scaling_allow_diverged"),
        retrain=config.getoption("scaling_retrain"),
        baselines=_resolve(config, "scaling_baselines", "scaling_baselines"),
        cache=_resolve(config, "scaling_cache", "scaling_cache"),
        device=device,
        seeds=config.getoption("scaling_seeds"),
        max_params=max_params,
        workers=workers,
        backend=backend,
        lr_grid=lr_grid,
        writer=launch_rank() == 0,  # torchrun: only rank 0 writes and reports
    )
    _tracker(config, config.stash[SESSION])
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and "scaling_started_at" in workerinput:  # an xdist worker: the controller's start
        config.stash[SESSION].started_at = workerinput["scaling_started_at"]
    if workerinput is None and config.stash[SESSION].writer:
        config.pluginmanager.register(WorkerProgress(config), "scaling-worker-progress")


def _tracker(config: pytest.Config, state: ScalingSession) -> None:
    """The session's tracker and its directory, checked before anything trains."""
    tracker = config.getoption("scaling_tracker") or config.getini("scaling_tracker") or None
    if tracker is None:
        return
    from .errors import ScalingError
    from .runners.tracking import default_directory, require_tracker

    try:
        require_tracker(tracker)
    except ScalingError as exc:
        raise pytest.UsageError(f"--scaling-tracker: {exc}") from None
    state.tracker = tracker
    if config.getoption("scaling_tracker_dir") or config.getini("scaling_tracker_dir"):
        state.tracker_dir = _resolve(config, "scaling_tracker_dir", "scaling_tracker_dir")
    else:
        state.tracker_dir = default_directory(state.cache)


def _backend(config: pytest.Config) -> object:
    """``"local"``, or the :class:`~pytest_scaling.runners.ray_backend.RayBackend` the options describe."""
    backend = config.getoption("scaling_backend") or config.getini("scaling_backend")
    if backend not in ("local", "ray"):
        raise pytest.UsageError(f"scaling_backend must be local or ray, got {backend!r}")
    if backend == "local":
        return backend
    from .errors import ScalingError
    from .runners.ray_backend import RayBackend, ray_or_error

    try:
        ray_or_error()
        cpus = config.getoption("scaling_ray_cpus") or _int_at_least(1)(config.getini("scaling_ray_cpus"))
        timeout = config.getoption("scaling_ray_timeout") or _seconds(config.getini("scaling_ray_timeout"))
    except (ScalingError, argparse.ArgumentTypeError) as exc:
        raise pytest.UsageError(f"--scaling-backend ray: {exc}") from None
    address = config.getoption("scaling_ray_address") or config.getini("scaling_ray_address") or None
    if getattr(config, "workerinput", None) is not None and not (address or os.environ.get("RAY_ADDRESS")):
        raise pytest.UsageError("--scaling-backend ray under pytest-xdist would start a Ray instance per worker: "
                                "start one (`ray start --head`), pass --scaling-ray-address, or drop -n")  # fmt: skip
    return RayBackend(address, cpus, timeout)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Shut down a local Ray instance this session started."""
    state = config.stash.get(SESSION, None)
    if state is not None and state.backend != "local":
        from .runners.ray_backend import shutdown

        shutdown()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    state = config.stash[SESSION]
    if config.getoption("scaling_only"):
        keep = [item for item in items if item.get_closest_marker("scaling")]
        dropped = [item for item in items if not item.get_closest_marker("scaling")]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = keep
    if not state.enabled:
        skip = pytest.mark.skip(reason="needs --scaling")
        for item in items:
            if item.get_closest_marker("scaling"):
                item.add_marker(skip)
    else:
        _check_rootdir(config, [item for item in items if item.get_closest_marker("scaling")])


def _check_rootdir(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Refuse baselines under a rootdir that does not hold the scaling tests: pytest reads a path option's
    value written with a space (``--scaling-cache /other/project/.scaling``) as a path to test, and may
    take another project as its rootdir, whose baselines would then be read and written."""
    if Path(config.getoption("scaling_baselines") or config.getini("scaling_baselines")).is_absolute():
        return  # an explicit directory, not one found through the rootdir
    outside = sorted({str(item.path) for item in items if not item.path.is_relative_to(config.rootpath)})
    if not outside:
        return
    args = list(config.invocation_params.args)
    spaced = [f"{a} {b}" for a, b in zip(args, args[1:], strict=False) if a in _PATH_OPTIONS]
    hint = (f"; pytest read the value of `{spaced[0]}` as a path to test: write `{spaced[0].replace(' ', '=', 1)}`"
            if spaced else "; pass --rootdir=DIR or --scaling-baselines=DIR")  # fmt: skip
    raise pytest.UsageError(
        f"pytest-scaling: the rootdir {config.rootpath} does not contain the scaling test {outside[0]}, so its "
        f"baselines would be read from and written to {config.stash[SESSION].baselines}{hint}"
    )


@pytest.fixture
def scaling_sweep(request: pytest.FixtureRequest):
    """``scaling_sweep(factory, sizes=..., tokens_per_param=... | flops=..., seeds=1, data=None, **options)``
    trains (through the run cache) and returns a :class:`~pytest_scaling.runners.records.SweepResult` that the
    ``assert_*`` helpers compare with a named baseline. ``options``: ``workers``, ``lr_grid`` and trainer
    options; a test's ``device``, ``workers`` or ``lr_grid`` wins over ``--scaling-device`` /
    ``--scaling-workers`` / ``--scaling-lr-grid``."""
    state = request.config.stash[SESSION]
    if not state.enabled:
        pytest.skip("needs --scaling")
    from .errors import ScalingError
    from .gate.gate import GateContext
    from .runners.cache import RunCache
    from .runners.sweep import NothingToTrain, run_sweep

    cache = RunCache(state.cache, retrain_before=state.started_at if state.retrain else None)
    context = GateContext(state.baselines, state.update, state.writer, request.node.nodeid, state.reports,
                          state.allow_diverged)  # fmt: skip

    def sweep(factory, sizes, *, tokens_per_param=None, flops=None, seeds=1, data=None, **trainer_options):
        __tracebackhide__ = True
        trainer_options.setdefault("device", state.device)
        trainer_options.setdefault("workers", state.workers)
        trainer_options.setdefault("backend", state.backend)
        if state.lr_grid is not None and "lr_multiplier" not in trainer_options:
            trainer_options.setdefault("lr_grid", state.lr_grid)
        if state.tracker is not None:
            from .runners.tracking import Tracking, experiment_name

            trainer_options.setdefault("tracker", Tracking(state.tracker, state.tracker_dir,
                                                           experiment_name(state.started_at), request.node.nodeid))
        count = isinstance(seeds, int) and not isinstance(seeds, bool)
        try:
            result = run_sweep(
                factory, sizes, tokens_per_param=tokens_per_param, flops=flops,
                seeds=state.seeds if state.seeds is not None and count else seeds, data=data, cache=cache,
                max_params=state.max_params, progress=_progress(request, state), **trainer_options,
            )  # fmt: skip
        except NothingToTrain as exc:
            pytest.skip(f"--scaling-max-params: {exc}")
        except ScalingError as exc:
            pytest.fail(f"scaling_sweep: {exc}", pytrace=False)
        result.context = context
        return result

    return sweep


PROGRESS = "scaling_progress"  # an xdist worker's progress lines travel in its test reports' user_properties


def _progress(request: pytest.FixtureRequest, state: ScalingSession):
    """Where a sweep's progress goes: a line per trained run on the terminal (torchrun: rank 0 only); on an
    xdist worker into the test's report, which the controller prints when the test's result arrives."""
    if not state.writer:
        return None
    from .reports.terminal import progress_line

    worker = getattr(request.config, "workerinput", None)
    if worker is not None:
        return lambda event: request.node.user_properties.append(
            (PROGRESS, f"[{worker['workerid']}] {progress_line(event)}"))  # fmt: skip
    return lambda event: _write(request.config, [progress_line(event)])


def _write(config: pytest.Config, lines: list[str]) -> None:
    """Write ``lines`` to the terminal now, also in the middle of a test whose output pytest captures (as
    live logging does), and flush them so that a CI log shows each as it comes."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        return
    with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
        for line in lines:
            reporter.write_line(line)
        reporter.flush()


class WorkerProgress:
    """On an xdist controller: prints the progress lines a worker recorded while it trained a test's runs,
    when that test's result arrives."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        lines = [value for name, value in report.user_properties if name == PROGRESS]
        if lines and report.when == "call":
            _write(self.config, lines)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    """A gate failure inside a test that passed was expected (``pytest.raises``): report it as caught."""
    report = yield
    state = item.config.stash.get(SESSION, None)
    if state is not None and report.when == "call" and report.passed:
        for gate_report in state.reports:
            if gate_report.nodeid == item.nodeid and gate_report.verdict == "failed":
                gate_report.verdict = "caught"
    return report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    state = config.stash.get(SESSION, None)
    if state is None:
        return
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: hand the reports to the controller
        workeroutput["scaling_reports"] = json.dumps([report.to_dict() for report in state.reports])
        return
    targets = [(f, config.getoption(f.dest)) for f in FORMATS if config.getoption(f.dest)]
    if not state.writer or not state.enabled or not targets:
        return
    from .errors import ScalingError

    metadata = _metadata(state)
    for report_format, path in targets:
        try:
            state.written += [str(p) for p in report_format.write(state.reports, path, metadata)]
        except (ScalingError, OSError) as exc:
            state.errors.append(f"{report_format.option}: {exc}")
    if state.errors and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    """xdist controller: workers share its start time, so --scaling-retrain retrains each run once."""
    node.workerinput["scaling_started_at"] = node.config.stash[SESSION].started_at


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    """xdist controller: merge a finished worker's reports."""
    payload = getattr(node, "workeroutput", {}).get("scaling_reports")
    if payload:
        from .gate.records import GateReport

        node.config.stash[SESSION].reports.extend(GateReport.from_dict(d) for d in json.loads(payload))


def _metadata(state: ScalingSession) -> dict:
    from . import __version__

    return {"version": __version__, "seconds": round(time.perf_counter() - state.started, 1),
            "device": state.device, "cache": str(state.cache), "baselines": str(state.baselines)}  # fmt: skip


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(SESSION, None)
    if state is None or not state.writer or not state.enabled or getattr(config, "workerinput", None) is not None:
        return
    if not state.reports and not state.errors:
        return
    from .reports.summary import headline
    from .reports.terminal import terminal_lines

    terminalreporter.section("scaling")
    for line in terminal_lines(state.reports):
        terminalreporter.write_line(line)
    if state.reports:
        terminalreporter.write_line(headline(state.reports))
    for path in state.written:
        terminalreporter.write_line(f"scaling report written: {path}")
    for error in state.errors:
        terminalreporter.write_line(f"scaling report error: {error}", red=True)
