"""Checks every Broker implementation must pass, run against a per-broker harness."""
