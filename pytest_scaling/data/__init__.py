"""Token sources, one module per family: ``languages`` (the generated ``topics`` and ``synthetic``, with a
known loss floor), ``pycode`` (frozen real Python source, BPE-tokenised), ``files`` (user data: text,
the running stdlib, nanoGPT ``.bin``, Hugging Face datasets saved to disk); ``base`` holds what they share
and ``spec`` turns a spec string into a source.

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

from .base import VAL_FRACTION, DataSource
from .files import STDLIB_MAX_BYTES, BinSource, ByteSource, HFSource, StdlibSource
from .languages import SyntheticSource, TopicSource
from .pycode import PyCodeSource
from .spec import DEFAULT_SPEC, get_source

__all__ = [
    "DEFAULT_SPEC", "STDLIB_MAX_BYTES", "VAL_FRACTION", "BinSource", "ByteSource", "DataSource", "HFSource",
    "PyCodeSource", "StdlibSource", "SyntheticSource", "TopicSource", "get_source",
]  # fmt: skip
