"""Fan-out of engine events: synchronous sinks (journal, metrics) and bounded async queues.

Async subscribers (the console) get a bounded queue; when a slow subscriber falls behind, the
oldest events are dropped and counted instead of blocking the engine. Subscribers that need
the full picture read the engine's state, which is always current.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Protocol

from tapewatch.engine.model.events import Event

Sink = Callable[[Event], None]


class Source(Protocol):
    """What hands out subscriptions: the engine's bus, or a client of the engine's socket."""

    def unsubscribe(self, sub: Subscription) -> None: ...


class Subscription:
    """An async iterator of events with a bounded buffer that drops the oldest on overflow;
    ``offer(None)`` ends it (its source closed)."""

    def __init__(self, source: Source, maxsize: int) -> None:
        self._source = source
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue(maxsize)
        self.dropped = 0

    def offer(self, event: Event | None) -> None:
        if self._queue.full():
            try:
                self._queue.get_nowait()
                self.dropped += 1
            except asyncio.QueueEmpty:  # pragma: no cover - raced empty
                pass
        self._queue.put_nowait(event)

    async def get(self) -> Event | None:
        """The next event, or None once the bus has closed."""
        return await self._queue.get()

    def get_nowait(self) -> Event | None:
        return self._queue.get_nowait()

    def pending(self) -> int:
        return self._queue.qsize()

    def close(self) -> None:
        self._source.unsubscribe(self)

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        while True:
            event = await self._queue.get()
            if event is None:
                return
            yield event


class EventBus:
    def __init__(self) -> None:
        self._sinks: list[Sink] = []
        self._subscriptions: list[Subscription] = []

    def add_sink(self, sink: Sink) -> None:
        self._sinks.append(sink)

    def subscribe(self, maxsize: int = 4096) -> Subscription:
        sub = Subscription(self, maxsize)
        self._subscriptions.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subscriptions:
            self._subscriptions.remove(sub)

    def publish(self, event: Event) -> None:
        for sink in self._sinks:
            sink(event)
        for sub in self._subscriptions:
            sub.offer(event)

    def close(self) -> None:
        for sub in list(self._subscriptions):
            sub.offer(None)
        self._subscriptions.clear()
