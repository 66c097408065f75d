"""``pycode``: real text, frozen. CPython 3.11.7's standard library sources (outside tests; 589 files,
9.9 MB, PSF licence in ``corpora/pycode.LICENSE.txt``), in an order fixed by a hash of each path and
tokenised once by a byte-level BPE of 512 tokens trained on them (``corpora/pycode.tokenizer.json``). The
package ships the token ids, so every machine and Python version reads the same 4,577,545 tokens; the
digest is checked on load. ``pycode:bytes`` is the same text byte-level (vocab 256, a NUL byte between
files), decoded from the ids through the committed vocabulary. ``benchmarks/scripts/build_corpus.py`` rebuilds the
files.

Code is a text where copying pays (identifiers repeat within a file), context reaches far (a name is
defined lines before it is used) and depth composes (an induction step needs two layers), as in the text
language models are trained on; its entropy is unknown, so the gate's floor checks fall back to warnings.
"""

from __future__ import annotations

import hashlib
import json
import lzma
from functools import cached_property
from pathlib import Path

import numpy as np

from ..errors import ScalingDataError
from .base import VAL_FRACTION, DataSource

CORPORA = Path(__file__).with_name("corpora")
PYCODE_SHA256 = "666b41f46a48813bda69a31eb0e0f9b9d9afc074a231f1d55eaef0ef2be3919b"
PYCODE_BYTES = 9_884_027


def _byte_level_alphabet() -> dict[str, int]:
    """GPT-2's byte-level BPE alphabet: the printable character that stands for each byte."""
    kept = [*range(ord("!"), ord("~") + 1), *range(ord("\xa1"), ord("\xac") + 1), *range(ord("\xae"), 256)]
    shifted = [b for b in range(256) if b not in kept]
    return {**{chr(b): b for b in kept}, **{chr(256 + i): b for i, b in enumerate(shifted)}}


class PyCodeSource(DataSource):
    """The frozen ``pycode`` corpus: vocab 512, a ``<|file|>`` token (id 0) before each file; validation is
    the whole files in the last 10% of the tokens (53 files). ``level="bytes"``: the same text as bytes
    (vocab 256; ``<|file|>`` is a NUL byte), split before the same file."""

    name = "pycode"

    def __init__(self, level: str = "bpe") -> None:
        if level not in ("bpe", "bytes"):
            raise ScalingDataError(f"pycode source: level must be bpe or bytes, got {level!r}")
        self.level = level
        self.vocab_size = 512 if level == "bpe" else 256

    @cached_property
    def _ids(self) -> np.ndarray:
        path = CORPORA / "pycode.tokens.xz"
        try:
            raw = lzma.decompress(path.read_bytes())
        except (OSError, lzma.LZMAError) as exc:
            raise ScalingDataError(f"pycode source: cannot read {path}: {exc}") from None
        if hashlib.sha256(raw).hexdigest() != PYCODE_SHA256:
            raise ScalingDataError(f"pycode source: {path} does not match its pinned digest (reinstall the package)")
        return np.frombuffer(raw, dtype="<u2")

    @cached_property
    def _pieces(self) -> list[bytes]:
        """Each token id's bytes (``<|file|>``: a NUL byte), from the committed vocabulary."""
        alphabet = _byte_level_alphabet()
        vocab = json.loads(self.tokenizer_path().read_text())["model"]["vocab"]
        pieces = [b""] * len(vocab)
        for piece, i in vocab.items():
            pieces[i] = b"\0" if i == 0 else bytes(alphabet[c] for c in piece)
        return pieces

    @cached_property
    def _byte_lengths(self) -> np.ndarray:
        """How many bytes each token of the corpus stands for."""
        return np.array([len(p) for p in self._pieces])[self._ids]

    @cached_property
    def _data(self) -> np.ndarray:
        if self.level == "bpe":
            return self._ids
        lengths = self._byte_lengths
        table = np.frombuffer(b"".join(self._pieces), dtype=np.uint8)
        starts = np.cumsum([0] + [len(p) for p in self._pieces[:-1]])[self._ids]
        ends = np.cumsum(lengths)
        within = np.arange(ends[-1]) - np.repeat(ends - lengths, lengths)  # each byte's offset in its token
        return table[np.repeat(starts, lengths) + within]

    def _split_point(self, n: int) -> int:
        cut = len(self._ids) - int(len(self._ids) * VAL_FRACTION)
        cut += int(np.argmax(self._ids[cut:] == 0))  # at a file start: validation is whole held-out files
        return cut if self.level == "bpe" else int(self._byte_lengths[:cut].sum())

    @property
    def bytes_per_token(self) -> float:
        return PYCODE_BYTES / len(self._ids) if self.level == "bpe" else 1.0

    def _tokens(self) -> np.ndarray:
        return self._data

    @property
    def identity(self) -> dict:
        return {"name": self.name, "hash": PYCODE_SHA256[:16], "level": self.level, "vocab": self.vocab_size}

    @staticmethod
    def tokenizer_path() -> Path:
        """The BPE that made the ids (``tokenizers.Tokenizer.from_file`` reads it), to decode or inspect."""
        return CORPORA / "pycode.tokenizer.json"
