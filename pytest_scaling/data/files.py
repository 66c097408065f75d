"""User data from disk: text files or directories (byte-level), the running Python's stdlib, nanoGPT
``.bin`` token files and Hugging Face datasets saved with ``save_to_disk``."""

from __future__ import annotations

import hashlib
import os
import sysconfig
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path

import numpy as np

from ..errors import ScalingDataError
from .base import DataSource, _sha256, _token_dtype

STDLIB_MAX_BYTES = 16 * 2**20


class ByteSource(DataSource):
    """Bytes of a file or of every file under a directory (in ``files()`` order), concatenated, optionally
    capped at the first ``max_bytes``. Vocab 256; the identity hashes the bytes, not the paths."""

    name = "text"
    vocab_size = 256
    bytes_per_token = 1.0
    suffix = ""
    skip_dirs: frozenset[str] = frozenset()

    def __init__(self, path: str | os.PathLike, max_bytes: int | None = None) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise ScalingDataError(f"{self.name} source: no such file or directory: {self.path}")
        if max_bytes is not None and max_bytes < 1:
            raise ScalingDataError(f"{self.name} source: max_bytes must be >= 1, got {max_bytes}")
        self.max_bytes = max_bytes

    def files(self) -> Iterator[Path]:
        """The files read, in order: top-down, each directory's files (sorted by name) before its
        subdirectories (sorted by name); hidden names and ``skip_dirs`` are skipped."""
        if self.path.is_file():
            yield self.path
            return
        for root, dirs, names in os.walk(self.path):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in self.skip_dirs)
            for name in sorted(names):
                if not name.startswith(".") and name.endswith(self.suffix):
                    yield Path(root, name)

    @cached_property
    def _data(self) -> np.ndarray:
        chunks, size = [], 0
        for file in self.files():
            if self.max_bytes is not None and size >= self.max_bytes:
                break
            data = file.read_bytes()
            chunks.append(data)
            size += len(data)
        data = b"".join(chunks)[: self.max_bytes]
        if len(data) < 2:
            raise ScalingDataError(f"{self.name} source: {self.path} holds {len(data)} bytes")
        return np.frombuffer(data, dtype=np.uint8)

    def _tokens(self) -> np.ndarray:
        return self._data

    @cached_property
    def identity(self) -> dict:
        return {"name": self.name, "hash": _sha256(self._data)[:16], "bytes": len(self._data)}


class StdlibSource(ByteSource):
    """The running Python's standard-library ``.py`` sources (site-packages and ``__pycache__`` excluded),
    byte-level, in ``files()`` order, capped at the first ``max_bytes`` (default 16 MiB of about 34 MiB in
    CPython 3.11). The content differs between Python versions; the identity's hash tells them apart."""

    name = "stdlib"
    suffix = ".py"
    skip_dirs = frozenset({"site-packages", "dist-packages", "__pycache__"})

    def __init__(self, max_bytes: int = STDLIB_MAX_BYTES) -> None:
        super().__init__(sysconfig.get_paths()["stdlib"], max_bytes)


class BinSource(DataSource):
    """A nanoGPT-style flat token file (``uint16`` by default), memory-mapped. ``vocab`` is required and
    checked against the largest token while the content is hashed."""

    name = "bin"

    def __init__(self, path: str | os.PathLike, vocab: int, dtype: str = "uint16") -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ScalingDataError(f"bin source: no such file: {self.path}")
        if dtype not in ("uint8", "uint16", "uint32"):
            raise ScalingDataError(f"bin source: dtype must be uint8, uint16 or uint32, got {dtype!r}")
        self.vocab_size, self.dtype = int(vocab), np.dtype(dtype)
        if self.path.stat().st_size % self.dtype.itemsize:
            raise ScalingDataError(f"bin source: {self.path} size is not a multiple of {self.dtype} items")

    @cached_property
    def _data(self) -> np.ndarray:
        return np.memmap(self.path, dtype=self.dtype, mode="r")

    def _tokens(self) -> np.ndarray:
        return self._data

    @cached_property
    def identity(self) -> dict:
        hasher, top, chunk = hashlib.sha256(), 0, 2**24
        for i in range(0, len(self._data), chunk):
            block = np.asarray(self._data[i : i + chunk])
            hasher.update(block.data)
            top = max(top, int(block.max()))
        if top >= self.vocab_size:
            raise ScalingDataError(f"bin source: {self.path} holds token {top} >= vocab={self.vocab_size}")
        return {"name": self.name, "hash": hasher.hexdigest()[:16], "vocab": self.vocab_size}


class HFSource(DataSource):
    """A Hugging Face ``datasets`` dataset saved with ``save_to_disk`` (never downloaded). A ``DatasetDict``
    uses ``split`` (default ``"train"``). Column ``column`` (default ``"text"``, else ``"input_ids"``):
    strings are UTF-8 encoded byte-level (vocab 256, rows joined by a newline); integer lists are token ids
    (rows concatenated; vocab ``vocab`` or the largest id + 1)."""

    name = "hf"

    def __init__(
        self, path: str, split: str | None = None, column: str | None = None, vocab: int | None = None
    ) -> None:
        try:
            import datasets
        except ImportError as exc:
            raise ScalingDataError("hf source needs the 'datasets' package (pip install datasets)") from exc
        if not Path(path).exists():
            raise ScalingDataError(f"hf source: no dataset saved at {path} (only local load_from_disk paths)")
        dataset = datasets.load_from_disk(path)
        if isinstance(dataset, datasets.DatasetDict):
            split = split or "train"
            if split not in dataset:
                raise ScalingDataError(f"hf source: {path} has no split {split!r}; splits: {list(dataset)}")
            dataset = dataset[split]
        names = dataset.column_names
        column = column or next((c for c in ("text", "input_ids") if c in names), None)
        if column not in names:
            raise ScalingDataError(f"hf source: {path} has no column {column or 'text'!r}; columns: {names}")
        rows = dataset[column]
        if rows and isinstance(rows[0], str):
            self._data = np.frombuffer("\n".join(rows).encode("utf-8"), dtype=np.uint8)
            self.vocab_size, self.bytes_per_token = 256, 1.0
        else:
            flat = np.concatenate([np.asarray(r, dtype=np.int64) for r in rows]) if rows else np.zeros(0)
            self.vocab_size = int(vocab) if vocab else int(flat.max()) + 1 if len(flat) else 1
            if len(flat) and flat.max() >= self.vocab_size:
                raise ScalingDataError(f"hf source: token {flat.max()} >= vocab={self.vocab_size}")
            self._data = flat.astype(_token_dtype(self.vocab_size))
        if len(self._data) < 2:
            raise ScalingDataError(f"hf source: {path} column {column!r} holds {len(self._data)} tokens")
        self.column = column
        self.split_name = split

    def _tokens(self) -> np.ndarray:
        return self._data

    @cached_property
    def identity(self) -> dict:
        return {"name": self.name, "hash": _sha256(self._data)[:16], "column": self.column,
                "vocab": self.vocab_size}  # fmt: skip
