"""AlpacaFeed: history from REST to warm the indicators, then closed bars built from the stream.

Start-up: ``await backfill()`` fetches enough regular-session minute bars (calendar-aware) for
``warmup_bars`` closed bars and aggregates them; ``warmup()`` then returns those. Iterating
``bars()`` opens the one market-data socket and yields each N-minute bar as soon as it closes
(1-minute bars are yielded as they come). Gaps are back-filled from REST before a bar closes:
whole periods lost to a reconnect, and minutes missing from a period that is closing.

Everything runs on the engine's loop: the socket's handlers only queue the message, and one
pump task handles the queue in order (a REST back-fill pauses the pump, never the socket), so
bars always come out in time order. A correction to a bar already closed cannot change a
decision already taken: it is reported as a Notice. The feed exposes the socket's staleness
and its health (``stream_health()``: ok / connecting / reconnecting / down and why); each
one-line stream failure the socket says (402, 406, 409, unreachable, and the recovery) is a
Notice too. Silence while the socket is refused or dead is what the stale-data breaker sees.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from tapewatch.engine.adapters.alpaca.aggregator import MINUTE, MinuteAggregator, Outcome
from tapewatch.engine.adapters.alpaca.endpoints import Endpoints
from tapewatch.engine.adapters.alpaca.history import MinuteHistory, warmup_start
from tapewatch.engine.adapters.alpaca.mapping import field_of, to_bar, utc
from tapewatch.engine.adapters.alpaca.stream_failures import Backoff
from tapewatch.engine.adapters.alpaca.streams import DataSocket, stop_task
from tapewatch.engine.core.broker import BrokerError
from tapewatch.engine.core.clock import Clock, DataDrivenClock
from tapewatch.engine.market.calendar import MarketCalendar
from tapewatch.engine.model.events import Notice
from tapewatch.engine.model.types import Bar, Timeframe
from tapewatch.engine.observability.health import StreamHealth
from tapewatch.engine.observability.latency import LatencyRecorder

log = logging.getLogger("tapewatch.alpaca.feed")


class MinuteSource(Protocol):
    async def fetch(self, symbol: str, first: datetime, last: datetime) -> list[Bar]: ...

    def close(self) -> None: ...


class Socket(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def connected(self) -> bool: ...

    def last_message_age(self, now: datetime | float | None = None) -> float | None: ...

    def health(self) -> StreamHealth: ...


SocketFactory = Callable[[Callable[[Any], None], Callable[[Any], None]], Socket]


def _floor_minute(when: datetime) -> datetime:
    return when.replace(second=0, microsecond=0)


class AlpacaFeed:
    def __init__(
        self,
        *,
        symbol: str,
        timeframe: Timeframe,
        clock: Clock,
        history: MinuteSource,
        socket_factory: SocketFactory,
        calendar: MarketCalendar | None,
        warmup_bars: int,
        grace: timedelta = timedelta(seconds=10),
        on_notice: Callable[[Notice], None] | None = None,
    ) -> None:
        self.symbol = symbol
        self.timeframe = timeframe
        self._clock = clock
        # Against the local sandbox market minutes pass faster than real ones: a clock that
        # data may push forward follows the bars (checked once, here).
        self._observe = clock.observe if isinstance(clock, DataDrivenClock) else None
        self._history = history
        self._socket_factory = socket_factory
        self._calendar = calendar
        self._warmup_bars = warmup_bars
        self.aggregator = MinuteAggregator(symbol, timeframe, sessions=calendar, grace=grace)
        self._on_notice = on_notice
        self._warm: list[Bar] = []
        self._inbox: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._out: asyncio.Queue[Bar | None] = asyncio.Queue()
        self._socket: Socket | None = None
        self._pump: asyncio.Task[None] | None = None
        self._shutdown: asyncio.Task[None] | None = None
        self._timer_due: datetime | None = None
        self._stopped = False
        self.last_bar_ts: datetime | None = None
        # Stream lag (a minute bar's end vs its receipt) goes here when set: stream_lag stage.
        self.latency: LatencyRecorder | None = None

    @classmethod
    def connect(
        cls,
        key_id: str,
        secret: str,
        endpoints: Endpoints,
        *,
        symbol: str,
        timeframe: Timeframe,
        clock: Clock,
        calendar: MarketCalendar | None,
        warmup_bars: int,
        timeout: float = 10.0,
        data_timeout: float | None = 150.0,
        grace: timedelta = timedelta(seconds=10),
        on_notice: Callable[[Notice], None] | None = None,
        stream_backoff: Backoff | None = None,
    ) -> AlpacaFeed:
        """A feed on the market-data REST and stream of ``endpoints`` (Alpaca or the sandbox).

        ``stream_backoff`` is the socket's wait between failed connections (1 → 60 s)."""
        feed: AlpacaFeed | None = None

        def report(level: str, line: str) -> None:
            if feed is not None:
                feed.notice(level, line)

        history = MinuteHistory(
            key_id, secret, endpoints.data, feed=endpoints.feed, timeout=timeout
        )

        def socket(on_bar: Callable[[Any], None], on_fix: Callable[[Any], None]) -> Socket:
            return DataSocket(
                key_id,
                secret,
                endpoints.data_stream,
                symbols=[symbol],
                on_bar=on_bar,
                on_updated_bar=on_fix,
                feed=endpoints.feed,
                data_timeout=data_timeout,
                clock_now=clock.now,
                report=report,
                backoff=stream_backoff,
            )

        feed = cls(
            symbol=symbol,
            timeframe=timeframe,
            clock=clock,
            history=history,
            socket_factory=socket,
            calendar=calendar,
            warmup_bars=warmup_bars,
            grace=grace,
            on_notice=on_notice,
        )
        return feed

    # -- warm-up ------------------------------------------------------------------------------

    async def backfill(self) -> list[Bar]:
        """Fetch and aggregate history up to the last finished minute; keep the running period."""
        now = self._clock.now()
        first = warmup_start(now, self.timeframe, self._warmup_bars, self._calendar)
        last = _floor_minute(now) - MINUTE
        minutes = await self._history.fetch(self.symbol, first, last)
        self._warm = self.aggregator.history(minutes, now)
        if self._warm:
            self.last_bar_ts = self._warm[-1].ts
        return list(self._warm)

    def warmup(self) -> Sequence[Bar]:
        return list(self._warm)

    # -- live bars ----------------------------------------------------------------------------

    async def bars(self) -> AsyncIterator[Bar]:
        await self.start()
        while True:
            bar = await self._out.get()
            if bar is None:
                return
            yield bar

    async def start(self) -> None:
        """Open the socket and start handling its messages (idempotent)."""
        if self._stopped or self._pump is not None:
            return
        loop = asyncio.get_running_loop()
        self._pump = loop.create_task(self._run_pump(), name="tapewatch-feed-pump")
        self._socket = self._socket_factory(self._queue_bar, self._queue_fix)
        try:
            await self._socket.start()
        except BaseException:
            self._pump.cancel()
            raise

    def _queue_bar(self, bar: Any) -> None:
        latency = self.latency
        stamp = utc(field_of(bar, "timestamp")) if latency is not None else None
        if latency is not None and stamp is not None:
            lag = (self._clock.now() - (stamp + MINUTE)).total_seconds()
            latency.record("stream_lag", max(lag, 0.0))
        self._inbox.put_nowait(("bar", bar))

    def _queue_fix(self, bar: Any) -> None:
        self._inbox.put_nowait(("fix", bar))

    def _tick(self) -> None:
        self._timer_due = None
        self._inbox.put_nowait(("tick", None))

    async def _run_pump(self) -> None:
        while True:
            kind, payload = await self._inbox.get()
            try:
                if kind == "bar":
                    await self._minute(to_bar(payload, self.symbol))
                elif kind == "fix":
                    await self._correction(to_bar(payload, self.symbol))
                else:
                    await self._close(self.aggregator.expired(self._clock.now()))
            except asyncio.CancelledError:
                raise
            except Exception:  # one bad message must not stop the feed
                log.exception("could not handle a %s message", kind)
            self._arm_timer()

    def _arm_timer(self) -> None:
        due = self.aggregator.due()
        if due is None or (self._timer_due is not None and self._timer_due <= due):
            return
        self._timer_due = due
        self._clock.call_at(due, self._tick)

    async def _minute(self, bar: Bar) -> None:
        if self._observe is not None:
            self._observe(bar.ts + MINUTE)
        gap = self.aggregator.gap_before(bar.ts)
        if gap is not None:
            for minute in await self._fetch(gap[0], gap[1] - MINUTE):
                await self._close(self.aggregator.add(minute, from_rest=True).ready)
        outcome = self.aggregator.add(bar)
        self._report_late(outcome, bar, "minute")
        await self._close(outcome.ready)

    async def _correction(self, bar: Bar) -> None:
        outcome = self.aggregator.correct(bar)
        self._report_late(outcome, bar, "correction")
        await self._close(outcome.ready)

    def _report_late(self, outcome: Outcome, minute: Bar, what: str) -> None:
        if outcome.late is None:
            return
        closed = outcome.late
        message = (
            f"{self.symbol}: late {what} for {minute.ts:%H:%M}Z (close {minute.close:g}, "
            f"volume {minute.volume:g}) belongs to the {closed.ts:%H:%M}Z {self.timeframe} bar "
            "already closed and traded on; not applied"
        )
        log.warning("%s", message)
        self.notice("warning", message)

    def notice(self, level: str, message: str) -> None:
        """Hand a message for the operator to ``on_notice`` (the engine's bus), if set."""
        if self._on_notice is not None:
            self._on_notice(Notice(ts=self._clock.now(), level=level, message=message))

    async def _fetch(self, first: datetime, last: datetime) -> list[Bar]:
        try:
            return await self._history.fetch(self.symbol, first, last)
        except BrokerError as exc:
            log.warning("back-fill of %s %s..%s failed: %s", self.symbol, first, last, exc)
            return []

    async def _close(self, starts: Sequence[datetime]) -> None:
        for start in starts:
            missing = self.aggregator.missing(start)
            if missing:
                self.aggregator.merge(start, await self._fetch(missing[0], missing[-1]))
            bar = self.aggregator.close(start)
            if bar is not None and not self._stopped:
                self.last_bar_ts = bar.ts
                self._out.put_nowait(bar)

    # -- stopping -----------------------------------------------------------------------------

    def stop(self) -> None:
        """End ``bars()`` now; the socket and tasks close in the background (see ``aclose``)."""
        if self._stopped:
            return
        self._stopped = True
        self._out.put_nowait(None)
        with contextlib.suppress(RuntimeError):  # no running loop: aclose() will clean up
            self._shutdown = asyncio.get_running_loop().create_task(self._close_all())

    async def aclose(self) -> None:
        """Stop and wait until the socket is closed and the tasks are gone."""
        self.stop()
        if self._shutdown is not None:
            await self._shutdown
        else:
            await self._close_all()

    async def _close_all(self) -> None:
        pump, self._pump = self._pump, None
        await stop_task(pump)
        socket, self._socket = self._socket, None
        if socket is not None:
            await socket.stop()
        self._history.close()

    # -- staleness ----------------------------------------------------------------------------

    def websocket_connected(self) -> bool:
        return self._socket is not None and self._socket.connected()

    def websocket_last_message_age(self, now: datetime | float | None = None) -> float | None:
        return None if self._socket is None else self._socket.last_message_age(now)

    def stream_health(self) -> StreamHealth:
        """The market-data socket's health (what the console and metrics show)."""
        if self._socket is None:
            stopped = self._stopped or self._pump is None
            return StreamHealth("stopped" if stopped else "connecting", self._clock.now())
        return self._socket.health()
