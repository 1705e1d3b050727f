"""Alpaca's per-key request budget over a rolling minute, with the X-RateLimit-* headers.

The time source is injected so a test can spend the budget, see 429, then jump a minute ahead
without waiting. Refused requests do not count against the budget.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass

WINDOW_SECONDS = 60.0


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset: int  # unix seconds when the oldest counted request leaves the window

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
        }


class RateLimiter:
    def __init__(self, limit: int, now: Callable[[], float], window: float = WINDOW_SECONDS):
        self.limit = limit
        self._now = now
        self._window = window
        self._hits: dict[Hashable, deque[float]] = {}

    def _live(self, key: Hashable, now: float) -> deque[float]:
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self._window:
            hits.popleft()
        return hits

    def _decision(self, allowed: bool, hits: deque[float], now: float) -> RateDecision:
        reset = hits[0] + self._window if hits else now + self._window
        return RateDecision(allowed, self.limit, max(0, self.limit - len(hits)), math.ceil(reset))

    def hit(self, key: Hashable) -> RateDecision:
        """Count one request for ``key`` if the budget allows it."""
        now = self._now()
        hits = self._live(key, now)
        if len(hits) >= self.limit:
            return self._decision(False, hits, now)
        hits.append(now)
        return self._decision(True, hits, now)

    def peek(self, key: Hashable) -> RateDecision:
        """The budget for ``key`` without spending any of it."""
        now = self._now()
        hits = self._live(key, now)
        return self._decision(len(hits) < self.limit, hits, now)

    def clear(self) -> None:
        self._hits.clear()
