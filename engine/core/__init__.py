"""The engine core: the bar path, the order flow and book, state, bus, clock, reconciliation."""
