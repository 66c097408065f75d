"""How a model size is named in messages, reports and run names (no torch, so any layer may use it)."""


def size_label(spec: dict) -> str:
    """``w<width>-d<depth>`` from a size's spec dict. ``ModelSpec.label`` writes the same inline: the
    reference model's run identity hashes ModelSpec's code, so editing it would orphan every cached run."""
    return f"w{spec['width']}-d{spec['depth']}"
