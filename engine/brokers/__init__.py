"""Brokers: where orders go. The engine only knows the ``Broker`` protocol in base.py."""
