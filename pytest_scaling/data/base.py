"""The token-source base: a 1-D integer token array split once into train (first 90%) and validation
(last 10%), its seeded training batches and its fixed validation windows, and the counter-based hash
every generated source draws from."""

from __future__ import annotations

import hashlib
import math
from abc import ABC, abstractmethod
from collections.abc import Iterator
from functools import cached_property

import numpy as np
import torch

from ..errors import ScalingDataError

VAL_FRACTION = 0.1
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser, in place on a uint64 array (a bijective hash; wraps mod 2**64)."""
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


def _hash(key: int, counters: np.ndarray) -> np.ndarray:
    """Counter-based random uint64s: the same on every platform and numpy/torch version."""
    base = _mix64(np.array([key & (2**64 - 1)], dtype=np.uint64))
    x = counters.astype(np.uint64)  # a fresh array, hashed in place
    x *= _GOLDEN
    x += base
    return _mix64(x)


def _uniform(key: int, counters: np.ndarray) -> np.ndarray:
    """Uniform floats in [0, 1) with 53 random bits."""
    return (_hash(key, counters) >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _sha256(*arrays: np.ndarray) -> str:
    hasher = hashlib.sha256()
    for array in arrays:
        hasher.update(np.ascontiguousarray(array).data)
    return hasher.hexdigest()


def _token_dtype(vocab_size: int) -> type:
    return np.uint8 if vocab_size <= 2**8 else np.uint16 if vocab_size <= 2**16 else np.int64


class DataSource(ABC):
    """A tokenised corpus with a fixed train/validation split."""

    name: str
    vocab_size: int
    entropy_nats_per_token: float | None = None  # the loss floor, where the source knows it (built-in languages)
    bytes_per_token: float | None = None  # 1.0 for byte-level sources
    window_stride: int | None = None  # windows start at multiples of this (documents), else a grid

    @property
    @abstractmethod
    def identity(self) -> dict:
        """``{"name", "hash", ...parameters}``: content-hashed, stable across machines and paths."""

    @abstractmethod
    def _tokens(self) -> np.ndarray:
        """The whole corpus as a 1-D integer array (cached by the subclass)."""

    def __getstate__(self) -> dict:
        """Pickled (for a sweep's worker processes) without cached values: a copy rebuilds them itself, so a
        memory-mapped ``.bin`` file or a read text corpus is not copied into every worker."""
        cached = {name for cls in type(self).__mro__ for name, value in vars(cls).items()
                  if isinstance(value, cached_property)}  # fmt: skip
        return {k: v for k, v in self.__dict__.items() if k not in cached}

    def floor_nats_per_token(self, seq_len: int) -> float | None:
        """The best achievable mean loss of ``seq_len``-token windows, where known."""
        return self.entropy_nats_per_token

    def split(self, which: str) -> np.ndarray:
        """``"train"`` (first 90%) or ``"val"`` (last 10%) tokens."""
        if which not in ("train", "val"):
            raise ScalingDataError(f"split must be 'train' or 'val', got {which!r}")
        tokens = self._tokens()
        cut = self._split_point(len(tokens))
        return tokens[:cut] if which == "train" else tokens[cut:]

    def _split_point(self, n: int) -> int:
        return n - int(n * VAL_FRACTION)

    def _starts(self, n: int, window: int, offset: int = 0) -> np.ndarray:
        stride = self.window_stride or window
        starts = np.arange(offset, n - window + 1, stride, dtype=np.int64)
        if len(starts) == 0:
            raise ScalingDataError(f"{self.name} source: {n} tokens are too few for {window}-token windows")
        return starts

    def train_batches(
        self, batch_size: int, seq_len: int, *, seed: int, rank: int = 0, world_size: int = 1
    ) -> Iterator[torch.Tensor]:
        """Endless [batch_size, seq_len + 1] int64 batches; deterministic in (seed, rank, world_size)."""
        if not 0 <= rank < world_size or batch_size < 1 or seq_len < 1:
            raise ScalingDataError(f"bad batch request: batch_size={batch_size}, rank={rank}/{world_size}")
        tokens = self.split("train")
        window = seq_len + 1
        offsets = np.arange(window, dtype=np.int64)
        pending = np.empty(0, dtype=np.int64)
        epoch = 0
        global_batch = batch_size * world_size
        while True:
            while len(pending) < global_batch:
                key = int(_hash(seed, np.array([epoch]))[0])
                offset = 0 if epoch == 0 or self.window_stride else int(_hash(key, np.array([0]))[0] % window)
                starts = self._starts(len(tokens), window, offset)
                order = np.argsort(_hash(key + 1, np.arange(len(starts))), kind="stable")
                pending = np.concatenate([pending, starts[order]])
                epoch += 1
            mine = pending[rank * batch_size : (rank + 1) * batch_size]
            pending = pending[global_batch:]
            yield torch.from_numpy(tokens[mine[:, None] + offsets].astype(np.int64))

    def val_batches(self, seq_len: int, *, n_tokens: int = 2**17, batch_size: int = 64) -> list[torch.Tensor]:
        """``ceil(n_tokens / seq_len)`` windows spread evenly over the whole validation split (window ``i`` of
        the split's ``n`` grid windows at ``floor(i * n / count)``; all of them if the split is short)."""
        tokens = self.split("val")
        window = seq_len + 1
        starts = self._starts(len(tokens), window)
        count = max(1, math.ceil(n_tokens / seq_len))
        if count < len(starts):
            starts = starts[(np.arange(count, dtype=np.int64) * len(starts)) // count]
        windows = torch.from_numpy(tokens[starts[:, None] + np.arange(window)].astype(np.int64))
        return list(windows.split(batch_size))
