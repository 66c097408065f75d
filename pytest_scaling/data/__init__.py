"""Token sources, one module per family: ``languages`` (the generated ``topics`` and ``synthetic``, with a
known loss floor), ``pycode`` (frozen real Python source, BPE-tokenised), ``files`` (user data: text,
the running stdlib, nanoGPT ``.bin``, Hugging Face datasets saved to disk); ``base`` holds what they share
and ``spec`` turns a spec string into a source (``SOURCES``: the table of spec kinds).

Every source is a 1-D integer token array split once into train (first 90%) and validation (last 10%;
the built-in languages: their last ``val_docs`` documents).

* Training windows are ``seq_len + 1`` tokens on a non-overlapping grid of the train split (the synthetic
  source: one window per document start). Each epoch shuffles the grid by a seeded hash; epochs after the
  first shift the grid by a seeded offset. Step ``s`` takes the next ``batch_size * world_size`` windows
  (the *global* batch) and rank ``r`` gets rows ``[r * batch_size, (r + 1) * batch_size)``, so ranks are
  disjoint and a data-parallel run sees exactly the batches of a single process with the global batch.
* Validation windows are spread at a fixed stride over the whole validation split's grid (no seed): the
  same for every model.

Losses are nats/token; ``bytes_per_token`` (1.0 for byte-level sources) converts them to bits/byte.
"""

from importlib import import_module

_EXPORTS = {  # name -> module; imported on first use, so reading a spec's syntax loads no torch
    "VAL_FRACTION": "base", "DataSource": "base", "STDLIB_MAX_BYTES": "files", "BinSource": "files",
    "ByteSource": "files", "HFSource": "files", "StdlibSource": "files", "SyntheticSource": "languages",
    "TopicSource": "languages", "PyCodeSource": "pycode", "DEFAULT_SPEC": "spec", "SOURCES": "spec",
    "get_source": "spec",
}  # fmt: skip

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'pytest_scaling.data' has no attribute {name!r}")
