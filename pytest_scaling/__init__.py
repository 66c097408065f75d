"""pytest-scaling: train a model ladder, fit scaling laws, gate architecture changes in pytest."""

__version__ = "0.1.0"
