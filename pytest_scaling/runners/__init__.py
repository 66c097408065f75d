"""Runners: a sweep (a ladder of sizes x seeds) trained through the content-addressed run cache, its runs
placed in this process, CPU worker processes or Ray tasks, and every run's learning curve logged to an
experiment tracker. Builds on training and data; knows nothing of pytest or of the gate.
"""
