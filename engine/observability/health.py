"""How a connection to the broker is doing, in terms every part can read.

The Alpaca sockets fill these in (engine.alpaca.stream_failures); the engine collects them
(``Engine.connection_health``) for the console's Breakers pane and the metrics, so both show
the same state without knowing which broker or feed is plugged in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

StreamState = Literal["connecting", "ok", "reconnecting", "down", "stopped"]
STREAM_STATES: tuple[StreamState, ...] = ("connecting", "ok", "reconnecting", "down", "stopped")


@dataclass(frozen=True)
class StreamHealth:
    """What a socket can say about itself: read by the feed, the broker, console and metrics.

    ``state``: "connecting" (first attempt), "ok" (authenticated), "reconnecting" (a transient
    failure, retrying), "down" (refused for a reason that needs a fix, still retrying) or
    "stopped". ``since`` is when that state began; ``reason`` is the last failure's (kept after
    a recovery); ``failures`` counts consecutive failed attempts; ``retry_in`` is the wait
    chosen for the next attempt, in seconds.
    """

    state: StreamState
    since: datetime
    reason: str | None = None
    code: int | None = None
    failures: int = 0
    retry_in: float | None = None

    @property
    def ok(self) -> bool:
        return self.state == "ok"


@runtime_checkable
class ReportsHealth(Protocol):
    """A feed or broker with a stream of its own."""

    def stream_health(self) -> StreamHealth | None: ...
