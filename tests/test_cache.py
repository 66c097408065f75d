"""The run cache: keys, hits, corrupt entries, atomic writes and two processes at once."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from dataclasses import replace

import pytest

from pytest_scaling.data import get_source
from pytest_scaling.runners import cache as cache_module
from pytest_scaling.runners.cache import RunCache, train_cached
from pytest_scaling.training.model import ModelSpec, build_reference
from pytest_scaling.training.train import TrainConfig

SRC = "synthetic:docs=512,val_docs=64"
SPEC = ModelSpec(width=16, depth=1, vocab_size=64, seq_len=32)
CONFIG = TrainConfig(tokens=4096, eval_tokens=1024, threads=1)


def other_factory(spec):
    return build_reference(spec)


def test_key_changes_with_every_input(tmp_path, monkeypatch):
    cache = RunCache(tmp_path)
    base = cache.key("gpt", SPEC, CONFIG, SRC)
    assert base == cache.key("gpt", SPEC, CONFIG, get_source(SRC)) and len(base) == 64
    variants = [
        cache.key("gpt", replace(SPEC, width=32), CONFIG, SRC),
        cache.key("gpt", replace(SPEC, rope=True), CONFIG, SRC),
        cache.key(other_factory, SPEC, CONFIG, SRC),
        cache.key("gpt", SPEC, CONFIG, SRC + ",seed=1"),
        cache.key("gpt", SPEC, replace(CONFIG, seed=1), SRC),
        cache.key("gpt", SPEC, replace(CONFIG, lr=1e-3), SRC),
        cache.key("gpt", SPEC, replace(CONFIG, tokens=4097), SRC),
        cache.key("gpt", SPEC, replace(CONFIG, schedule="linear"), SRC),
        cache.key("gpt", SPEC, CONFIG, SRC, world_size=2),
    ]
    monkeypatch.setattr(cache_module, "__version__", "999.0")
    variants.append(cache.key("gpt", SPEC, CONFIG, SRC))
    monkeypatch.undo()
    monkeypatch.setattr(cache_module, "_trainer_identity", lambda: "edited trainer")
    variants.append(cache.key("gpt", SPEC, CONFIG, SRC))
    monkeypatch.undo()
    assert len({base, *variants}) == len(variants) + 1
    # threads only change rounding; "auto" resolves to this machine's device
    assert cache.key("gpt", SPEC, replace(CONFIG, threads=2), SRC) == base
    device = "cuda" if __import__("torch").cuda.is_available() else "cpu"
    assert cache.key("gpt", SPEC, replace(CONFIG, device=device), SRC) == base


def test_miss_then_hit(tmp_path):
    cache = RunCache(tmp_path / ".scaling")
    first = train_cached("gpt", SPEC, CONFIG, SRC, cache)
    assert not first.cached
    assert (tmp_path / ".scaling" / ".gitignore").read_text().strip() == "*"
    entries = list((tmp_path / ".scaling" / "runs").glob("*.json"))
    assert len(entries) == 1 and json.loads(entries[0].read_text())["inputs"]["factory"] == first.factory
    second = train_cached("gpt", SPEC, CONFIG, SRC, cache)
    assert second.cached and second.loss == first.loss and second.seconds == first.seconds
    assert replace(second, cached=False) == first
    assert train_cached("gpt", SPEC, CONFIG, SRC, None).cached is False  # no cache: always trains


@pytest.mark.parametrize("damage", ["garbage", "truncated", "wrong_key", "empty"])
def test_corrupt_entry_is_ignored_with_a_warning_and_retrained(tmp_path, damage):
    cache = RunCache(tmp_path)
    record = train_cached("gpt", SPEC, CONFIG, SRC, cache)
    key = cache.key("gpt", SPEC, CONFIG, SRC)
    path = cache.path(key)
    text = path.read_text()
    path.write_text({"garbage": "{not json", "truncated": text[: len(text) // 2], "empty": "",
                     "wrong_key": text.replace(key, "0" * 64)}[damage])  # fmt: skip
    with pytest.warns(UserWarning, match=str(path.name)) as caught:
        again = train_cached("gpt", SPEC, CONFIG, SRC, cache)
    assert len([w for w in caught if "corrupt" in str(w.message)]) == 1  # warned once
    assert not again.cached and again.loss == record.loss
    assert cache.get(key) is not None  # repaired


def test_entries_get_the_umask_mode_and_retrain_before_ignores_older_ones(tmp_path):
    old = os.umask(0o027)
    try:
        first = train_cached("gpt", SPEC, CONFIG, SRC, RunCache(tmp_path))
    finally:
        os.umask(old)
    (entry,) = (tmp_path / "runs").iterdir()
    assert stat.S_IMODE(entry.stat().st_mode) == 0o640
    assert train_cached("gpt", SPEC, CONFIG, SRC, RunCache(tmp_path)).cached
    retrain = RunCache(tmp_path, retrain_before=time.time() + 1)
    again = train_cached("gpt", SPEC, CONFIG, SRC, retrain)
    assert not again.cached and again.loss == first.loss


def test_finished_runs_survive_a_later_failure(tmp_path):
    cache = RunCache(tmp_path)
    kept = train_cached("gpt", SPEC, CONFIG, SRC, cache)

    def broken(spec):
        raise RuntimeError("factory failed")

    with pytest.raises(RuntimeError, match="factory failed"):
        train_cached(broken, SPEC, CONFIG, SRC, cache)
    key = cache.key("gpt", SPEC, CONFIG, SRC)
    assert cache.get(key).loss == kept.loss
    assert [p.name for p in (tmp_path / "runs").iterdir()] == [cache.path(key).name]


WORKER = """
import json, sys
from pathlib import Path
from pytest_scaling.runners.cache import RunCache, train_cached
from pytest_scaling.training.model import ModelSpec
from pytest_scaling.training.train import TrainConfig

spec = ModelSpec(width=16, depth=1, vocab_size=64, seq_len=32)
config = TrainConfig(tokens=4096, eval_tokens=1024, threads=1)
Path(sys.argv[2]).write_text("ready")
record = train_cached("gpt", spec, config, sys.argv[3], RunCache(sys.argv[1]))
print(json.dumps({"cached": record.cached, "loss": record.loss}))
"""


def test_two_processes_at_once_train_the_run_once(tmp_path):
    cache = RunCache(tmp_path / "cache")
    key = cache.key("gpt", SPEC, CONFIG, SRC)
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER)
    with cache.lock(key):  # hold the run's lock until both workers are waiting on it
        args = [[sys.executable, str(worker), str(tmp_path / "cache"), str(tmp_path / f"ready{i}"), SRC]
                for i in range(2)]  # fmt: skip
        procs = [subprocess.Popen(a, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for a in args]
        deadline = time.monotonic() + 60
        while not all((tmp_path / f"ready{i}").exists() for i in range(2)) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        assert cache.get(key) is None
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outputs.append(json.loads(out.strip().splitlines()[-1]))
    assert sorted(o["cached"] for o in outputs) == [False, True]
    assert outputs[0]["loss"] == outputs[1]["loss"]
    assert len(list((tmp_path / "cache" / "runs").iterdir())) == 1  # no temporary files left behind


def test_the_data_source_class_is_part_of_the_key(tmp_path):
    from pytest_scaling.data import SyntheticSource

    class Reordered(SyntheticSource):
        """A user's source: the same tokens and identity, batches drawn differently."""

        def train_batches(self, batch_size, seq_len, **kwargs):
            return super().train_batches(batch_size, seq_len, **{**kwargs, "seed": kwargs["seed"] + 1})

    plain, custom = get_source(SRC), Reordered(docs=512, val_docs=64)
    assert custom.identity == plain.identity
    cache = RunCache(tmp_path)
    assert cache.key("gpt", SPEC, CONFIG, custom) != cache.key("gpt", SPEC, CONFIG, plain)
