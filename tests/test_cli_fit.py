"""``pytest-scaling fit``: output formats and every bad-input path (one line on stderr, exit 2).

One test runs the command as its own process (``python -m pytest_scaling.cli``); the others call its
``main`` in this process, as a fresh interpreter would run it (see :func:`run_cli`), which saves an
interpreter's start-up each."""

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest

from pytest_scaling.cli import main
from tests.conftest import SHARED_CSV


def run_process(*args):
    return subprocess.run([sys.executable, "-m", "pytest_scaling.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def _print_warning(message, category, filename, lineno, file=None, line=None):
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


@pytest.fixture
def run_cli(capsys):
    """``pytest-scaling ARGS`` in this process: its exit status, stdout and stderr, as a CompletedProcess.
    As in a fresh interpreter, warnings print to stderr under Python's default filters (pytest's own
    capture of them would hide an extra stderr line), ``SystemExit`` is the exit status, and any other
    exception escapes (the test fails, as a traceback would fail it)."""

    def run(*args):
        capsys.readouterr()
        with warnings.catch_warnings():
            warnings.resetwarnings()  # Python's defaults, most general first (each filter goes in front):
            for category in (ResourceWarning, ImportWarning, PendingDeprecationWarning, DeprecationWarning):
                warnings.simplefilter("ignore", category)
            warnings.filterwarnings("default", category=DeprecationWarning, module="__main__")
            warnings.showwarning = _print_warning
            try:
                code = main(["fit", *map(str, args)])
            except SystemExit as exc:  # argparse's usage errors
                code = 0 if exc.code is None else exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(["pytest-scaling", "fit", *map(str, args)], code, out, err)

    return run


@pytest.fixture
def power_csv(tmp_path):
    x = np.logspace(3, 8, 12)
    path = tmp_path / "points.csv"
    rows = "\n".join(f"{xi},{2.0 + 50 * xi ** -0.3}" for xi in x)
    path.write_text("compute flops,loss\n" + rows + "\n")
    return path


def test_fit_power_json(power_csv):
    out = run_process("fit", power_csv, "--law", "power", "--x", "compute flops", "--loss", "loss", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["law"] == "power" and data["n_points"] == 12
    assert set(data["params"]) == {"E", "A", "alpha"}
    assert data["params"]["alpha"] == pytest.approx(0.3, rel=1e-3)
    assert 0 < data["converged_fraction"] <= 1 and "ci" not in data


def test_fit_power_without_offset_table(power_csv, run_cli):
    out = run_cli(power_csv, "--law", "power", "--x", "compute flops", "--loss", "loss", "--no-offset")
    assert out.returncode == 0, out.stderr
    assert "x_c" in out.stdout and "starts reached the optimum" in out.stdout


def test_a_law_registered_in_laws_is_offered_and_fitted_by_its_inputs(power_csv, run_cli, monkeypatch):
    """A new form is one entry of ``LAWS``: ``--law`` offers it and the command reads the columns its inputs
    name (a one-input law reads ``--x``)."""
    from pytest_scaling.fitting.laws import LAWS, PowerLaw

    class Saturating(PowerLaw):
        def __init__(self, offset: bool = True):
            super().__init__(offset=offset, x="C")
            self.name = "saturating"

    monkeypatch.setitem(LAWS, "saturating", Saturating)
    out = run_cli(power_csv, "--law", "saturating", "--x", "compute flops", "--loss", "loss", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["law"] == "saturating" and data["params"]["alpha"] == pytest.approx(0.3, rel=1e-3)
    out = run_cli(power_csv, "--law", "saturating", "--n", "compute flops", "--loss", "loss")
    assert out.returncode == 2 and "--law saturating needs --x COL" in out.stderr


def test_fit_chinchilla_json_with_bootstrap(run_cli):
    if not SHARED_CSV.exists():
        pytest.skip(f"{SHARED_CSV} not present")
    out = run_cli(SHARED_CSV, "--law", "chinchilla", "--n", "Model Size", "--c", "Training FLOP",
                  "--loss", "loss", "--drop-highest", "5", "--bootstrap", "50", "--seed", "3", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["n_points"] == 240
    assert data["params"]["alpha"] == pytest.approx(0.3473, rel=0.01)
    assert set(data["ci"]) == {"E", "A", "B", "alpha", "beta"}
    lo, hi = data["ci"]["beta"]
    assert lo < data["params"]["beta"] < hi
    assert set(data["allocation"]) == {"a", "b", "G"}
    assert data["allocation"]["a"] + data["allocation"]["b"] == pytest.approx(1)


def test_constant_ratio_design_warns_on_stderr(tmp_path, run_cli):
    N = np.logspace(6, 9, 8)
    path = tmp_path / "iso.csv"
    path.write_text("N,D,L\n" + "\n".join(f"{n},{20 * n},{1.8 + 300 * n ** -0.3 + 900 * (20 * n) ** -0.3}"
                                         for n in N) + "\n")
    out = run_cli(path, "--n", "N", "--d", "D", "--loss", "L", "--json")
    assert out.returncode == 0, out.stderr
    assert "warning: tokens per parameter D/N is constant" in out.stderr


@pytest.mark.parametrize(
    "content, args, message",
    [
        ("N,L\n1e6,3\n", ["--n", "N", "--c", "C", "--loss", "L"], "no column 'C'"),
        ("N,C,L\n1e6,1e18,3\n1e7,abc,2\n", ["--n", "N", "--c", "C", "--loss", "L"],
         "line 3, column 'C': 'abc' is not a number"),
        ("N,C,L\n1e6,1e18,3\n1e7,1e19,nan\n", ["--n", "N", "--c", "C", "--loss", "L"], "line 3, column 'L'"),
        ("N,C,L\n1e6,1e18,3\n1e7,1e19,-2\n", ["--n", "N", "--c", "C", "--loss", "L"], "positive finite"),
        ("N,C,L\n1e6,1e18,3\n1e7,inf,2\n", ["--n", "N", "--c", "C", "--loss", "L"], "line 3"),
        ("N,C,L\n1e6,1e18,3\n1e7,1e19,2\n", ["--n", "N", "--c", "C", "--loss", "L"], "5 parameters but only 2 points"),
        ("N,C,L\n", ["--n", "N", "--c", "C", "--loss", "L"], "no data rows"),
        ("", ["--n", "N", "--c", "C", "--loss", "L"], "empty file"),
        ("N,C,L\n1e6,1e18\n", ["--n", "N", "--c", "C", "--loss", "L"], "too short"),
        ("N,C,L\n1e6,1e18,3\n", ["--n", "N", "--loss", "L"], "exactly one of --d COL or --c COL"),
        ("N,C,L\n1e6,1e18,3\n", ["--n", "N", "--d", "C", "--c", "C", "--loss", "L"], "exactly one of"),
        ("N,C,L\n1e6,1e18,3\n", ["--c", "C", "--loss", "L"], "needs --n COL"),
        ("N,C,L\n1e6,1e18,3\n", ["--law", "power", "--loss", "L"], "needs --x COL"),
        ("N,C,L\n1e6,1e18,3\n", ["--law", "power", "--x", "N", "--n", "N", "--loss", "L"], "takes --x, not"),
        ("N,C,L\n1e6,1e18,3\n", ["--x", "N", "--loss", "L"], "for --law power"),
        ("N,C,L\n1e6,1e18,3\n", ["--n", "N", "--c", "C", "--loss", "L", "--drop-highest", "1"], "cannot drop"),
        ("N,C,L\n1e6,1e18,3\n", ["--n", "N", "--c", "C", "--loss", "L", "--delta", "0"], "--delta"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, run_cli, content, args, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    out = run_cli(path, *args)
    assert out.returncode == 2, out.stdout
    assert message in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_missing_file_and_bad_option_values(tmp_path, run_cli):
    out = run_cli(tmp_path / "nope.csv", "--law", "power", "--x", "a", "--loss", "b")
    assert out.returncode == 2 and "cannot read" in out.stderr and "Traceback" not in out.stderr
    out = run_cli(tmp_path / "nope.csv", "--law", "cubic", "--loss", "b")
    assert out.returncode == 2 and "invalid choice" in out.stderr
    out = run_cli(tmp_path / "nope.csv", "--x", "a", "--loss", "b", "--bootstrap", "-3")
    assert out.returncode == 2 and "--bootstrap: expected an integer >= 0, got '-3'" in out.stderr


def test_binary_file_is_a_clear_error(tmp_path, run_cli):
    path = tmp_path / "bin.csv"
    path.write_bytes(b"\xff\xfe\x00\x01garbage")
    out = run_cli(path, "--law", "power", "--x", "a", "--loss", "b")
    assert out.returncode == 2 and "Traceback" not in out.stderr
