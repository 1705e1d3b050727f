"""How a connection to the broker is doing, in terms every part can read.

The Alpaca sockets fill these in (engine.alpaca.stream_failures); the engine collects them
(``Engine.connection_health``) for the console's Breakers pane and the metrics, so both show
the same state without knowing which broker or feed is plugged in. The trading REST client has
no socket to watch, so ``CallHealth`` reads the same state from its calls' outcomes: a dead
endpoint is "down" after a few refused calls, not "ok" until someone reads the log.
"""

from __future__ import annotations

from collections.abc import Callable
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


@runtime_checkable
class ReportsRestHealth(Protocol):
    """A broker whose REST calls are watched (``CallHealth``)."""

    def rest_health(self) -> StreamHealth | None: ...


DOWN_AFTER = 3
"""Consecutive failed REST calls after which the endpoint counts as down, not reconnecting."""
REFUSED = frozenset({401, 403})
"""Statuses that retrying will not fix (bad or revoked keys): down at once."""


class CallHealth:
    """A REST endpoint's health from its calls: each outcome is told to ``record``.

    "connecting" until the first answer, "ok" after a success, "reconnecting" after a
    retryable failure (a timeout, a refused connection, a 5xx or 429), "down" after
    ``down_after`` failures in a row or one refusal of the keys. ``since`` is when the current
    state began (the first failure of a run, so "reconnecting for 40 s" counts from it)."""

    def __init__(self, now: Callable[[], datetime], *, down_after: int = DOWN_AFTER) -> None:
        self._now = now
        self._down_after = down_after
        self._health = StreamHealth("connecting", now())
        self.last_at = self._health.since  # when the last call ended (or tracking began)

    def record(self, failure: str | None, code: int | None = None) -> None:
        """One call ended: ``failure`` is None on success, else its one-line reason. A 4xx
        other than 401, 403 and 429 (a 404 for no position, a 422) is an answer: it is up."""
        if code is not None and code < 500 and code not in REFUSED and code != 429:
            failure = None
        old = self._health
        self.last_at = self._now()
        if failure is None:
            if not old.ok:
                self._health = StreamHealth("ok", self._now(), old.reason, old.code)
            return
        failures = old.failures + 1
        down = failures >= self._down_after or code in REFUSED
        state: StreamState = "down" if down else "reconnecting"
        # Still the same outage: "for how long" counts from its first failure.
        since = old.since if old.state in ("reconnecting", "down") else self._now()
        self._health = StreamHealth(state, since, failure, code, failures)

    def health(self) -> StreamHealth:
        return self._health
