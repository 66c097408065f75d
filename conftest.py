"""Repository-level pytest configuration.

The plugin itself is registered through the ``pytest11`` entry point of the installed package
(``pip install -e .``); nothing is needed here for it. ``benchmarks/scripts/`` holds scripts that measure
and print figures (``python benchmarks/scripts/bench_fit.py``), not tests: they are never collected.
"""

collect_ignore_glob = ["benchmarks/scripts/*.py"]
