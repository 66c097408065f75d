"""Reports: the gate's report records rendered as the terminal summary and headline, Markdown (with a
chart), JSON and plots, and the progress line of each trained run. Reads the gate's records; matplotlib
is loaded only when plots are written.
"""
