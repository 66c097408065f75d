"""Reports: the gate's report records rendered for people and tools. ``summary`` holds what every format
says alike (verdicts, the per-size table, laws, crossover, the headline); ``terminal``, ``markdown``,
``json_report`` and ``plots`` render one format each; ``formats.FORMATS`` is the registry of report files
the plugin writes. Reads the gate's records; matplotlib is loaded only when plots are written.
"""
