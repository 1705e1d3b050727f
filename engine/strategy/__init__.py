"""The RSI/SMA strategy, its streaming indicators and the bar-validity check."""
