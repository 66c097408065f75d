"""The trainer: schedule, optimizer groups, determinism, divergence, records, memory, CLI, torchrun."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from accelerate.state import AcceleratorState, PartialState

from pytest_scaling import __version__
from pytest_scaling.cli import main
from pytest_scaling.errors import ScalingDataError, ScalingError
from pytest_scaling.training.model import FLOP_METHODS, ModelSpec, build_reference
from pytest_scaling.training.train import (
    COMPUTE_METHOD,
    DIVERGENCE_MARGIN,
    MAX_LR,
    TARGET_STEPS,
    RunRecord,
    TrainConfig,
    default_batch_tokens,
    default_betas,
    default_lr,
    lr_schedule,
    param_groups,
    plan_steps,
    train,
)
from tests.helpers import free_port

SRC = "synthetic:docs=512,val_docs=64"
SPEC = ModelSpec(width=16, depth=1, vocab_size=64, seq_len=32)
CLI = [sys.executable, "-m", "pytest_scaling.cli"]


def tiny(**kw) -> TrainConfig:
    """A few-second CPU run (the CUDA path is tested in test_cuda.py)."""
    return TrainConfig(**{"tokens": 8192, "eval_tokens": 1024, "threads": 1, "device": "cpu", **kw})


# ------------------------------------------------------------------------------------ pure rules


@pytest.mark.parametrize("schedule", ["cosine", "linear"])
def test_schedule_warms_up_then_ends_exactly_at_the_final_lr(schedule):
    lrs = lr_schedule(100, 1e-2, 0.1, schedule, 0.1)
    assert len(lrs) == 100
    assert lrs[:10] == pytest.approx([1e-3 * (i + 1) for i in range(10)])  # linear warmup, peak at step 9
    assert max(lrs) == pytest.approx(1e-2)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:], strict=False))  # decays monotonically
    assert lrs[-1] == pytest.approx(1e-3, rel=1e-12)  # the final value exactly at the last step
    assert lrs[-2] > lrs[-1]


def test_schedule_edge_cases():
    assert lr_schedule(1, 0.5, 0.05, "cosine", 0.1) == [0.5]
    two = lr_schedule(2, 1.0, 0.0, "cosine", 0.0)  # at least one warmup step, still ends at the final lr
    assert two == pytest.approx([1.0, 0.0])


def test_plan_covers_the_budget_exactly_in_whole_sequences():
    batch, sizes = plan_steps(10_000, 32, 1024, world=1)
    assert batch == 32 and sum(sizes) == math.ceil(10_000 / 32) and sizes[-1] == 313 % 32
    batch, sizes = plan_steps(10_000, 32, 1000, world=2)
    assert batch % 2 == 0 and all(s % 2 == 0 for s in sizes) and sum(sizes) * 32 >= 10_000
    assert plan_steps(1, 32, 4096) == (1, [1])


def test_default_rules():
    for tokens in (1e4, 2e5, 2e6, 1e8, 1e10):
        bt = default_batch_tokens(int(tokens), 128)
        seqs = bt // 128
        assert bt % 128 == 0 and seqs & (seqs - 1) == 0 and 1 <= seqs <= 512
        assert seqs in (1, 512) or tokens / bt >= TARGET_STEPS / 2**0.5  # enough steps at the small end
    assert default_batch_tokens(10**6, 128) < default_batch_tokens(10**8, 128)
    assert default_betas(4096) == (0.9, 0.99) and default_betas(2**20) == (0.9, 0.95)
    assert default_lr(1e15) < default_lr(1e12) <= MAX_LR
    assert default_lr(1.0) == MAX_LR
    assert default_lr(1e12, 4) == pytest.approx(default_lr(1e12) / 2)  # sqrt(4 / 16) below the tuned batch
    assert default_lr(1e12, 64) == default_lr(1e12, 16) == default_lr(1e12)


def test_weight_decay_only_on_matrices():
    model = build_reference(ModelSpec(width=32, depth=2, vocab_size=64, seq_len=16, tied_embeddings=False))
    decay, no_decay = param_groups(model, 0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert decay["params"] and all(p.dim() >= 2 for p in decay["params"])
    assert no_decay["params"] and all(p.dim() < 2 for p in no_decay["params"])
    grouped = {id(p) for g in (decay, no_decay) for p in g["params"]}
    assert grouped == {id(p) for p in model.parameters()}


def test_config_validation():
    for bad in ({"tokens": 0}, {"lr": -1.0}, {"warmup": 1.5}, {"schedule": "step"}, {"betas": (0.9, 1.2)}):
        with pytest.raises(ScalingDataError):
            TrainConfig(**{"tokens": 100, **bad})
    config = TrainConfig(tokens=100, betas=[0.9, 0.98])
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


# -------------------------------------------------------------------------------------- training


def test_record_contents_and_json_round_trip():
    record = train("gpt", SPEC, tiny(), SRC)
    assert not record.diverged and math.isfinite(record.loss) and record.loss < math.log(64) + 0.1
    assert record.tokens == 8192 and record.loss_bits_per_byte is None
    assert set(record.flops) == set(FLOP_METHODS) == set(record.flops_per_token)
    assert record.compute == record.flops[COMPUTE_METHOD] == record.flops_per_token[COMPUTE_METHOD] * 8192
    assert 0 < record.non_embedding_params < record.params
    assert 0 < record.mfu < 1 and record.tokens_per_second > 0 and record.seconds > 0
    steps = math.ceil(8192 / record.config.batch_tokens)
    every = max(1, steps // 20)  # ~curve_points: every steps // curve_points steps, and the last
    assert record.curve[-1][0] == 8192 and len(record.curve) == math.ceil(steps / every)
    batch_seqs = record.config.batch_tokens // record.spec.seq_len
    assert record.config.lr == default_lr(record.compute, batch_seqs) and record.config.device == "cpu"
    assert record.config.precision == "fp32" and record.device.startswith("cpu")
    assert record.data["name"] == "synthetic" and record.version and record.spec == SPEC
    assert RunRecord.from_json(record.to_json()) == record
    assert RunRecord.from_dict(json.loads(json.dumps(record.to_dict()))) == record
    with pytest.raises(ScalingDataError):
        RunRecord.from_dict({"loss": 1.0})


def test_accelerate_state_is_reset_after_each_run():
    train("gpt", SPEC, tiny(tokens=1024), SRC)
    assert AcceleratorState._shared_state == {} and PartialState._shared_state == {}


def test_same_seed_same_loss_to_the_last_digit():
    a, b = (train("gpt", SPEC, tiny(seed=3), SRC) for _ in range(2))
    assert a.loss == b.loss and a.curve == b.curve
    c = train("gpt", SPEC, tiny(seed=4), SRC)
    assert c.loss != a.loss


def test_divergence_ends_the_run_without_crashing():
    record = train("gpt", SPEC, tiny(lr=1e6, tokens=32768, curve_points=16), SRC)
    assert record.diverged and record.loss == math.inf
    assert record.curve[-1][0] < 32768  # stopped early
    back = RunRecord.from_json(record.to_json())
    assert back.diverged and back.loss == math.inf


def test_a_loss_far_above_a_uniform_guess_is_divergence():
    """lr=10 explodes without ever producing a NaN: a finite loss far above log(vocab) is divergence too."""
    record = train("gpt", SPEC, tiny(lr=10.0, tokens=16384), SRC)
    assert record.diverged and record.loss == math.inf
    assert max(loss for _, loss in record.curve) > math.log(SPEC.vocab_size) + DIVERGENCE_MARGIN


def test_bits_per_byte_for_byte_sources(tmp_path):
    text = tmp_path / "corpus.txt"
    text.write_text("the quick brown fox jumps over the lazy dog. " * 800)
    record = train("gpt", ModelSpec(width=16, depth=1, vocab_size=256, seq_len=32), tiny(), f"text:{text}")
    assert record.loss_bits_per_byte == pytest.approx(record.loss / math.log(2))


def test_vocab_mismatch_is_a_clear_error():
    with pytest.raises(ScalingDataError, match="vocab"):
        train("gpt", ModelSpec(width=16, depth=1, vocab_size=32, seq_len=32), tiny(), SRC)


def test_memory_stays_bounded_over_many_models():
    psutil = pytest.importorskip("psutil")
    process = psutil.Process()
    config = tiny(tokens=2048, eval_tokens=256)
    for _ in range(3):
        train("gpt", SPEC, config, SRC)
    before = process.memory_info().rss
    for seed in range(20):
        train("gpt", ModelSpec(width=16 + 16 * (seed % 3), depth=1, vocab_size=64, seq_len=32), config, SRC)
    growth = process.memory_info().rss - before
    assert growth < 30 * 2**20, f"RSS grew by {growth / 2**20:.1f} MiB over 20 runs"


# ------------------------------------------------------------------------------------------- CLI


BAD_ARGS = [
    ["--width", "0", "--depth", "1", "--tokens", "1000"],
    ["--width", "16", "--depth", "1", "--tokens", "1000", "--tokens-per-param", "20"],
    ["--width", "16", "--depth", "1"],
    ["--width", "16", "--depth", "1", "--tokens", "1000", "--data", "nonsense"],
    ["--width", "16", "--depth", "1", "--tokens", "-3"],
    ["--width", "16", "--depth", "1", "--tokens-per-param", "-1"],
    ["--width", "16", "--depth", "1", "--tokens", "1000", "--lr", "0"],
    ["--width", "16", "--depth", "1", "--tokens-per-param", "inf"],
    ["--width", "16", "--depth", "1", "--tokens", "inf"],
    ["--width", "16", "--depth", "1", "--tokens", "1000", "--lr", "nan"],
    ["--width", "16", "--depth", "1", "--tokens", "1000", "--factory", "tests.test_train:returns_none"],
]


def returns_none(spec):
    return None


@pytest.mark.parametrize("args", BAD_ARGS)
def test_cli_bad_arguments_exit_2_with_one_line(args, capsys):
    try:
        code = main(["train", *args])
    except SystemExit as exc:  # argparse usage errors
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err and "error:" in err[-1] and "Traceback" not in "\n".join(err)


def test_cli_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out.strip() == f"pytest-scaling {__version__}"


def test_cli_console_script_exit_status():
    script = Path(sys.executable).with_name("pytest-scaling")
    command = [str(script)] if script.exists() else CLI
    proc = subprocess.run([*command, "train", *BAD_ARGS[0]], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.strip() == "pytest-scaling: error: " + (
        "ModelSpec.width must be a positive int, got 0"
    )


def test_cli_trains_and_serves_from_cache(tmp_path, capsys):
    args = ["train", "--width", "16", "--depth", "1", "--seq-len", "32", "--tokens", "4096",
            "--data", SRC, "--threads", "1", "--cache", str(tmp_path / "c")]  # fmt: skip
    first = json.loads(subprocess.run([*CLI, *args, "--json"], capture_output=True, text=True, timeout=120,
                                      check=True).stdout)  # fmt: skip
    for key in ("loss", "params", "non_embedding_params", "tokens", "flops", "tokens_per_second", "mfu",
                "seconds", "device", "cached", "diverged"):  # fmt: skip
        assert key in first
    assert first["cached"] is False and first["tokens"] == 4096 and first["flops"] > 0
    assert main([*args, "--json"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["cached"] is True and second["loss"] == first["loss"]
    assert main(args) == 0
    table = capsys.readouterr().out
    assert "validation loss" in table and f"{first['loss']:.4f}" in table


# -------------------------------------------------------------------------------------- torchrun

DDP_SCRIPT = """
import json, sys
import torch.distributed as dist
from pytest_scaling.runners.cache import RunCache, train_cached
from pytest_scaling.training.model import ModelSpec
from pytest_scaling.training.train import TrainConfig

def say(line):  # one write per line: the two ranks share a pipe (and PYTHONUNBUFFERED splits print())
    sys.stdout.write(line + "\\n")
    sys.stdout.flush()

class Spy(RunCache):
    def put(self, key, record, inputs=None):
        say(f"PUT {dist.get_rank()}")
        return super().put(key, record, inputs)

spec = ModelSpec(width=32, depth=1, vocab_size=64, seq_len=32)
config = TrainConfig(tokens=2**15, batch_tokens=16 * 32, eval_tokens=2048, device="cpu")
record = train_cached("gpt", spec, config, sys.argv[1], Spy(sys.argv[2]))
say("RESULT " + json.dumps({"rank": dist.get_rank(), "loss": record.loss, "tokens": record.tokens,
                            "cached": record.cached, "world": record.world_size}))
"""


def _torchrun(script: Path, cache: Path) -> tuple[list[dict], list[str]]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr",
           "127.0.0.1", "--master_port", str(free_port()), str(script), SRC, str(cache)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    results = [json.loads(line[len("RESULT ") :]) for line in lines if line.startswith("RESULT ")]
    return sorted(results, key=lambda r: r["rank"]), [line for line in lines if line.startswith("PUT")]


@pytest.mark.slow
def test_torchrun_two_processes_match_one_and_only_rank0_writes(tmp_path):
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    results, puts = _torchrun(script, tmp_path / "cache")
    assert [r["rank"] for r in results] == [0, 1] and all(r["world"] == 2 for r in results)
    assert results[0]["loss"] == results[1]["loss"] and not results[0]["cached"]
    assert puts == ["PUT 0"]
    assert len(list((tmp_path / "cache" / "runs").glob("*.json"))) == 1
    single = train("gpt", ModelSpec(width=32, depth=1, vocab_size=64, seq_len=32),
                   TrainConfig(tokens=2**15, batch_tokens=16 * 32, eval_tokens=2048, threads=1, device="cpu"),
                   SRC)  # fmt: skip (16 sequences a step: a batch of 1 per rank would amplify rounding)
    assert results[0]["tokens"] == single.tokens
    assert abs(results[0]["loss"] - single.loss) < 0.02  # same data, only the reduction order differs
    again, puts = _torchrun(script, tmp_path / "cache")
    assert all(r["cached"] for r in again) and again[0]["loss"] == results[0]["loss"] and puts == []


def test_thread_and_denormal_settings_are_restored():
    from pytest_scaling.training.train import _flushes_denormals

    before = torch.get_num_threads()
    for flush in (False, True):
        torch.set_flush_denormal(flush)
        assert _flushes_denormals() is flush
        train("gpt", SPEC, tiny(tokens=1024, threads=1), SRC)
        assert torch.get_num_threads() == before and _flushes_denormals() is flush
    torch.set_flush_denormal(False)


# -------------------------------------------------------------------------------------- hardware


def test_device_precision_and_peaks(monkeypatch):
    from pytest_scaling.training import hardware

    assert hardware.resolve_device("cpu") == "cpu" and hardware.resolve_precision("auto", "cpu") == "fp32"
    with pytest.raises(ScalingError):
        hardware.resolve_device("tpu")
    with pytest.raises(ScalingError):
        hardware.resolve_precision("fp8", "cpu")
    for name, peak in [("NVIDIA H100 80GB HBM3", 989e12), ("NVIDIA H100 PCIe", 756e12), ("NVIDIA L4", 121e12),
                       ("NVIDIA L40S", 362e12), ("NVIDIA A100-SXM4-80GB", 312e12), ("NVIDIA H200", 989e12)]:
        assert hardware._gpu_peak(name) == peak
    assert hardware._gpu_peak("Some Future GPU") is None and hardware.mfu(1e9, None) is None
    peak = hardware.cpu_peak_flops(1)
    assert 1e8 < peak < 1e14 and hardware.cpu_peak_flops(1) == peak  # calibrated once, then cached
    monkeypatch.setenv("PYTEST_SCALING_PEAK_FLOPS", "1e12")
    assert hardware.peak_flops("cpu") == 1e12
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
    assert hardware.default_threads() == max(1, (os.cpu_count() or 1) // 2)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")  # torchrun ranks share the cores too
    assert hardware.default_threads() == max(1, (os.cpu_count() or 1) // 4)
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT")
    monkeypatch.delenv("LOCAL_WORLD_SIZE")
    assert hardware.default_threads() is None


def _in_a_terminal(args: list[str], capsys, monkeypatch) -> tuple[str, str]:
    """Run the CLI in this process with stderr on a 100-column pseudo-terminal; (stdout, what the terminal
    showed). The terminal is a real one (a pty, drained as the CLI writes); the CLI's own process is not the
    subject, so it runs here rather than as a process that starts torch again."""
    import fcntl
    import pty
    import struct
    import termios
    import threading

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    shown = bytearray()

    def drain() -> None:
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the terminal closed
                break
            if not chunk:
                break
            shown.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    capsys.readouterr()
    with open(slave, "w", encoding="utf-8") as terminal, monkeypatch.context() as patch:
        patch.setattr(sys, "stderr", terminal)
        code = main(args)
    reader.join(timeout=30)
    os.close(master)
    assert code == 0 and not reader.is_alive()
    return capsys.readouterr().out, shown.decode(errors="replace")


def test_cli_shows_a_progress_bar_on_a_terminal_and_nothing_extra_with_json(capsys, monkeypatch):
    args = ["train", "--width", "16", "--depth", "1", "--seq-len", "32", "--tokens", "16384", "--data", SRC,
            "--threads", "1"]  # fmt: skip
    stdout, shown = _in_a_terminal(args, capsys, monkeypatch)
    assert "validation loss" in stdout and re.search(r"training: +\d+%\|.*\| [\d.]+k?/16\.4k", shown)
    stdout, shown = _in_a_terminal([*args, "--json"], capsys, monkeypatch)
    assert json.loads(stdout)["tokens"] == 16384 and "training" not in shown


def test_the_version_has_one_source():
    """The installed distribution's version is the package's ``__version__``; pyproject.toml reads it."""
    import importlib.metadata
    from pathlib import Path

    tomllib = pytest.importorskip("tomllib", reason="tomllib needs Python 3.11")

    assert importlib.metadata.version("pytest-scaling") == __version__
    project = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())["project"]
    assert "version" not in project and project["dynamic"] == ["version"]
