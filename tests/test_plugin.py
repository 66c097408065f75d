"""The pytest plugin, end to end with pytester: options, skipping, baselines, gates, reports, xdist.

Sweeps here are tiny (3 one-layer sizes, a few thousand tokens) and share one run cache, so each
configuration trains once for the whole module. Every pytest run is in this process but the one under torchrun:
pytester's in-process runs drop the modules they import, so what cannot be imported twice into one process
is imported here first (the worker pool's concurrent.futures.process, whose functions must pickle as themselves;
see also ``shared_cache``).
"""

import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap

import pytest

import pytest_scaling.reports.terminal  # noqa: F401
import pytest_scaling.runners.parallel  # noqa: F401
from pytest_scaling.reports.formats import FORMATS
from pytest_scaling.training.train import TrainConfig, train
from tests.helpers import free_port, tensorboard_runs, write_package

_TENSORBOARD = importlib.util.find_spec("tensorboard") is not None

SWEEP_TEST = '''
import pytest
import torch
from pytest_scaling import assert_on_curve, compute_multiplier

SIZES = [dict(width=16, depth=1, seq_len=32), dict(width=32, depth=1, seq_len=32), dict(width=48, depth=1, seq_len=32)]
OPTIONS = dict(tokens_per_param=4, eval_tokens=4096, batch_tokens=512{extra})


class Unigram(torch.nn.Module):
    """Deliberately crippled: ignores its input, so it can only learn token frequencies."""

    def __init__(self, spec):
        super().__init__()
        self.logits = torch.nn.Parameter(torch.zeros(spec.vocab_size))
        self.pad = torch.nn.Linear(spec.width, spec.width, bias=False)  # some parameters to count
        self.scaling_unused_parameters = ("pad.",)  # never called: exempt from the probe's gradient check

    def forward(self, idx):
        return self.logits.expand(*idx.shape, -1)


@pytest.mark.scaling
def test_reference(scaling_sweep):
    result = scaling_sweep("gpt", SIZES, seeds=2, **OPTIONS)
    assert_on_curve(result, baseline="reference")
    compute_multiplier(result, baseline="reference")

{more}

def test_plain():
    assert 1 + 1 == 2
'''

CRIPPLED = '''
@pytest.mark.scaling
def test_crippled(scaling_sweep):
    result = scaling_sweep(Unigram, SIZES, seeds=2, **OPTIONS)
    assert_on_curve(result, baseline="reference")
'''


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    """One run cache for the module; also trains a tiny model once in this process, because pytester's
    in-process runs drop the modules they import, and torch crashes when its lazily imported parts
    (distributed, FLOP counting) are imported a second time into one process."""
    from pytest_scaling.training.model import ModelSpec

    train("gpt", ModelSpec(width=16, depth=1, seq_len=32, vocab_size=64), TrainConfig(tokens=512, eval_tokens=512))
    return tmp_path_factory.mktemp("scaling-cache")


@pytest.fixture
def project(pytester, shared_cache):
    """Write a scaling test module; returns a runner with the shared cache."""

    def make(extra="", more=""):
        pytester.makepyfile(test_scaling=SWEEP_TEST.format(extra=extra, more=more))

    def run(*args):
        """A pytest run in this process (worker processes and xdist workers are processes of their own)."""
        return pytester.runpytest("-p", "no:cacheprovider", f"--scaling-cache={shared_cache}", *args)

    make()
    return make, run


def test_scaling_tests_are_skipped_without_the_flag(project):
    _, run = project
    result = run("-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*SKIPPED*needs --scaling*"])


def test_scaling_only_deselects_other_tests(pytester, project):
    _, run = project
    result = run("--scaling-only", "-k", "not reference")
    result.assert_outcomes(deselected=2)
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


@pytest.mark.parametrize(
    "args, message",
    [
        (["--scaling-seeds", "0"], "expected an integer >= 1"),
        (["--scaling-seeds", "two"], "expected a number"),
        (["--scaling-max-params", "1.5"], "expected an integer"),
        (["--scaling-device", "tpu"], "invalid choice"),
        (["--scaling-workers", "0"], "expected auto or an integer >= 1, got '0'"),
        (["--scaling-workers=abc"], "expected auto or an integer >= 1, got 'abc'"),
        (["--scaling-seeds", "inf"], "expected an integer >= 1, got 'inf'"),
        (["--scaling-max-params", "inf"], "expected an integer >= 1, got 'inf'"),
        (["--scaling-lr-grid=0.5,0"], "expected distinct finite numbers > 0, e.g. 0.25,0.5,1,2; got '0.5,0'"),
        (["--scaling-lr-grid=fast"], "expected distinct finite numbers > 0"),
    ],
)
def test_bad_option_values_are_usage_errors(project, args, message):
    _, run = project
    result = run(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}*"])


@pytest.mark.parametrize(
    "line, message",
    [("scaling_device = tpu", "scaling_device must be auto, cpu or cuda"),
     ("scaling_workers = many", "scaling_workers: expected auto or an integer >= 1, got 'many'"),
     ("scaling_max_params = inf", "scaling_max_params: expected an integer >= 1, got 'inf'"),
     ("scaling_lr_grid = 1,1", "scaling_lr_grid: expected distinct finite numbers > 0")],
)  # fmt: skip
def test_bad_ini_value_is_a_usage_error(pytester, project, line, message):
    _, run = project
    pytester.makeini(f"[pytest]\n{line}\n")
    result = run()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()


@pytest.mark.slow
def test_workers_option_trains_the_sweep_on_worker_processes(pytester, project):
    _, run = project
    cache = pytester.path / "own-cache"
    result = run("--scaling-update", f"--scaling-cache={cache}", "--scaling-workers=2", "--scaling-seeds=1", "-q")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*3 runs, 3 trained now*"])
    progress = [line for line in result.outlines if re.match(r"\[\d/3\] w\d+-d1 seed 0  loss \d\.\d{4}  ", line)]
    assert len(progress) == 3 and progress[-1].startswith("[3/3]") and progress[-1].endswith("ETA 0:00")
    again = run("--scaling", f"--scaling-cache={cache}", "--scaling-seeds=1")
    again.assert_outcomes(passed=2)
    assert "[1/3]" not in again.stdout.str()  # runs served from the cache stay silent
    records = [json.loads(p.read_text())["record"] for p in (cache / "runs").iterdir()]
    assert len(records) == 3 and all(r["config"]["threads"] for r in records)  # a worker's share of the cores


def test_a_missing_baseline_fails_until_update_records_it(pytester, project):
    _, run = project
    missing = run("--scaling")
    missing.assert_outcomes(passed=1, failed=1)
    missing.stdout.fnmatch_lines(["*baseline 'reference' does not exist*To record it from this test: "
                                  "pytest --scaling --scaling-update test_scaling.py::test_reference*"])  # fmt: skip
    assert not (pytester.path / "scaling_baselines").exists()
    first = run("--scaling-update")
    first.assert_outcomes(passed=2)
    baseline = pytester.path / "scaling_baselines" / "reference.json"
    stored = json.loads(baseline.read_text())
    assert stored["name"] == "reference" and len(stored["points"]) == 3
    assert set(stored["law"]["params"]) == {"E", "A", "alpha"}
    first.stdout.fnmatch_lines(["*recorded*reference*"])

    second = run("--scaling")
    second.assert_outcomes(passed=2)
    out = second.stdout.str()
    assert "on curve" in out and "recorded" not in out.split("scaling ===")[-1].split("\n")[1]
    for label in ("w16-d1", "w32-d1", "w48-d1"):
        assert label in out


def test_baselines_directory_option_and_ini_key(pytester, project):
    _, run = project
    run("--scaling-update", "--scaling-baselines=custom").assert_outcomes(passed=2)
    assert (pytester.path / "custom" / "reference.json").exists()
    pytester.makeini("[pytest]\nscaling_baselines = from_ini\nscaling_device = cpu\nscaling_max_params = 100000\n")
    run("--scaling-update").assert_outcomes(passed=2)
    assert (pytester.path / "from_ini" / "reference.json").exists()
    assert not (pytester.path / "scaling_baselines").exists()


def test_crippled_model_fails_the_gate_with_a_table(pytester, project):
    make, run = project
    run("--scaling-update").assert_outcomes(passed=2)  # records the reference baseline
    make(more=CRIPPLED)
    result = run("--scaling")
    result.assert_outcomes(passed=2, failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*ScalingGateError: sweep is off baseline 'reference'*", "*WORSE*"])
    assert "Traceback" not in result.stdout.str().split("short test summary")[0].split("test_crippled")[-1]


def test_expected_regression_is_reported_as_caught(pytester, project):
    make, run = project
    run("--scaling-update").assert_outcomes(passed=2)
    expected = CRIPPLED.replace("    assert_on_curve(result",
                                "    with pytest.raises(AssertionError):\n        assert_on_curve(result")
    make(more=expected)
    result = run("--scaling", "--scaling-json", "out.json")
    result.assert_outcomes(passed=3)
    tests = json.loads((pytester.path / "out.json").read_text())["tests"]
    verdicts = {t["nodeid"].split("::")[-1]: t["verdict"] for t in tests}
    assert verdicts["test_crippled"] == "caught"
    result.stdout.fnmatch_lines(["*passed*1 expected regression caught*"])


def test_update_re_records_and_passes(pytester, project):
    make, run = project
    make(more=CRIPPLED.replace('"reference"', '"crippled"'))
    run("--scaling-update").assert_outcomes(passed=3)
    path = pytester.path / "scaling_baselines" / "crippled.json"
    before = path.read_text()
    make(more=CRIPPLED.replace('"reference"', '"crippled"').replace("seeds=2", "seeds=3"))
    result = run("--scaling-update")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*updated*"])
    assert path.read_text() != before and len(json.loads(path.read_text())["points"][0]["losses"]) == 3


def test_update_re_records_only_from_the_test_that_recorded_the_baseline(pytester, project):
    make, run = project
    run("--scaling-update").assert_outcomes(passed=2)  # test_reference records 'reference'
    path = pytester.path / "scaling_baselines" / "reference.json"
    assert json.loads(path.read_text())["recorded_by"] == "test_scaling.py::test_reference"
    make(more=CRIPPLED)  # a second test naming the same baseline
    result = run("--scaling-update")
    result.assert_outcomes(passed=2, failed=1)  # the crippled model is gated, not recorded
    result.stdout.fnmatch_lines(["*_ test_crippled _*", "*ScalingGateError: sweep is off baseline 'reference'*",
                                 "*re-recorded only by the test that recorded it: pytest --scaling --scaling-update "
                                 "test_scaling.py::test_reference*"])  # fmt: skip
    stored = json.loads(path.read_text())
    assert stored["recorded_by"] == "test_scaling.py::test_reference" and "build_reference" in stored["factory"]


def test_mismatched_baseline_says_what_differs(pytester, project):
    _, run = project
    run("--scaling-update").assert_outcomes(passed=2)
    path = pytester.path / "scaling_baselines" / "reference.json"
    stored = json.loads(path.read_text())
    stored["trainer"]["warmup"] = 0.2  # as if recorded with another warmup
    stored["data"]["hash"] = "0" * 16
    path.write_text(json.dumps(stored))
    result = run("--scaling")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*recorded with other settings*data hash: baseline '0000000000000000'*"
                                 "trainer warmup: baseline 0.2, run 0.05*--scaling-update*"])  # fmt: skip


def test_lr_grid_option_searches_every_sweep_and_a_plain_baseline_is_a_mismatch(pytester, project):
    _, run = project
    run("--scaling-update").assert_outcomes(passed=2)  # recorded without a search
    result = run("--scaling", "--scaling-lr-grid=0.5,1")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*trainer lr_grid: baseline None, run [[]0.5, 1.0[]]*same lr_grid*"])
    run("--scaling-update", "--scaling-lr-grid=0.5,1").assert_outcomes(passed=2)
    result = run("--scaling", "--scaling-lr-grid=0.5,1")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*size*loss*LR*curve*", "*w16-d1*x*(base x*"])


def test_corrupt_baseline_names_the_file(pytester, project):
    _, run = project
    path = pytester.path / "scaling_baselines" / "reference.json"
    path.parent.mkdir()
    path.write_text('{"format": 1, "name": "reference", "points": [')
    result = run("--scaling")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([f"*baseline file {path} is corrupt*"])


SEED_LIST = '''
@pytest.mark.scaling
def test_seed_list(scaling_sweep):
    result = scaling_sweep("gpt", SIZES[:1], seeds=[7, 8], **OPTIONS)
    print("SEEDS", sorted(r.seed for r in result.runs))
'''


def test_max_params_skips_large_sizes_and_seeds_override_counts_only(pytester, project):
    make, run = project
    make(more=SEED_LIST)
    result = run("--scaling-update", "--scaling-max-params=5000", "--scaling-seeds=1", "-s")
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # one size left: no curve can be fitted
    result.stdout.fnmatch_lines(["*needs at least 3 sizes*"])
    result.stdout.fnmatch_lines(["*SEEDS [[]7, 8[]]*"])  # an explicit seed list is kept
    assert "baseline.py" not in result.stdout.str()  # the reason, not the gate's internals
    skipped = run("--scaling", "--scaling-max-params=100", "-rs")
    skipped.assert_outcomes(passed=1, skipped=2)
    skipped.stdout.fnmatch_lines(["*SKIPPED*--scaling-max-params: every size has more than max_params=100 "
                                  "non-embedding parameters (the smallest has 3,*"])  # fmt: skip


def test_a_sweep_with_bad_arguments_fails_in_one_line(pytester, project):
    make, run = project
    make(more=SEED_LIST.replace("seeds=[7, 8], **OPTIONS", 'tokens_per_param="abc"'))
    result = run("--scaling", "-k", "seed_list")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*scaling_sweep: tokens_per_param must be a finite number > 0, got 'abc'"])
    assert "plugin.py" not in result.stdout.str() and "Traceback" not in result.stdout.str()


PEEKING = '''
class Peeking(torch.nn.Module):
    """Adds each token's successor to it: the logits at t see the token they predict."""

    def __init__(self, spec):
        super().__init__()
        self.embed = torch.nn.Embedding(spec.vocab_size, spec.width)
        self.head = torch.nn.Linear(spec.width, spec.vocab_size)

    def forward(self, idx):
        x = self.embed(idx)
        return self.head(x + x.roll(-1, dims=1))


class LatePeeking(Peeking):
    """A bigram model whose logits from position 16 on also read the next token, beyond the probe's window."""

    def __init__(self, spec):
        super().__init__(spec)
        self.mix = torch.nn.Linear(spec.width, spec.width)

    def forward(self, idx):
        logits = self.head(torch.relu(self.mix(self.embed(idx))))
        peek = torch.zeros_like(logits)
        peek[:, 16:-1] = 30 * torch.nn.functional.one_hot(idx[:, 17:], logits.shape[-1]).to(logits.dtype)
        return logits + peek


@pytest.mark.scaling
def test_peeking(scaling_sweep):
    result = scaling_sweep(Peeking, SIZES, seeds=1, **OPTIONS)
    assert_on_curve(result, baseline="reference")


@pytest.mark.scaling
def test_late_peeking(scaling_sweep):
    result = scaling_sweep(LatePeeking, SIZES, seeds=1, **OPTIONS)
    assert_on_curve(result, baseline="reference")


@pytest.mark.scaling
def test_late_peeking_recorded(scaling_sweep):
    result = scaling_sweep(LatePeeking, SIZES, seeds=1, **OPTIONS)
    assert_on_curve(result, baseline="peeking")
'''


def test_a_model_that_sees_the_future_fails_in_one_line_and_trains_nothing(pytester, project):
    make, run = project
    make(more=PEEKING)
    cache = pytester.path / "own-cache"
    result = run("--scaling", f"--scaling-cache={cache}", "-k", "test_peeking")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*scaling_sweep: Peeking at w16-d1 is not causal: its logits at position 0 change "
                                 "when token 1 changes, tokens it must not see*is_causal=True*"])  # fmt: skip
    assert "Traceback" not in result.stdout.str()
    assert not (cache / "runs").exists() or not any((cache / "runs").iterdir())


def test_a_loss_below_the_floor_fails_as_impossible_and_is_never_recorded(pytester, project):
    make, run = project
    make(more=PEEKING)
    run("--scaling-update", "-k", "reference").assert_outcomes(passed=1, deselected=4)
    result = run("--scaling-update", "-k", "late_peeking", "--scaling-markdown=report.md")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*IMPOSSIBLE: validation loss below the data's entropy floor, which no model can "
                                 "beat, at w16-d1 (*± 0.0*< 2.*) nats/token*causal mask off by one*",
                                 "*cannot record baseline 'peeking': IMPOSSIBLE: *"])  # fmt: skip
    assert not (pytester.path / "scaling_baselines" / "peeking.json").exists()
    assert "❌ IMPOSSIBLE" in (pytester.path / "report.md").read_text()


def test_a_rootdir_taken_from_a_spaced_option_value_is_a_usage_error(pytester, project):
    _, run = project
    other = pytester.path.parent / f"{pytester.path.name}-other"
    (other / ".scaling").mkdir(parents=True)
    (other / "pyproject.toml").write_text("[tool.pytest.ini_options]\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "--scaling", "--scaling-cache", str(other / ".scaling"),
                                str(pytester.path))  # fmt: skip
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*the rootdir {other} does not contain the scaling test*write "
                                 f"`--scaling-cache={other / '.scaling'}`*"])  # fmt: skip
    assert not (other / "scaling_baselines").exists()


PACKAGE_TEST = '''
import pytest
from userpkg.factory import build


@pytest.mark.scaling
def test_package(scaling_sweep):
    result = scaling_sweep(build, [dict(width=16, depth=1, seq_len=32)], tokens_per_param=2, eval_tokens=1024)
    print("TRAINED", result.trained)
'''


def test_an_edit_in_a_sibling_module_retrains_and_a_comment_does_not(pytester, project, monkeypatch):
    _, run = project
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # edits within a second must not meet stale bytecode
    pytester.syspathinsert()
    pytester.makepyfile(test_package=PACKAGE_TEST)

    def trained(**edits) -> str:
        write_package(pytester.path, **edits)
        result = run("--scaling", "-s", "test_package.py")
        result.assert_outcomes(passed=1)
        return next(line.split("TRAINED")[-1].strip() for line in result.outlines if "TRAINED" in line)

    assert trained() == "1"
    assert trained(**{"layers.py": ("import torch", "import torch  # a comment")}) == "0"
    assert trained(**{"layers.py": ("functional.gelu", "functional.relu")}) == "1"
    assert trained(**{"config.py": ("HIDDEN = 2", "HIDDEN = 3")}) == "1"
    assert trained(**{"config.py": ("HIDDEN = 2", "HIDDEN = 3")}) == "0"
    assert "TRAINED 1" in run("--scaling", "-s", "--scaling-retrain", "test_package.py").stdout.str()


def test_reports_markdown_json_plot(pytester, project, monkeypatch):
    _, run = project
    summary = pytester.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    run("--scaling-update").assert_outcomes(passed=2)
    result = run("--scaling", "--scaling-markdown=github", "--scaling-json=r/out.json", "--scaling-plot=png")
    result.assert_outcomes(passed=2)
    data = json.loads((pytester.path / "r" / "out.json").read_text())
    test = data["tests"][0]
    assert test["nodeid"].endswith("test_reference") and test["baseline"] == "reference"
    required = {"params", "tokens", "flops", "loss", "loss_std", "predicted", "deviation", "verdict"}
    assert required <= set(test["sizes"][0])
    text = summary.read_text()
    assert len(text.encode()) < 64_000 and "w32-d1" in text
    pngs = list((pytester.path / "png").glob("*.png"))
    assert pngs and pngs[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result.stdout.fnmatch_lines(["*scaling report written*"])
    assert {f.name for f in FORMATS} == {"markdown", "json", "plot"}  # a new format: write and check it here too


def test_markdown_github_without_env_fails_the_run_cleanly(pytester, project, monkeypatch):
    _, run = project
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    result = run("--scaling-update", "--scaling-markdown=github")
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*scaling report error*GITHUB_STEP_SUMMARY*"])


def test_xdist_workers_merge_into_one_report(pytester, project):
    make, run = project
    make(more=CRIPPLED.replace('"reference"', '"crippled"'))
    run("--scaling-update").assert_outcomes(passed=3)  # warm the cache and record both baselines
    result = run("-n", "2", "--scaling", "--scaling-retrain", "--scaling-seeds=1", "--scaling-json=merged.json")
    result.assert_outcomes(passed=3)
    assert result.stdout.str().count("3 runs, 3 trained now") == 2  # the workers share the session's start
    assert len(re.findall(r"\[gw[01]\] \[\d/3\] w\d+-d1 seed 0  loss ", result.stdout.str())) == 6
    nodeids = {t["nodeid"].split("::")[-1] for t in json.loads((pytester.path / "merged.json").read_text())["tests"]}
    assert nodeids == {"test_reference", "test_crippled"}
    out = result.stdout.str()
    assert "test_reference" in out and "test_crippled" in out.split("= scaling =")[-1]


@pytest.mark.slow
def test_torchrun_two_ranks_only_rank0_writes(pytester, shared_cache):
    pytester.makepyfile(test_scaling=SWEEP_TEST.format(extra="", more=""))
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(free_port()), "-m", "pytest", "-p", "no:cacheprovider", "--scaling-update",
           "--scaling-device", "cpu", "--scaling-seeds=1",  # two CPU ranks (gloo), even beside a GPU
           f"--scaling-cache={shared_cache / 'ddp'}", "--scaling-json=ddp.json", "test_scaling.py",
           *(["--scaling-tracker=tensorboard", "--scaling-tracker-dir=tracked"] if _TENSORBOARD else [])]  # fmt: skip
    proc = subprocess.run(cmd, cwd=pytester.path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.count("= scaling =") == 1  # one summary, from rank 0
    assert proc.stdout.count("[3/3] w") == 1  # progress from rank 0 only
    assert (pytester.path / "scaling_baselines" / "reference.json").exists()
    assert json.loads((pytester.path / "ddp.json").read_text())["tests"]
    if _TENSORBOARD:  # rank 0 alone logs each run, once
        store = pytester.path / "tracked" / "tensorboard"
        (experiment,) = [p.name for p in store.iterdir()]
        assert sorted(tensorboard_runs(store, experiment)) == [
            f"test_scaling.py_test_reference/w{w}-d1-seed0-lr1" for w in (16, 32, 48)]


def test_plugin_import_does_not_load_torch():
    code = textwrap.dedent("""
        import sys
        import pytest_scaling.plugin, pytest_scaling
        pytest_scaling.fit_chinchilla
        assert "torch" not in sys.modules, "torch imported"
    """)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
