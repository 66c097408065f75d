"""The gate: named baselines (a reference sweep's points and its fitted, anchored loss-vs-compute curve,
committed as JSON), the comparison of a sweep with a baseline behind the ``assert_*`` helpers, where two
fitted laws cross, predictions from a baseline, the statistics of a comparison (``compare``), and the typed
report (``records``, built by ``reporting``) each check adds to its test's. Builds on fitting and runners;
knows nothing of how reports are rendered.
"""
