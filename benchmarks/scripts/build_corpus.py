"""Rebuild the frozen ``pycode`` corpus (``pytest_scaling/data/corpora/pycode.*``) from CPython 3.11.7's
standard library: the ``.py`` files outside tests, encodings, pydoc's data and demos, in an order fixed by
the SHA-256 of each relative path (so validation, the last 10%, is a random sample of files, not the end of
the alphabet), joined by a ``<|file|>`` token; a byte-level BPE of ``VOCAB`` tokens trained on them with
the ``tokenizers`` package. Writes the tokenizer, the token ids (uint16 little-endian, xz) and the file list.

    python benchmarks/scripts/build_corpus.py            # needs CPython 3.11.7 and `pip install tokenizers`

The shipped sources never run this: they read the committed ids, identical on every machine."""

from __future__ import annotations

import hashlib
import lzma
import os
import platform
import sys
import sysconfig
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

VOCAB = 512
SEPARATOR = "<|file|>"
SKIP_DIRS = {"test", "tests", "idle_test", "encodings", "pydoc_data", "site-packages", "__pycache__", "turtledemo"}
OUT = Path(__file__).resolve().parents[2] / "pytest_scaling" / "data" / "corpora"


def stdlib_files(root: Path) -> list[str]:
    found = []
    for parent, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        found += [os.path.relpath(os.path.join(parent, n), root) for n in sorted(names) if n.endswith(".py")]
    return sorted(found, key=lambda p: hashlib.sha256(p.encode()).hexdigest())


def main() -> None:
    if platform.python_version() != "3.11.7":
        sys.exit(f"build_corpus: the frozen corpus is CPython 3.11.7's stdlib; this is {platform.python_version()}")
    root = Path(sysconfig.get_paths()["stdlib"])
    files = stdlib_files(root)
    texts = [(root / f).read_text(encoding="utf-8") for f in files]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=[SEPARATOR], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())  # fmt: skip
    tokenizer.train_from_iterator(texts, trainer)
    separator = tokenizer.token_to_id(SEPARATOR)
    ids = []
    for encoding in tokenizer.encode_batch(texts):
        ids += [separator, *encoding.ids]
    tokens = np.asarray(ids, dtype="<u2")
    OUT.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(OUT / "pycode.tokenizer.json"))
    (OUT / "pycode.tokens.xz").write_bytes(lzma.compress(tokens.tobytes(), preset=9 | lzma.PRESET_EXTREME))
    (OUT / "pycode.files.txt").write_text("\n".join(files) + "\n")
    n_bytes = sum(len(t.encode()) for t in texts)
    print(f"{len(files)} files, {n_bytes:,} bytes, {len(tokens):,} tokens ({n_bytes / len(tokens):.2f} bytes/token), "
          f"vocab {tokenizer.get_vocab_size()}, sha256 {hashlib.sha256(tokens.tobytes()).hexdigest()}")


if __name__ == "__main__":
    main()
