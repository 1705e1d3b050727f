"""The backtester: the same strategy, gate and simulated broker over history, and its report."""
