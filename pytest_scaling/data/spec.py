"""Data specs (``"topics:topics=64"``, ``"text:PATH"``, ...) parsed into sources, cached per process."""

from __future__ import annotations

import functools

from ..errors import ScalingDataError
from .base import DataSource
from .files import BinSource, ByteSource, HFSource, StdlibSource
from .languages import SyntheticSource, TopicSource
from .pycode import PyCodeSource

DEFAULT_SPEC = "topics"  # the built-in language sweeps use when no data is named

_SYNTHETIC_OPTIONS = {
    "vocab": int, "order": int, "zipf": float, "copy": float, "facts": float, "n_facts": int,
    "fact_zipf": float, "lags": "ints", "lengths": "ints",
    "doc_len": int, "docs": int, "val_docs": int, "seed": int,
}  # fmt: skip


_TOPIC_OPTIONS = {
    "vocab": int, "topics": int, "topic_zipf": float, "mix": float, "zipf": float, "word_zipf": float, "cache": float,
    "doc_len": int, "docs": int, "val_docs": int, "seed": int,
}  # fmt: skip


def _options(text: str, allowed: dict, what: str) -> dict:
    """Parse ``"k=v,k=v"`` into typed keyword arguments; lists are ``/``-separated (``lags=8/16``)."""
    options = {}
    for item in filter(None, text.split(",")):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in allowed:
            raise ScalingDataError(f"{what}: bad option {item!r}; valid: {sorted(allowed)}")
        kind = allowed[key]
        try:
            options[key] = tuple(int(v) for v in value.split("/")) if kind == "ints" else kind(value)
        except ValueError:
            wanted = "list like 8/16" if kind == "ints" else kind.__name__
            raise ScalingDataError(f"{what}: option {key} needs a {wanted}, got {value!r}") from None
    return options


def _path_and_options(rest: str) -> tuple[str, str]:
    """``"PATH[:k=v,...]"`` -> (PATH, options); a path may itself contain ':'."""
    path, sep, tail = rest.rpartition(":")
    return (path, tail) if sep and "=" in tail else (rest, "")


@functools.lru_cache(maxsize=16)
def _from_spec(spec: str) -> DataSource:
    kind, _, rest = spec.partition(":")
    if kind == "synthetic":
        return SyntheticSource(**_options(rest, _SYNTHETIC_OPTIONS, "synthetic source"))
    if kind == "topics":
        return TopicSource(**_options(rest, _TOPIC_OPTIONS, "topics source"))
    if kind == "pycode":
        if rest not in ("", "bytes"):
            raise ScalingDataError(f"pycode source: use pycode or pycode:bytes, got {spec!r}")
        return PyCodeSource("bytes" if rest else "bpe")
    if kind == "stdlib":
        return StdlibSource(**_options(rest, {"max_bytes": int}, "stdlib source"))
    if kind in ("text", "bin", "hf"):
        path, opts = _path_and_options(rest)
        if not path:
            raise ScalingDataError(f"data spec {spec!r} needs a path: '{kind}:PATH'")
        if kind == "text":
            return ByteSource(path, **_options(opts, {"max_bytes": int}, "text source"))
        if kind == "bin":
            options = _options(opts, {"vocab": int, "dtype": str}, "bin source")
            if "vocab" not in options:
                raise ScalingDataError(f"data spec {spec!r} needs the vocab size: 'bin:PATH:vocab=N'")
            return BinSource(path, **options)
        path, _, split = path.partition(":")
        options = _options(opts, {"column": str, "vocab": int}, "hf source")
        return HFSource(path, split=split or None, **options)
    raise ScalingDataError(
        f"unknown data spec {spec!r}; use topics[:k=v,...], synthetic[:k=v,...], pycode[:bytes], stdlib, text:PATH, "
        "bin:PATH:vocab=N, hf:PATH[:split]"
    )


def get_source(spec: str | DataSource | None = None) -> DataSource:
    """A data source from a spec (sources are cached per process, so tokens are loaded once):
    ``None``/``"topics"`` (the default; options ``topics:topics=64,mix=0.5,...``), ``"synthetic"`` (options
    ``synthetic:vocab=64,copy=0.2,lags=8/16,...``), ``"pycode"`` (frozen real Python source, BPE 512;
    ``"pycode:bytes"``: byte-level), ``"stdlib"``,
    ``"text:PATH"`` (file or directory; ``:max_bytes=N``), ``"bin:PATH:vocab=N"`` (``,dtype=uint16``) or
    ``"hf:PATH[:split]"`` (``:column=text,vocab=N``)."""
    if isinstance(spec, DataSource):
        return spec
    if spec is None:
        spec = DEFAULT_SPEC
    if not isinstance(spec, str):
        raise ScalingDataError(f"a data spec must be a string or DataSource, got {type(spec).__name__}")
    return _from_spec(spec.strip())
