"""Kept for older imports: the demo is built by the composition root (``engine.root``)."""

from engine.root.demo import (
    CHUNK_SESSIONS,
    DEMO_START,
    DEMO_WARMUP_BARS,
    DemoOptions,
    DemoSession,
    build_demo,
    demo_journal_path,
)

__all__ = [
    "CHUNK_SESSIONS",
    "DEMO_START",
    "DEMO_WARMUP_BARS",
    "DemoOptions",
    "DemoSession",
    "build_demo",
    "demo_journal_path",
]
