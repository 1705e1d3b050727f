"""The simulated broker and the replay feed (backtests and the offline demo)."""
