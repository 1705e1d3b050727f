"""The six panes and the header; each redraws itself from a ``View`` of the engine's state."""
