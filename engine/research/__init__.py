"""Research at scale: parameter sweeps, searches and walk-forward runs of the backtest.

Cells are plain backtests (``engine.backtest.runner.run_backtest``) executed on Dask workers,
each kept in a local SQLite store as soon as it finishes, so nothing is computed twice.
"""
