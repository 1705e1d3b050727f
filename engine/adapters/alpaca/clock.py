"""Time as the broker sees it: anchored to Alpaca's clock, never behind the newest bar.

A live session reads ``GET /v2/clock`` at start-up (``sync``) and runs from that timestamp on
the monotonic clock, so a skewed local clock cannot shift the session or the stale-data checks.
Each bar the feed receives also moves the clock to at least that bar's end (``observe``):
against Alpaca that changes nothing (a bar arrives after it ends), while against the local
sandbox, whose market minutes pass faster than real ones, engine time follows the market
instead of drifting years away from it. Before the first ``sync`` it reads the wall clock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta


class BrokerClock:
    """The engine's Clock for paper and live: broker time, monotonic, pushed forward by bars."""

    def __init__(
        self,
        anchor: datetime | None = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._monotonic = monotonic
        self._synced = False
        start = anchor if anchor is not None else datetime.now(UTC)
        self._set(start)
        self._synced = anchor is not None

    def _set(self, anchor: datetime) -> None:
        if anchor.tzinfo is None:
            raise ValueError("BrokerClock needs a timezone-aware time")
        self._anchor = anchor
        self._anchored_at = self._monotonic()
        self._floor = anchor

    def now(self) -> datetime:
        running = self._anchor + timedelta(seconds=self._monotonic() - self._anchored_at)
        return running if running > self._floor else self._floor

    def sync(self, broker_now: datetime) -> None:
        """A fresh broker timestamp. The first one replaces the wall-clock start outright;
        later ones re-anchor without ever moving time backwards."""
        if not self._synced:
            self._set(broker_now)
            self._synced = True
            return
        floor = max(self._floor, self.now())
        self._set(broker_now)
        self._floor = max(floor, broker_now)

    def observe(self, when: datetime) -> None:
        """Data proves it is at least ``when``: never report an earlier time again."""
        if when > self._floor:
            self._floor = when

    async def sleep_until(self, when: datetime) -> None:
        delay = (when - self.now()).total_seconds()
        if delay > 0:
            await asyncio.sleep(delay)

    def call_at(self, when: datetime, callback: Callable[[], None]) -> None:
        delay = max(0.0, (when - self.now()).total_seconds())
        asyncio.get_running_loop().call_later(delay, callback)
