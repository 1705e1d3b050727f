"""Venues behind the core's Broker and Feed protocols: Alpaca and the simulation."""
