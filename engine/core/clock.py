"""The injected clock: engine code asks it for the time instead of the wall clock.

``LiveClock`` reads real UTC time and sleeps for real. ``SimClock`` is moved forward by the
replay feed; its timers fire when time passes their due moment, before the next bar is
delivered, so a backtest never sleeps and is exactly repeatable.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable


class Clock(Protocol):
    def now(self) -> datetime:
        """Timezone-aware UTC now."""
        ...

    async def sleep_until(self, when: datetime) -> None: ...

    def call_at(self, when: datetime, callback: Callable[[], None]) -> None:
        """Run ``callback`` once ``when`` has passed (never before)."""
        ...


@runtime_checkable
class DataDrivenClock(Clock, Protocol):
    """A clock that data can push forward (engine.alpaca.clock.BrokerClock): a feed tells it
    each bar's end, so time never reads earlier than the newest data."""

    def observe(self, when: datetime) -> None: ...


class LiveClock:
    """Wall-clock time for paper and live trading."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, when: datetime) -> None:
        delay = (when - self.now()).total_seconds()
        if delay > 0:
            await asyncio.sleep(delay)

    def call_at(self, when: datetime, callback: Callable[[], None]) -> None:
        delay = max(0.0, (when - self.now()).total_seconds())
        asyncio.get_running_loop().call_later(delay, callback)


class SimClock:
    """Simulated time, advanced explicitly; timers fire in due order as time passes them."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("SimClock needs a timezone-aware start time")
        self._now = start
        self._timers: list[tuple[datetime, int, Callable[[], None]]] = []
        self._counter = itertools.count()

    def now(self) -> datetime:
        return self._now

    def advance_to(self, when: datetime) -> None:
        """Move time forward to ``when`` (never back), firing every timer due on the way."""
        while self._timers and self._timers[0][0] <= when:
            due, _, callback = heapq.heappop(self._timers)
            if due > self._now:
                self._now = due
            callback()
        if when > self._now:
            self._now = when

    async def sleep_until(self, when: datetime) -> None:
        self.advance_to(when)

    def call_at(self, when: datetime, callback: Callable[[], None]) -> None:
        heapq.heappush(self._timers, (when, next(self._counter), callback))

    @property
    def pending_timers(self) -> int:
        return len(self._timers)
