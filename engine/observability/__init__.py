"""Metrics, logs, alerts, latency, health, the audit trail and runtime facts."""
