"""Training: a model's shape (``spec.ModelSpec``, torch-free), the reference transformer and its size
ladder with parameter and FLOP counts, one training run with Accelerate (returning a ``RunRecord``), device,
precision and peak-FLOP/s detection, the ``torchrun`` process topology, the causality check, and the run
identity (code and behavioural fingerprint) the run cache keys on. This package's ``__init__`` imports
nothing, so ``spec`` and ``topology`` stay readable without torch.
"""
