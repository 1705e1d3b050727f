"""AlpacaFeed and the market-data socket: minute bars aggregated locally, corrections, REST
back-fill of what the stream missed, one socket per account, reconnects without a storm, and
the stream running inside the engine's own event loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alpaca.data.enums import DataFeed
from alpaca.data.live import StockDataStream
from alpaca.data.requests import StockBarsRequest
from alpaca.data.timeframe import TimeFrame, TimeFrameUnit

from tapewatch.engine.adapters.alpaca.aggregator import MINUTE, MinuteAggregator
from tapewatch.engine.adapters.alpaca.clock import BrokerClock
from tapewatch.engine.adapters.alpaca.feed import AlpacaFeed
from tapewatch.engine.adapters.alpaca.history import MinuteHistory, warmup_start
from tapewatch.engine.adapters.alpaca.streams import DataSocket
from tapewatch.engine.core.broker import BrokerError
from tapewatch.engine.market.calendar import MarketCalendar
from tapewatch.engine.model.events import Notice
from tapewatch.engine.model.types import Bar, Timeframe
from tapewatch.engine.observability.health import StreamHealth
from tapewatch.sandbox import SandboxThread
from tests.alpaca.adapter_helpers import eventually, in_thread, sandbox_endpoints, stat
from tests.alpaca.conftest import KEY, SECRET, START, data_client

FIVE = Timeframe(5, "Min")
OPEN = datetime(2024, 3, 5, 14, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def calendar() -> MarketCalendar:
    return MarketCalendar()


def live_feed(
    sandbox: SandboxThread,
    calendar: MarketCalendar,
    *,
    notices: list[Notice] | None = None,
    data_timeout: float | None = None,
    timeframe: Timeframe = FIVE,
) -> AlpacaFeed:
    return AlpacaFeed.connect(
        KEY,
        SECRET,
        sandbox_endpoints(sandbox),
        symbol="SPY",
        timeframe=timeframe,
        clock=BrokerClock(START),
        calendar=calendar,
        warmup_bars=20,
        timeout=2.0,
        data_timeout=data_timeout,
        on_notice=None if notices is None else notices.append,
    )


async def take(feed: AlpacaFeed, count: int, timeout: float = 10.0) -> list[Bar]:
    out: list[Bar] = []

    async def collect() -> None:
        async for bar in feed.bars():
            out.append(bar)
            if len(out) == count:
                return

    await asyncio.wait_for(collect(), timeout)
    return out


async def rest_minutes(sandbox: SandboxThread, first: datetime, last: datetime) -> list[Bar]:
    history = MinuteHistory(KEY, SECRET, sandbox.data_url, timeout=2.0)
    try:
        return await history.fetch("SPY", first, last)
    finally:
        history.close()


# -- against the sandbox ------------------------------------------------------------------------


async def test_one_minute_stream_bars_become_five_minute_bars_equal_to_rest(
    sandbox: SandboxThread, calendar: MarketCalendar
) -> None:
    feed = live_feed(sandbox, calendar)
    try:
        warm = await feed.backfill()
        bars = await take(feed, 3)
    finally:
        await feed.aclose()
    assert len(warm) >= 20 and warm == sorted(warm, key=lambda b: b.ts)
    assert [b.ts for b in bars] == [bars[0].ts + i * timedelta(minutes=5) for i in range(3)]
    assert bars[0].ts > warm[-1].ts and bars[0].ts.minute % 5 == 0  # start-labelled grid
    minutes = await rest_minutes(sandbox, bars[0].ts, bars[-1].ts + 4 * MINUTE)
    expected = MinuteAggregator("SPY", FIVE, sessions=calendar).history(
        minutes, bars[-1].ts + timedelta(minutes=6)
    )
    assert bars == expected


async def test_corrections_apply_while_building_and_late_ones_become_notices(
    make_sandbox: Callable[..., SandboxThread], calendar: MarketCalendar
) -> None:
    sandbox = make_sandbox(faults={"updated_bars": True})
    notices: list[Notice] = []
    feed = live_feed(sandbox, calendar, notices=notices)
    try:
        await feed.backfill()
        bars = await take(feed, 3)
    finally:
        await feed.aclose()
    for bar in bars[1:]:  # whole periods seen on the stream
        minutes = await rest_minutes(sandbox, bar.ts, bar.ts + 4 * MINUTE)
        # minutes 0-3 were corrected (+100 volume each) before the period closed; the
        # correction of its last minute came with the next period's first minute: too late.
        assert bar.volume == sum(m.volume for m in minutes) + 400
    late = [n for n in notices if "late correction" in n.message]
    assert len(late) >= 2 and all(n.level == "warning" for n in late)


async def test_only_one_market_data_socket_per_account(
    sandbox: SandboxThread, calendar: MarketCalendar
) -> None:
    first = live_feed(sandbox, calendar)
    second = live_feed(sandbox, calendar)
    try:
        await first.start()
        with pytest.raises(BrokerError, match="only one"):
            await second.start()
        await eventually(first.websocket_connected)
        await asyncio.sleep(0.2)
        state = await in_thread(sandbox.snapshot)
        assert state["streams"]["data_clients"] == 1
        assert stat(sandbox, "data_error_406") == 0
    finally:
        await second.aclose()
        await first.aclose()
    third = live_feed(sandbox, calendar)  # the slot is free again once closed
    try:
        await third.start()
    finally:
        await third.aclose()


async def test_a_muted_socket_reconnects_without_a_storm_and_reports_staleness(
    sandbox: SandboxThread, calendar: MarketCalendar
) -> None:
    feed = live_feed(sandbox, calendar, data_timeout=0.3)
    try:
        await feed.backfill()
        await take(feed, 1)
        assert feed.websocket_connected()
        age: Any = feed.websocket_last_message_age()
        assert 0 <= age < 0.5
        before = stat(sandbox, "data_connections")
        await in_thread(lambda: sandbox.apply_faults(data_stream="mute"))
        await asyncio.sleep(2.0)
        reconnects = stat(sandbox, "data_connections") - before
        assert 1 <= reconnects <= 4  # data_timeout forced them; the SDK backed off between
        stale: Any = feed.websocket_last_message_age()
        assert stale > 1.5
        await in_thread(lambda: sandbox.apply_faults(data_stream="normal"))
        resumed = await take(feed, 1, timeout=15.0)
        assert resumed
    finally:
        await feed.aclose()


async def test_the_stream_runs_inside_our_loop_and_stops_at_once(
    sandbox: SandboxThread,
) -> None:
    received: list[Any] = []
    socket = DataSocket(
        KEY,
        SECRET,
        sandbox.data_stream_url,
        symbols=["SPY"],
        on_bar=received.append,
        on_updated_bar=received.append,
        data_timeout=None,
    )
    await socket.start()
    lags: list[float] = []
    loop = asyncio.get_running_loop()
    while len(received) < 5:
        due = loop.time() + 0.01
        await asyncio.sleep(0.01)
        lags.append(loop.time() - due)
    assert max(lags) < 0.1  # the socket never blocks the loop
    started = time.monotonic()
    await socket.stop()
    assert time.monotonic() - started < 0.5
    assert not socket.connected()
    await eventually(lambda: sandbox.snapshot()["streams"]["data_clients"] == 0)  # type: ignore[index]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
async def test_the_sdk_run_cannot_be_used_inside_a_running_loop(sandbox: SandboxThread) -> None:
    stream = StockDataStream(KEY, SECRET, url_override=sandbox.data_stream_url)

    async def on_bar(_bar: Any) -> None:
        return None

    stream.subscribe_bars(on_bar, "SPY")
    with pytest.raises(AttributeError):  # asyncio.run's RuntimeError, masked by stop()
        stream.run()


async def test_an_empty_range_is_an_empty_list_not_a_key_error(sandbox: SandboxThread) -> None:
    saturday = datetime(2024, 3, 2, 15, 0, tzinfo=UTC)
    request = StockBarsRequest(
        symbol_or_symbols=["SPY"],
        timeframe=TimeFrame(1, TimeFrameUnit.Minute),
        start=saturday,
        end=saturday + timedelta(hours=2),
        feed=DataFeed.IEX,
    )
    barset: Any = data_client(sandbox).get_stock_bars(request)
    with pytest.raises(KeyError):
        _ = barset["SPY"]  # the trap: no key at all when the range holds no bars
    assert await rest_minutes(sandbox, saturday, saturday + timedelta(hours=2)) == []


# -- with a fake socket and REST: timers and gaps ---------------------------------------------


class FakeSocket:
    def __init__(self, on_bar: Callable[[Any], None], on_fix: Callable[[Any], None]) -> None:
        self.on_bar = on_bar
        self.on_fix = on_fix

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def connected(self) -> bool:
        return True

    def last_message_age(self, now: datetime | float | None = None) -> float | None:
        return 0.0

    def health(self) -> StreamHealth:
        return StreamHealth("ok", datetime(2024, 3, 4, tzinfo=UTC))


class FakeHistory:
    def __init__(self, bars: list[Bar]) -> None:
        self.bars = bars
        self.calls: list[tuple[datetime, datetime]] = []

    async def fetch(self, symbol: str, first: datetime, last: datetime) -> list[Bar]:
        self.calls.append((first, last))
        return [b for b in self.bars if first <= b.ts <= last]

    def close(self) -> None:
        return None


class ManualClock:
    def __init__(self, now: datetime) -> None:
        self.time = now
        self.timers: list[tuple[datetime, Callable[[], None]]] = []

    def now(self) -> datetime:
        return self.time

    async def sleep_until(self, when: datetime) -> None:
        self.time = max(self.time, when)

    def call_at(self, when: datetime, callback: Callable[[], None]) -> None:
        self.timers.append((when, callback))

    def advance(self, when: datetime) -> None:
        self.time = when
        due = [t for t in self.timers if t[0] <= when]
        self.timers = [t for t in self.timers if t[0] > when]
        for _, callback in due:
            callback()


def sdk_minute(ts: datetime, close: float) -> dict[str, Any]:
    return {
        "timestamp": ts,
        "open": close,
        "high": close + 1,
        "low": close - 1,
        "close": close,
        "volume": 10.0,
    }


def engine_minute(ts: datetime, close: float) -> Bar:
    return Bar("SPY", ts, close, close + 1, close - 1, close, 10.0)


@pytest.fixture
async def faked(
    calendar: MarketCalendar,
) -> AsyncIterator[tuple[AlpacaFeed, FakeHistory, ManualClock, list[FakeSocket]]]:
    history = FakeHistory([])
    clock = ManualClock(OPEN)
    sockets: list[FakeSocket] = []

    def factory(on_bar: Callable[[Any], None], on_fix: Callable[[Any], None]) -> FakeSocket:
        sockets.append(FakeSocket(on_bar, on_fix))
        return sockets[-1]

    feed = AlpacaFeed(
        symbol="SPY",
        timeframe=FIVE,
        clock=clock,
        history=history,
        socket_factory=factory,
        calendar=calendar,
        warmup_bars=0,
        grace=timedelta(seconds=10),
    )
    await feed.start()
    yield feed, history, clock, sockets
    await feed.aclose()


async def next_bar(feed: AlpacaFeed) -> Bar:
    bar = await asyncio.wait_for(feed._out.get(), 2.0)
    assert bar is not None, "the feed ended"
    return bar


async def test_the_timer_closes_a_period_whose_last_minute_never_came(faked: Any) -> None:
    feed, history, clock, (socket,) = faked
    history.bars = [engine_minute(OPEN + 4 * MINUTE, 104.0)]  # only REST knows 09:34
    for i in range(4):
        socket.on_bar(sdk_minute(OPEN + i * MINUTE, 100.0 + i))
    await asyncio.sleep(0.05)
    assert feed._out.empty()
    clock.advance(OPEN + 5 * MINUTE + timedelta(seconds=10))
    bar = await next_bar(feed)
    assert history.calls == [(OPEN + 4 * MINUTE, OPEN + 4 * MINUTE)]
    assert (bar.ts, bar.open, bar.close, bar.volume) == (OPEN, 100.0, 104.0, 50.0)


async def test_periods_lost_to_a_reconnect_are_back_filled_in_order(faked: Any) -> None:
    feed, history, _clock, (socket,) = faked
    history.bars = [engine_minute(OPEN + i * MINUTE, 100.0 + i) for i in range(5, 15)]
    socket.on_bar(sdk_minute(OPEN, 100.0))
    socket.on_bar(sdk_minute(OPEN + 15 * MINUTE, 115.0))  # 09:45: 09:35-09:44 were lost
    bars = [await next_bar(feed) for _ in range(3)]
    assert [b.ts for b in bars] == [OPEN, OPEN + 5 * MINUTE, OPEN + 10 * MINUTE]
    assert history.calls[0] == (OPEN + 5 * MINUTE, OPEN + 14 * MINUTE)
    assert bars[1].volume == 50.0 and bars[2].close == 114.0
    assert bars[0].volume == 10.0  # 09:31-09:34 had no trades anywhere


async def test_a_correction_after_the_close_is_a_notice_not_a_change(
    calendar: MarketCalendar,
) -> None:
    notices: list[Notice] = []
    sockets: list[FakeSocket] = []

    def factory(on_bar: Callable[[Any], None], on_fix: Callable[[Any], None]) -> FakeSocket:
        sockets.append(FakeSocket(on_bar, on_fix))
        return sockets[-1]

    feed = AlpacaFeed(
        symbol="SPY",
        timeframe=Timeframe(1, "Min"),
        clock=ManualClock(OPEN),
        history=FakeHistory([]),
        socket_factory=factory,
        calendar=calendar,
        warmup_bars=0,
        on_notice=notices.append,
    )
    await feed.start()
    try:
        sockets[0].on_bar(sdk_minute(OPEN, 100.0))
        first = await next_bar(feed)  # 1-minute bars are traded as they come
        sockets[0].on_fix(sdk_minute(OPEN, 101.0))
        await eventually(lambda: bool(notices))
    finally:
        await feed.aclose()
    assert first.close == 100.0 and feed._out.qsize() == 1  # only the end-of-feed marker
    assert "late correction for 14:30Z" in notices[0].message


# -- how far back warming up reaches ------------------------------------------------------------


def test_warmup_reaches_back_over_nights_weekends_and_holidays(calendar: MarketCalendar) -> None:
    monday = datetime(2024, 3, 4, 14, 45, tzinfo=UTC)  # 09:45, three bars into the session
    start = warmup_start(monday, FIVE, 100, calendar)
    # Monday's 3 bars + Friday's 78 = 81 < 101: Thursday's open (the 29th, a leap day).
    assert start == datetime(2024, 2, 29, 14, 30, tzinfo=UTC)
    good_friday = datetime(2024, 4, 1, 13, 35, tzinfo=UTC)  # Monday 09:35 after Good Friday
    assert warmup_start(good_friday, FIVE, 10, calendar) == datetime(
        2024, 3, 28, 13, 30, tzinfo=UTC
    )  # Thursday: Friday the 29th was a holiday
    assert warmup_start(monday, FIVE, 10, None) == monday - 11 * timedelta(minutes=5)
