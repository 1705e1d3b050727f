"""The risk gate and its breakers: one small module per breaker, one gate in front of the broker."""
