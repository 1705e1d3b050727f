"""Alpaca's two websockets, run on the engine's own event loop, and their health.

``StockDataStream.run()`` calls ``asyncio.run()`` and cannot run inside a running loop, and in
the same loop ``subscribe_*()`` after start deadlocks and ``stop()`` blocks. So each stream
here is used the one safe same-loop way (ALPACA-WIRE §4, pattern a): every handler is
registered *before* start (an unsubscribed stream busy-loops at 100% CPU), the private
``_run_forever()`` runs as a task (alpaca-py is pinned to 0.44.0 for this), and stopping is task
cancel + ``close()``, which is immediate. Handlers only stamp the time and hand the message on
with ``call_soon`` so the socket is never held up by the engine's work.

The SDK reconnects on its own; ``data_timeout`` makes a socket that is connected but mute
reconnect too. Its failures (402 auth failed, 406 connection limit, 409 insufficient
subscription, an unreachable URL) used to be a traceback per retry on stderr, and 409 ended its
loop silently; here each becomes one line with the reason and the jittered wait (1 → 60 s),
said again only when the reason changes or the count of repeats doubles, a dead SDK loop is
restarted, and ``health()`` tells anyone who asks (see ``stream_failures``). ``report(level,
line)``, when given, gets each such line too (the engine's notice path). Alpaca allows one
market-data socket per account and feed, so this process refuses to open a second one for the
same key and URL. Both sockets report ``connected`` and the age of the last message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import websockets
from alpaca.data.live import StockDataStream
from alpaca.trading.stream import TradingStream

from tapewatch.engine.adapters.alpaca.mapping import data_feed
from tapewatch.engine.adapters.alpaca.stream_failures import (
    Backoff,
    Failure,
    classify,
    quiet_sdk_stream_logs,
    retry_words,
    worth_saying,
)
from tapewatch.engine.core.broker import BrokerError
from tapewatch.engine.observability.health import StreamHealth, StreamState

log = logging.getLogger("tapewatch.alpaca.streams")

_open_data_sockets: set[tuple[str, str]] = set()
_registry_lock = threading.Lock()
quiet_sdk_stream_logs()  # the SDK's tracebacks never reach a screen; our one line does


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
    """What both sockets share: the task, liveness, message timing and health.

    The SDK's private ``_start_ws``, ``_consume`` and ``_reconnect_delay`` are wrapped (0.44.0
    is pinned): a failed attempt becomes a `Failure`, the wait before the next one comes from
    our `Backoff` (1 → 60 s, jittered), and the one line saying why is written just before that
    wait, when it is known. The SDK's loop itself runs under `_supervise`, which restarts it
    when it gives up on its own (409).
    """

    label = "stream"

    def __init__(
        self,
        name: str,
        *,
        endpoint: str,
        report: Callable[[str, str], None] | None,
        backoff: Backoff | None,
    ) -> None:
        self.name = name
        self._endpoint = endpoint
        self._feed = "iex"
        self._report = report
        self._backoff = backoff or Backoff()
        self._stream: Any = None
        self._task: asyncio.Task[None] | None = None
        self._last_message: float | None = None  # monotonic
        self._last_message_at: datetime | None = None  # engine/broker time, if a clock was given
        self._clock_now: Callable[[], datetime] | None = None
        self.messages = 0
        self.connects = 0  # successful (re)connections; more than one means a reconnect
        self.restarts = 0  # times the SDK's loop ended by itself and was started again
        self._on_reconnect: Callable[[], None] | None = None
        self._watching = False
        self._stopping = False
        self._step = 0  # backoff step: failures since data last flowed
        self._connected_at: float | None = None  # monotonic
        self._pending: Failure | None = None  # failed, the line not yet written
        self._last_failure: Failure | None = None
        self._health: StreamHealth | None = None

    def set_report(self, report: Callable[[str, str], None] | None) -> None:
        """Where the one-line failure and recovery reports go (the engine's notices)."""
        self._report = report

    # -- health -------------------------------------------------------------------------------

    def _now(self) -> datetime:
        return self._clock_now() if self._clock_now is not None else datetime.now(UTC)

    def health(self) -> StreamHealth:
        """Now: ok, connecting, reconnecting or down (and why), or stopped."""
        if self._health is None:
            return StreamHealth("stopped" if self._task is None else "connecting", self._now())
        return self._health

    def _set_health(self, state: StreamState, **fields: Any) -> None:
        current = self._health
        since = current.since if current is not None and current.state == state else self._now()
        self._health = StreamHealth(state, since, **fields)

    def _say(self, level: int, line: str) -> None:
        log.log(level, "%s", line)
        if self._report is not None:
            self._report(logging.getLevelName(level).lower(), line)

    def _failed(self, failure: Failure) -> None:
        """An attempt failed or a connection was lost: count it and pick the wait; the line is
        written when the wait begins (``_retry_delay``)."""
        up_since, self._connected_at = self._connected_at, None
        if up_since is not None and time.monotonic() - up_since >= self._backoff.cap:
            self._step = 0  # it had been up a long while: start the backoff afresh
        self._step += 1
        previous = self._health
        self._pending = failure
        self._set_health(
            "down" if failure.lasting else "reconnecting",
            reason=failure.reason,
            code=failure.code,
            failures=previous.failures + 1 if previous is not None else 1,
            retry_in=self._backoff.delay(self._step),
        )

    def _retry_delay(self, _sdk_retries: int = 0, *, restart: bool = False) -> float:
        """The wait before the next attempt (replaces the SDK's), saying why once per reason
        and then rarely (see ``worth_saying``)."""
        failure, self._pending = self._pending, None
        if failure is None:  # the SDK failed somewhere not wrapped: its words are in the log
            failure = Failure("connection failed (alpaca-py's message is in the log file)")
            self._failed(failure)
            self._pending = None
        health = self.health()
        delay = health.retry_in if health.retry_in is not None else self._backoff.delay(1)
        same = self._last_failure is not None and self._last_failure.reason == failure.reason
        self._last_failure = failure
        if worth_saying(health.failures, same):
            then = "alpaca-py gave up; restarting it" if restart else "retrying"
            repeats = f" (failed {health.failures} times in a row)" if health.failures > 1 else ""
            self._say(
                logging.WARNING,
                f"{self.label}: {failure.text}; {then} in {retry_words(delay)}{repeats}",
            )
        return delay

    def _recovered(self) -> None:
        self._connected_at = time.monotonic()
        previous = self._health
        self._pending = None
        self._set_health("ok", reason=previous.reason if previous is not None else None)
        if previous is not None and previous.failures and previous.reason is not None:
            attempts = "attempt" if previous.failures == 1 else "attempts"
            self._say(
                logging.INFO,
                f"{self.label}: connected again after {previous.failures} failed {attempts} "
                f"(last: {previous.reason})",
            )
        self._last_failure = None

    # -- the SDK's private hooks --------------------------------------------------------------

    def set_on_reconnect(self, callback: Callable[[], None] | None) -> None:
        """Called (on the loop, via ``call_soon``) after each reconnection, not the first."""
        self._on_reconnect = callback

    def _classify(self, exc: BaseException) -> Failure:
        return classify(exc, endpoint=self._endpoint, feed=self._feed)

    def _watch_connects(self) -> None:
        """Wrap the SDK's private ``_start_ws``, ``_consume`` and ``_reconnect_delay``: the
        SDK reconnects silently (a reconnect is when updates may have been missed) and says
        why a connection failed only in a traceback."""
        if self._watching:
            return
        self._watching = True
        stream = self._stream
        original_start, original_consume = stream._start_ws, stream._consume

        async def start_ws() -> None:
            try:
                await original_start()
            except Exception as exc:
                self._failed(self._classify(exc))
                raise
            self.connects += 1
            self._recovered()
            if self.connects > 1 and self._on_reconnect is not None:
                asyncio.get_running_loop().call_soon(self._on_reconnect)

        async def consume() -> Any:
            try:
                stale = await original_consume()
            except websockets.exceptions.WebSocketException as exc:
                self._failed(self._classify(exc))
                raise
            if stale and not self._stopping:
                timeout = getattr(stream, "_data_timeout", None) or 0.0
                self._failed(Failure(f"no market data for {timeout:g} s (connected but mute)"))
            return stale

        stream._start_ws = start_ws
        stream._consume = consume
        stream._reconnect_delay = self._retry_delay

    def _touch(self) -> None:
        self._last_message = time.monotonic()
        if self._clock_now is not None:
            self._last_message_at = self._clock_now()
        self.messages += 1
        self._step = 0  # data flows: the next failure starts the backoff from the beginning

    def _launch(self) -> None:
        self._watch_connects()
        self._stopping = False
        self._set_health("connecting")
        self._task = asyncio.get_running_loop().create_task(
            self._supervise(), name=f"tapewatch-{self.name}-stream"
        )

    async def _supervise(self) -> None:
        """Run the SDK's loop; when it returns by itself (409 makes it give up, the socket
        dead and nothing said), start it again after a jittered backoff."""
        while True:
            await self._stream._run_forever()
            if self._stopping:
                return
            self.restarts += 1
            if self._pending is None:
                self._failed(Failure("the stream loop ended by itself", lasting=True))
            await asyncio.sleep(self._retry_delay(restart=True))
            if self._stopping:
                return

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
        self._stopping = True
        task, self._task = self._task, None
        if task is not None and self._stream is not None:
            # The stop flag ends the SDK's loop even if a cancel is swallowed (see stop_task).
            with contextlib.suppress(Exception):
                await self._stream.stop_ws()
        await stop_task(task)
        if self._stream is not None:
            with contextlib.suppress(Exception):
                await self._stream.close()
        health = self.health()
        self._health = StreamHealth("stopped", self._now(), health.reason, health.code)


class DataSocket(_Socket):
    """The one market-data socket: minute bars and their corrections for some symbols."""

    label = "market-data stream"

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
        report: Callable[[str, str], None] | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        super().__init__("data", endpoint=url, report=report, backoff=backoff)
        self._feed = feed.lower()
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

    label = "trade-updates stream"

    def __init__(
        self,
        key_id: str,
        secret: str,
        url: str,
        *,
        paper: bool,
        on_update: Callable[[Any], None],
        clock_now: Callable[[], datetime] | None = None,
        report: Callable[[str, str], None] | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        super().__init__("trade", endpoint=url, report=report, backoff=backoff)
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
