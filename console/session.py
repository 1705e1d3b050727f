"""What the console drives: an engine, its feed, the market calendar and the journal.

``engine.wiring.DemoSession`` fits this shape; a paper or live session will too. The console
only reads the engine's state and calls its command methods.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Protocol

from engine.engine import Engine
from engine.feeds.base import Feed
from engine.models import Bar


class MarketHours(Protocol):
    def is_open(self, now: datetime) -> bool: ...

    def next_open(self, now: datetime) -> datetime: ...

    def next_close(self, now: datetime) -> datetime: ...


class Closable(Protocol):
    def close(self) -> None: ...


class ConsoleSession(Protocol):
    @property
    def engine(self) -> Engine: ...

    @property
    def feed(self) -> Feed: ...

    @property
    def calendar(self) -> MarketHours | None: ...

    @property
    def journal(self) -> Closable | None: ...


SessionFactory = Callable[[], ConsoleSession]
"""Builds a session; called in a thread after the first frame because it imports pandas."""


async def prime(session: ConsoleSession, bars: int = 0) -> None:
    """Start the engine, warm it from history and trade ``bars`` closed bars, unpaced.

    For snapshots and screenshots (with ``create_app(..., drive=False)``): the same seed gives
    the same screen. Needs a replay feed (``iter_sync``); the bars go through the engine's own
    ``on_bar``, exactly as ``Engine.run`` would deliver them.
    """
    engine = session.engine
    feed = session.feed
    iter_sync = getattr(feed, "iter_sync", None)
    if iter_sync is None:
        raise TypeError("prime() needs a replay feed (one with iter_sync())")
    await engine.start()
    engine.warm(feed.warmup())
    source: Iterator[Bar] = iter_sync()
    for _ in range(bars):
        bar = next(source, None)
        if bar is None:
            break
        await engine.on_bar(bar)
