"""Process topology, read in one place: this process's rank in a ``torchrun`` launch, the launch's size, and
how many processes were started beside it on this machine. Environment only (no torch), so the pytest
plugin can read it at start-up, before any process group exists."""

from __future__ import annotations

import os


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, "") or default)


def launch_rank() -> int:
    """This process's rank in its ``torchrun`` launch (``RANK``; 0 outside one)."""
    return _env_int("RANK", 0)


def launch_world_size() -> int:
    """Processes of this ``torchrun`` launch (``WORLD_SIZE``; 1 outside one)."""
    return _env_int("WORLD_SIZE", 1)


def sibling_processes() -> int:
    """Processes started together on this machine: pytest-xdist workers times torchrun's local ranks."""
    return max(_env_int("PYTEST_XDIST_WORKER_COUNT", 1), 1) * max(_env_int("LOCAL_WORLD_SIZE", 1), 1)
