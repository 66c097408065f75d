"""Repository-level pytest configuration.

The plugin itself is registered through the ``pytest11`` entry point of the installed package
(``pip install -e .``); nothing is needed here for it. ``benchmarks/bench_*.py`` are scripts that
print figures (``python benchmarks/bench_fit.py``), not tests, and are never collected.
"""

collect_ignore_glob = ["benchmarks/bench_*.py"]
