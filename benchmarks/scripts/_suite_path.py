"""Puts ``benchmarks/`` on ``sys.path``, so the scripts here import the shipped suites' settings and variants
(``suite``, ``variants``) when run as ``python benchmarks/scripts/NAME.py``."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
