"""Many runs at once: sweeps (local pool or Ray), the paper's grid, tables with intervals, HTML reports.

Only the command line imports this wing; the library never depends on it.
"""
