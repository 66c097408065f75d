"""Fitting: scaling-law forms, the robust multi-start fit with its bootstrap and backtest, compute-optimal
allocation, the seed-noise model and reading points from CSV. numpy and scipy only (never torch), so the
fitting API and the ``pytest-scaling fit`` command load without the training stack.
"""
