"""pytest plugin entry point (``pytest11: scaling``)."""
