"""Small helpers shared by test modules."""

import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (for a torchrun rendezvous)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: A user's model split over modules: ``factory.build`` builds ``net.Net``, which uses ``layers.Layer``
#: (base class in ``base``, a constant from ``config``).
PACKAGE = {
    "__init__.py": "",
    "config.py": """
        HIDDEN = 2
        ACT = "gelu"
    """,
    "base.py": """
        from torch import nn


        class Base(nn.Module):
            def scale(self):
                return 1.0
    """,
    "layers.py": """
        import torch
        from torch import nn

        from . import config
        from .base import Base


        class Layer(Base):
            def __init__(self, width):
                super().__init__()
                self.fc = nn.Linear(width, config.HIDDEN * width)
                self.out = nn.Linear(config.HIDDEN * width, width)

            def forward(self, x):
                return self.out(torch.nn.functional.gelu(self.fc(x))) * self.scale()
    """,
    "net.py": """
        from torch import nn

        from .layers import Layer


        class Net(nn.Module):
            def __init__(self, spec, mult=1):
                super().__init__()
                self.embed = nn.Embedding(spec.vocab_size, spec.width * mult)
                self.layer = Layer(spec.width * mult)
                self.head = nn.Linear(spec.width * mult, spec.vocab_size)

            def forward(self, idx):
                return self.head(self.layer(self.embed(idx)))
    """,
    "factory.py": '''
        from .net import Net


        def build(spec, mult=1):
            """Build the net."""
            return Net(spec, mult)


        def unrelated():
            return 1


        class Builder:
            def __init__(self, mult):
                self.mult = mult

            def __call__(self, spec):
                return Net(spec, self.mult)
    ''',
    "other.py": """
        VALUE = 1
    """,
}


def write_package(root: Path, **edits: tuple[str, str]) -> None:
    """Write :data:`PACKAGE` as ``root/userpkg``, each edit ``file=(old, new)`` applied to its file."""
    package = root / "userpkg"
    package.mkdir(exist_ok=True)
    for name, text in PACKAGE.items():
        text = textwrap.dedent(text)
        if name in edits:
            old, new = edits[name]
            assert old in text, (name, old)
            text = text.replace(old, new)
        (package / name).write_text(text)


def start_sweep_until_a_run_is_stored(tmp_path: Path, script_text: str, seconds: float, env: dict | None = None):
    """Start ``script_text`` (a sweep caching into ``tmp_path/cache``) in its own process group and wait until
    its first run is stored: (the process, the cache's runs directory). Stored means its entry is in place, not
    the temporary file it is written to first (Ctrl-C during that write rightly keeps nothing)."""
    script = tmp_path / "sweep.py"
    script.write_text(script_text)
    runs_dir = tmp_path / "cache" / "runs"
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "cache")], start_new_session=True, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip

    def stored() -> bool:
        return runs_dir.exists() and any(p.suffix == ".json" and not p.name.startswith(".") for p in runs_dir.iterdir())

    deadline = time.monotonic() + seconds
    while not stored() and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    assert stored(), f"no run finished in {seconds:g} s"
    return proc, runs_dir


def tensorboard_runs(store: Path, experiment: str) -> dict[str, dict[str, list]]:
    """``<test>/<run>`` -> tag -> [(step, value)] for every run of ``experiment`` under a TensorBoard log
    directory that has a training-loss curve, read with TensorBoard's own ``EventAccumulator``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = {}
    for path in sorted((store / experiment).glob("*/*")):
        acc = EventAccumulator(str(path))
        acc.Reload()
        if "train/loss" in acc.Tags()["scalars"]:
            out[f"{path.parent.name}/{path.name}"] = {tag: [(e.step, e.value) for e in acc.Scalars(tag)]
                                                      for tag in acc.Tags()["scalars"]}  # fmt: skip
    return out
