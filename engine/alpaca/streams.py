"""Alpaca's two websockets, run on the engine's own event loop.

``StockDataStream.run()`` calls ``asyncio.run()`` and cannot run inside a running loop, and in
the same loop ``subscribe_*()`` after start deadlocks and ``stop()`` blocks. So each stream
here is used the one safe same-loop way (ALPACA-WIRE §4, pattern a): every handler is
registered *before* start (an unsubscribed stream busy-loops at 100% CPU), the private
``_run_forever()`` runs as a task (alpaca-py is pinned to 0.44.0 for this), and stopping is task
cancel + ``close()``, which is immediate. Handlers only stamp the time and hand the message on
with ``call_soon`` so the socket is never held up by the engine's work.

The SDK reconnects on its own with jittered backoff; ``data_timeout`` makes a socket that is
connected but mute reconnect too. Alpaca allows one market-data socket per account and feed (a
second gets 406 and the SDK retries quietly forever), so this process refuses to open a second
one for the same key and URL. Both sockets report ``connected`` and the age of the last message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from alpaca.data.live import StockDataStream
from alpaca.trading.stream import TradingStream

from engine.alpaca.mapping import data_feed
from engine.brokers.base import BrokerError

log = logging.getLogger("tapewatch.alpaca.streams")

_open_data_sockets: set[tuple[str, str]] = set()
_registry_lock = threading.Lock()


async def stop_task(task: asyncio.Task[Any] | None, *, within: float = 5.0) -> None:
    """Cancel ``task`` and wait for it, cancelling again if a cancel is swallowed.

    On Python 3.11 ``asyncio.wait_for`` (which the SDK streams and the REST layer use) can
    swallow a cancellation that races with its inner future finishing; a task cancelled once
    could then run on forever, and whoever awaited it would hang.
    """
    if task is None:
        return
    deadline = asyncio.get_running_loop().time() + within
    while not task.done():
        task.cancel()
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            log.warning("task %s did not stop in %.1f s", task.get_name(), within)
            return
        await asyncio.wait({task}, timeout=min(0.1, remaining))
    if not task.cancelled():
        with contextlib.suppress(BaseException):
            task.exception()  # retrieved, so asyncio does not log it as never retrieved


class _Socket:
    """What both sockets share: the task, liveness, and message timing."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._stream: Any = None
        self._task: asyncio.Task[None] | None = None
        self._last_message: float | None = None  # monotonic
        self._last_message_at: datetime | None = None  # engine/broker time, if a clock was given
        self._clock_now: Callable[[], datetime] | None = None
        self.messages = 0
        self.connects = 0  # successful (re)connections; more than one means a reconnect
        self._on_reconnect: Callable[[], None] | None = None
        self._watching = False

    def set_on_reconnect(self, callback: Callable[[], None] | None) -> None:
        """Called (on the loop, via ``call_soon``) after each reconnection, not the first."""
        self._on_reconnect = callback

    def _watch_connects(self) -> None:
        """Count connections by wrapping the SDK's private ``_start_ws`` (0.44.0 is pinned):
        the SDK reconnects silently, and a reconnect is when updates may have been missed."""
        if self._watching:
            return
        self._watching = True
        original = self._stream._start_ws

        async def start_ws() -> None:
            await original()
            self.connects += 1
            if self.connects > 1 and self._on_reconnect is not None:
                asyncio.get_running_loop().call_soon(self._on_reconnect)

        self._stream._start_ws = start_ws

    def _touch(self) -> None:
        self._last_message = time.monotonic()
        if self._clock_now is not None:
            self._last_message_at = self._clock_now()
        self.messages += 1

    def _launch(self) -> None:
        self._watch_connects()
        self._task = asyncio.get_running_loop().create_task(
            self._stream._run_forever(), name=f"tapewatch-{self.name}-stream"
        )

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def connected(self) -> bool:
        """Authenticated and subscribed right now (False while reconnecting)."""
        stream = self._stream
        return bool(self.running and stream is not None and stream._running and stream._ws)

    def last_message_age(self, now: datetime | float | None = None) -> float | None:
        """Seconds since the last message: ``now`` as a monotonic float (default: now), or as
        a datetime of the clock given to the socket. None before the first message."""
        if isinstance(now, datetime):
            at = self._last_message_at
            return None if at is None else max(0.0, (now - at).total_seconds())
        if self._last_message is None:
            return None
        current = time.monotonic() if now is None else now
        return max(0.0, current - self._last_message)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and self._stream is not None:
            # The stop flag ends the SDK's loop even if a cancel is swallowed (see stop_task).
            with contextlib.suppress(Exception):
                await self._stream.stop_ws()
        await stop_task(task)
        if self._stream is not None:
            with contextlib.suppress(Exception):
                await self._stream.close()


class DataSocket(_Socket):
    """The one market-data socket: minute bars and their corrections for some symbols."""

    def __init__(
        self,
        key_id: str,
        secret: str,
        url: str,
        *,
        symbols: Sequence[str],
        on_bar: Callable[[Any], None],
        on_updated_bar: Callable[[Any], None],
        feed: str = "iex",
        data_timeout: float | None = 150.0,
        clock_now: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__("data")
        self._key = (key_id, url)
        self._symbols = tuple(symbols)
        self._on_bar = on_bar
        self._on_updated_bar = on_updated_bar
        self._clock_now = clock_now
        self._registered = False
        self._stream = StockDataStream(
            key_id,
            secret,
            feed=data_feed(feed),
            url_override=url,
            data_timeout=data_timeout,
        )

    async def _bar(self, bar: Any) -> None:
        self._touch()
        asyncio.get_running_loop().call_soon(self._on_bar, bar)

    async def _updated_bar(self, bar: Any) -> None:
        self._touch()
        asyncio.get_running_loop().call_soon(self._on_updated_bar, bar)

    async def start(self) -> None:
        if self.running:
            return
        with _registry_lock:
            if self._key in _open_data_sockets:
                raise BrokerError(
                    "a market-data socket for this account is already open in this process; "
                    "Alpaca allows only one (a second is refused with 406)"
                )
            _open_data_sockets.add(self._key)
            self._registered = True
        # Subscribe first: an unsubscribed stream spins at 100% CPU, and a late subscribe on
        # this loop would deadlock.
        self._stream.subscribe_bars(self._bar, *self._symbols)
        self._stream.subscribe_updated_bars(self._updated_bar, *self._symbols)
        self._launch()

    async def stop(self) -> None:
        await super().stop()
        if self._registered:
            with _registry_lock:
                _open_data_sockets.discard(self._key)
            self._registered = False


class TradeSocket(_Socket):
    """The trade_updates socket: every order event of the account."""

    def __init__(
        self,
        key_id: str,
        secret: str,
        url: str,
        *,
        paper: bool,
        on_update: Callable[[Any], None],
        clock_now: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__("trade")
        self._on_update = on_update
        self._clock_now = clock_now
        self._stream = TradingStream(key_id, secret, paper=paper, url_override=url)

    async def _update(self, update: Any) -> None:
        self._touch()
        asyncio.get_running_loop().call_soon(self._on_update, update)

    async def start(self) -> None:
        if self.running:
            return
        self._stream.subscribe_trade_updates(self._update)
        self._launch()
