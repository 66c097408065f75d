"""The shape of one model (``ModelSpec``): what a factory receives and what records carry (no torch)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from ..errors import ScalingDataError


@dataclass(frozen=True)
class ModelSpec:
    """The shape of one model. User factories receive this object."""

    width: int
    depth: int
    heads: int | None = None
    vocab_size: int = 256
    seq_len: int = 128
    mlp_ratio: float = 4.0
    tied_embeddings: bool = True
    rope: bool = False

    def __post_init__(self) -> None:
        for name in ("width", "depth", "vocab_size", "seq_len"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ScalingDataError(f"ModelSpec.{name} must be a positive int, got {value!r}")
        if self.heads is not None and (self.heads < 1 or self.width % self.heads):
            raise ScalingDataError(f"ModelSpec.heads={self.heads} must divide width={self.width}")
        if not self.mlp_ratio > 0:
            raise ScalingDataError(f"ModelSpec.mlp_ratio must be > 0, got {self.mlp_ratio!r}")
        if self.rope and self.head_dim % 2:
            raise ScalingDataError(f"rope needs an even head dim, got {self.head_dim}")

    @property
    def label(self) -> str:
        """``w<width>-d<depth>``: the size's name in messages and reports."""
        return f"w{self.width}-d{self.depth}"

    @property
    def n_heads(self) -> int:
        """Heads actually used: ``heads``, or the default rule (head dim 32, else 16, else 1 head)."""
        if self.heads is not None:
            return self.heads
        for head_dim in (32, 16):
            if self.width % head_dim == 0:
                return self.width // head_dim
        return 1

    @property
    def head_dim(self) -> int:
        return self.width // self.n_heads

    @property
    def hidden(self) -> int:
        """MLP hidden width."""
        return max(1, round(self.mlp_ratio * self.width))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelSpec:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ScalingDataError(f"unknown ModelSpec keys {unknown}; valid: {sorted(known)}")
        if "width" not in d or "depth" not in d:
            raise ScalingDataError(f"a model size needs 'width' and 'depth', got {dict(d)}")
        return cls(**d)
