"""Kept for older imports: paper and live sessions are built by the composition root
(``engine.root``; the start-up sequence is documented in ``engine.root.live``)."""

from engine.root.live import (
    CLOCK_CHECK_SECONDS,
    KeyPair,
    LiveOptions,
    LiveSession,
    build_live_session,
    describe,
    journal_path,
    open_broker,
    whole_shares_reason,
)

__all__ = [
    "CLOCK_CHECK_SECONDS",
    "KeyPair",
    "LiveOptions",
    "LiveSession",
    "build_live_session",
    "describe",
    "journal_path",
    "open_broker",
    "whole_shares_reason",
]
