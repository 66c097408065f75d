"""Data specs (``"topics:topics=64"``, ``"text:PATH"``, ...) parsed into sources, cached per process.

``SOURCES`` is the one table of spec kinds: each entry's syntax and how it builds its source.
The error for an unknown kind, the CLI's ``--data`` help and ``get_source``'s docs are read from it, so a
new source family is one module in this package and one entry here. The table imports no source module
(each builder imports its own), so reading the syntax costs nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import ScalingDataError
from ..values import finite_number, whole_number

if TYPE_CHECKING:
    from .base import DataSource

DEFAULT_SPEC = "topics"  # the built-in language sweeps use when no data is named


def _whole_numbers(text: str) -> tuple[int, ...]:
    """``/``-separated integers >= 0 (``8/16``): ``,`` separates the options."""
    try:
        return tuple(whole_number(v) for v in text.split("/"))
    except ValueError:
        raise ValueError(f"expected integers >= 0 separated by '/', e.g. 8/16; got {text!r}") from None


_SYNTHETIC_OPTIONS = {
    "vocab": whole_number, "order": whole_number, "zipf": finite_number, "copy": finite_number,
    "facts": finite_number, "n_facts": whole_number, "fact_zipf": finite_number, "lags": _whole_numbers,
    "lengths": _whole_numbers, "doc_len": whole_number, "docs": whole_number, "val_docs": whole_number,
    "seed": whole_number,
}  # fmt: skip


_TOPIC_OPTIONS = {
    "vocab": whole_number, "topics": whole_number, "topic_zipf": finite_number, "mix": finite_number,
    "zipf": finite_number, "word_zipf": finite_number, "cache": finite_number, "doc_len": whole_number,
    "docs": whole_number, "val_docs": whole_number, "seed": whole_number,
}  # fmt: skip


def _options(text: str, allowed: dict[str, Callable[[str], object]], what: str) -> dict:
    """Parse ``"k=v,k=v"`` into keyword arguments, each value by its key's parser (``values``, or ``str``)."""
    options = {}
    for item in filter(None, text.split(",")):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in allowed:
            raise ScalingDataError(f"{what}: bad option {item!r}; valid: {sorted(allowed)}")
        try:
            options[key] = allowed[key](value)
        except ValueError as exc:
            raise ScalingDataError(f"{what}: option {key}: {exc}") from None
    return options


def _path_and_options(rest: str) -> tuple[str, str]:
    """``"PATH[:k=v,...]"`` -> (PATH, options); a path may itself contain ':'."""
    path, sep, tail = rest.rpartition(":")
    return (path, tail) if sep and "=" in tail else (rest, "")


def _topics(rest: str, spec: str) -> DataSource:
    from .languages import TopicSource

    return TopicSource(**_options(rest, _TOPIC_OPTIONS, "topics source"))


def _synthetic(rest: str, spec: str) -> DataSource:
    from .languages import SyntheticSource

    return SyntheticSource(**_options(rest, _SYNTHETIC_OPTIONS, "synthetic source"))


def _pycode(rest: str, spec: str) -> DataSource:
    from .pycode import PyCodeSource

    if rest not in ("", "bytes"):
        raise ScalingDataError(f"pycode source: use pycode or pycode:bytes, got {spec!r}")
    return PyCodeSource("bytes" if rest else "bpe")


def _stdlib(rest: str, spec: str) -> DataSource:
    from .files import StdlibSource

    return StdlibSource(**_options(rest, {"max_bytes": whole_number}, "stdlib source"))


def _file_path(kind: str, rest: str, spec: str) -> tuple[str, str]:
    path, opts = _path_and_options(rest)
    if not path:
        raise ScalingDataError(f"data spec {spec!r} needs a path: '{kind}:PATH'")
    return path, opts


def _text(rest: str, spec: str) -> DataSource:
    from .files import ByteSource

    path, opts = _file_path("text", rest, spec)
    return ByteSource(path, **_options(opts, {"max_bytes": whole_number}, "text source"))


def _bin(rest: str, spec: str) -> DataSource:
    from .files import BinSource

    path, opts = _file_path("bin", rest, spec)
    options = _options(opts, {"vocab": whole_number, "dtype": str}, "bin source")
    if "vocab" not in options:
        raise ScalingDataError(f"data spec {spec!r} needs the vocab size: 'bin:PATH:vocab=N'")
    return BinSource(path, **options)


def _hf(rest: str, spec: str) -> DataSource:
    from .files import HFSource

    path, opts = _file_path("hf", rest, spec)
    path, _, split = path.partition(":")
    return HFSource(path, split=split or None, **_options(opts, {"column": str, "vocab": whole_number}, "hf source"))


@dataclass(frozen=True)
class SourceKind:
    """One kind of data spec: its syntax and its builder ``(rest, spec) -> source`` (``rest``: the spec after
    ``kind:``)."""

    usage: str
    build: Callable[[str, str], DataSource]


SOURCES: dict[str, SourceKind] = {
    # documents on hidden topics whose words recur, with a known loss floor (the default)
    "topics": SourceKind("topics[:k=v,...]", _topics),
    # a Markov chain with copy spans and facts, with a known entropy
    "synthetic": SourceKind("synthetic[:k=v,...]", _synthetic),
    # CPython 3.11.7's standard library frozen in the package, BPE 512 (pycode:bytes: byte level)
    "pycode": SourceKind("pycode[:bytes]", _pycode),
    # this Python's standard library, byte level (differs between Python versions)
    "stdlib": SourceKind("stdlib[:max_bytes=N]", _stdlib),
    "text": SourceKind("text:PATH[:max_bytes=N]", _text),  # a text file or directory, byte level
    "bin": SourceKind("bin:PATH:vocab=N[,dtype=uint16]", _bin),  # a nanoGPT-style token file
    "hf": SourceKind("hf:PATH[:split][:column=text,vocab=N]", _hf),  # a Hugging Face dataset saved to disk
}


def usage() -> str:
    """The spec syntax of every kind, for help texts: ``"topics[:k=v,...], synthetic[:k=v,...], ..."``."""
    return ", ".join(kind.usage for kind in SOURCES.values())


@functools.lru_cache(maxsize=16)
def _from_spec(spec: str) -> DataSource:
    kind, _, rest = spec.partition(":")
    if kind not in SOURCES:
        raise ScalingDataError(f"unknown data spec {spec!r}; use {usage()}")
    return SOURCES[kind].build(rest, spec)


def get_source(spec: str | DataSource | None = None) -> DataSource:
    """A data source from a spec (sources are cached per process, so tokens are loaded once); ``None`` is
    ``DEFAULT_SPEC``. The kinds, their syntax and options are ``SOURCES``; a ``DataSource`` is returned as it
    is."""
    from .base import DataSource

    if isinstance(spec, DataSource):
        return spec
    if spec is None:
        spec = DEFAULT_SPEC
    if not isinstance(spec, str):
        raise ScalingDataError(f"a data spec must be a string or DataSource, got {type(spec).__name__}")
    return _from_spec(spec.strip())
