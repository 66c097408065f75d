"""Runners: a sweep (a ladder of sizes x seeds) trained through the content-addressed run cache, its runs
placed in this process, CPU worker processes or Ray tasks, and every run's learning curve logged to an
experiment tracker. What a sweep measured is ``records`` (torch-free, so the gate reads it without torch).
Builds on training and data; knows nothing of pytest or of the gate.
"""
