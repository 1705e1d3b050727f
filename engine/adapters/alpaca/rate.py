"""The request budget: how much of Alpaca's 200 requests/minute this process has used.

Fed by every REST request we send (a rolling one-minute window of send times) and by the
``X-RateLimit-Limit``/``X-RateLimit-Remaining`` headers whenever the server sends them, since
the server's count also includes requests from other programs on the same account. The used
ratio is the larger of the two views. Metrics read it now; the rate-limit breaker tiers will.
Thread-safe: the REST worker threads record into it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping

WINDOW_SECONDS = 60.0
HEADER_LIMIT = "X-RateLimit-Limit"
HEADER_REMAINING = "X-RateLimit-Remaining"


class RequestBudget:
    def __init__(
        self,
        limit_per_minute: int = 200,
        *,
        window: float = WINDOW_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit_per_minute < 1:
            raise ValueError("limit_per_minute must be at least 1")
        self.limit = limit_per_minute
        self._window = window
        self._monotonic = monotonic
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()
        self._server: tuple[float, int, int] | None = None  # (seen at, limit, remaining)
        self.total = 0

    def _trim(self, now: float) -> None:
        horizon = now - self._window
        sent = self._sent
        while sent and sent[0] <= horizon:
            sent.popleft()

    def record(self) -> None:
        """One request is going out now."""
        now = self._monotonic()
        with self._lock:
            self._sent.append(now)
            self.total += 1
            self._trim(now)

    def observe_headers(self, headers: Mapping[str, str]) -> None:
        """Take the server's view from a response's X-RateLimit-* headers, when present."""
        try:
            limit = int(headers[HEADER_LIMIT])
            remaining = int(headers[HEADER_REMAINING])
        except (KeyError, TypeError, ValueError):
            return
        if limit < 1:
            return
        with self._lock:
            self._server = (self._monotonic(), limit, max(0, remaining))

    def used_in_window(self) -> int:
        with self._lock:
            self._trim(self._monotonic())
            return len(self._sent)

    def server_view(self) -> tuple[int, int] | None:
        """(limit, remaining) from the last headers, if seen within the window."""
        with self._lock:
            seen = self._server
            if seen is None or self._monotonic() - seen[0] > self._window:
                return None
            return seen[1], seen[2]

    def used_ratio(self) -> float:
        """0.0 (idle) to 1.0 (the minute's budget is spent), the worse of ours and the server's."""
        ours = self.used_in_window() / self.limit
        server = self.server_view()
        theirs = 0.0 if server is None else (server[0] - server[1]) / server[0]
        return min(1.0, max(ours, theirs))

    def remaining(self) -> int:
        """Requests left in this minute, by the stricter view."""
        ours = max(0, self.limit - self.used_in_window())
        server = self.server_view()
        return ours if server is None else min(ours, server[1])
