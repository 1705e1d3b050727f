"""ReplayFeed: closed bars only, clock at each bar's end, warm-up split, pacing, speed, stop."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from tapewatch.engine.adapters.sim.replay import ReplayFeed
from tapewatch.engine.core.clock import SimClock
from tapewatch.engine.market.bars import BarArrays
from tapewatch.engine.market.synthetic import SyntheticMarket, generate
from tapewatch.engine.model.types import Bar

FIVE = timedelta(minutes=5)
T0 = datetime(2024, 3, 4, tzinfo=UTC)


@pytest.fixture(scope="module")
def week() -> BarArrays:
    return generate(seed=2, start=date(2024, 3, 4), end=date(2024, 3, 8))  # 390 bars


class Sleeper:
    """An injected sleep that records delays and returns at once (or blocks when asked),
    moving its fake monotonic clock (``monotonic``) on by each delay."""

    def __init__(self, block: bool = False) -> None:
        self.delays: list[float] = []
        self.block = block
        self.entered = asyncio.Event()
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        self.now += delay
        self.entered.set()
        if self.block:
            await asyncio.Event().wait()  # only stop() (a cancel) gets us out


async def collect(feed: ReplayFeed) -> list[Bar]:
    return [bar async for bar in feed.bars()]


async def test_clock_is_at_the_bar_close_before_each_yield(week: BarArrays) -> None:
    clock = SimClock(T0)
    feed = ReplayFeed(week, clock)
    seen = 0
    async for bar in feed.bars():
        assert clock.now() == bar.ts + FIVE
        seen += 1
    assert seen == len(week) == feed.bars_delivered


async def test_timers_due_before_a_bar_fire_before_it_arrives(week: BarArrays) -> None:
    clock = SimClock(T0)
    feed = ReplayFeed(week, clock)
    third_close = week.bar(2).ts + FIVE
    fired: list[int] = []
    clock.call_at(third_close - timedelta(seconds=1), lambda: fired.append(feed.bars_delivered))
    async for _ in feed.bars():
        if feed.bars_delivered == 3:
            break
    assert fired == [2]  # fired after two bars, before the third was handed out


async def test_warmup_split(week: BarArrays) -> None:
    clock = SimClock(T0)
    feed = ReplayFeed(week, clock, warmup=100)
    warm = feed.warmup()
    assert [b.ts for b in warm] == [b.ts for b in week.iter_bars(0, 100)]
    assert clock.now() == warm[-1].ts + FIVE
    assert feed.warmup() == warm  # taken once
    rest = await collect(feed)
    assert rest[0] == week.bar(100) and len(rest) == len(week) - 100
    assert feed.bars_delivered == len(week) - 100


async def test_bars_takes_the_warmup_itself_if_nobody_did(week: BarArrays) -> None:
    feed = ReplayFeed(week, SimClock(T0), warmup=10)
    rest = await collect(feed)
    assert rest[0] == week.bar(10)


async def test_as_fast_as_possible_never_calls_the_sleep(week: BarArrays) -> None:
    sleeper = Sleeper()
    feed = ReplayFeed(week, SimClock(T0), sleep=sleeper)
    assert len(await collect(feed)) == len(week)
    assert sleeper.delays == []


async def test_paced_mode_sleeps_timeframe_over_speed_per_bar(week: BarArrays) -> None:
    sleeper = Sleeper()
    feed = ReplayFeed(
        week.slice(0, 100), SimClock(T0), speed=60, sleep=sleeper, monotonic=sleeper.monotonic
    )
    bars = await collect(feed)
    assert len(bars) == 100  # includes the overnight gap after bar 78: still one sleep a bar
    assert sleeper.delays == [300 / 60] * 100


async def test_set_speed_between_bars_paces_the_next_bar(week: BarArrays) -> None:
    sleeper = Sleeper()
    feed = ReplayFeed(
        week.slice(0, 6), SimClock(T0), speed=10, sleep=sleeper, monotonic=sleeper.monotonic
    )
    async for _ in feed.bars():
        if feed.bars_delivered == 2:
            feed.set_speed(100)
        if feed.bars_delivered == 4:
            feed.set_speed(None)
    assert sleeper.delays == [30.0, 30.0, 3.0, 3.0]


def test_speed_is_clamped(week: BarArrays) -> None:
    feed = ReplayFeed(week, SimClock(T0), speed=0.01)
    assert feed.speed == 1.0
    feed.set_speed(1e9)
    assert feed.speed == 10_000.0
    feed.set_speed(None)
    assert feed.speed is None
    with pytest.raises(ValueError):
        feed.set_speed(float("nan"))


async def test_stop_mid_sleep_ends_promptly(week: BarArrays) -> None:
    sleeper = Sleeper(block=True)
    clock = SimClock(T0)
    feed = ReplayFeed(week, clock, speed=1, sleep=sleeper)
    consumer = asyncio.create_task(collect(feed))
    await asyncio.wait_for(sleeper.entered.wait(), 1)
    feed.stop()
    bars = await asyncio.wait_for(consumer, 1)
    assert bars == [] and feed.bars_delivered == 0
    assert clock.now() == T0  # the interrupted bar was never closed


async def test_stop_between_bars(week: BarArrays) -> None:
    feed = ReplayFeed(week, SimClock(T0))
    got = []
    async for bar in feed.bars():
        got.append(bar)
        if len(got) == 5:
            feed.stop()
    assert len(got) == 5 and feed.stopped


async def test_cancelling_the_consumer_is_not_swallowed(week: BarArrays) -> None:
    sleeper = Sleeper(block=True)
    feed = ReplayFeed(week, SimClock(T0), speed=1, sleep=sleeper)
    consumer = asyncio.create_task(collect(feed))
    await asyncio.wait_for(sleeper.entered.wait(), 1)
    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer


async def test_iter_sync_equals_bars(week: BarArrays) -> None:
    clock_a, clock_b = SimClock(T0), SimClock(T0)
    sync = list(ReplayFeed(week, clock_a, warmup=20).iter_sync())
    via_async = await collect(ReplayFeed(week, clock_b, warmup=20))
    assert sync == via_async and len(sync) == len(week) - 20
    assert clock_a.now() == clock_b.now() == week.bar(-1).ts + FIVE


def test_iter_sync_stops_and_counts(week: BarArrays) -> None:
    feed = ReplayFeed(week, SimClock(T0))
    for bar in feed.iter_sync():
        if feed.bars_delivered == 7:
            feed.stop()
            last = bar
    assert feed.bars_delivered == 7 and last == week.bar(6)


def test_chunks_are_pulled_lazily_and_can_go_on_forever() -> None:
    market = SyntheticMarket(seed=1, start=date(2024, 1, 2))
    pulled: list[int] = []

    def endless() -> Iterator[BarArrays]:
        while True:
            pulled.append(1)
            yield market.next_days(1)

    clock = SimClock(datetime(2024, 1, 2, tzinfo=UTC))
    feed = ReplayFeed(endless(), clock, warmup=100)
    assert len(feed.warmup()) == 100 and len(pulled) == 2  # 78 + 22 bars
    stream = feed.iter_sync()
    bars = [next(stream) for _ in range(200)]
    assert len(pulled) == 4  # bars 101..300 need sessions 2..4 only
    assert np.all(np.diff([b.ts.timestamp() for b in bars]) > 0)
    assert clock.now() == bars[-1].ts + FIVE


def test_bars_are_bar_objects_with_utc_times(week: BarArrays) -> None:
    bar = next(ReplayFeed(week, SimClock(T0)).iter_sync())
    assert isinstance(bar, Bar) and bar.symbol == "SPY"
    assert bar.ts == datetime(2024, 3, 4, 14, 30, tzinfo=UTC)


# -- BarArrays, the columns the feed replays ---------------------------------------------------


def test_iter_bars_matches_the_bar_constructor(week: BarArrays) -> None:
    expected = [
        Bar(
            week.symbol,
            datetime.fromtimestamp(int(week.ts_ns[i]) // 10**9, UTC),
            float(week.open[i]),
            float(week.high[i]),
            float(week.low[i]),
            float(week.close[i]),
            float(week.volume[i]),
        )
        for i in range(len(week))
    ]
    assert list(week.iter_bars()) == expected
    assert list(week.iter_bars(5, 9)) == expected[5:9]
    assert week.bar(-1) == expected[-1]
    assert hash(week.bar(3)) == hash(expected[3])  # still a proper frozen Bar


def test_slice_and_concat_round_trip(week: BarArrays) -> None:
    joined = BarArrays.concat([week.slice(0, 100), week.slice(100)])
    assert np.array_equal(joined.ts_ns, week.ts_ns) and np.array_equal(joined.close, week.close)
    with pytest.raises(ValueError):
        BarArrays.concat([week, BarArrays.empty("QQQ")])
    with pytest.raises(ValueError):
        BarArrays("X", np.zeros(3, dtype=np.int64), *([np.ones(2)] * 5))


def test_sub_second_timestamps_keep_microseconds() -> None:
    ts = np.array([1_704_205_800_123_456_000, -1_500_000], dtype=np.int64)
    bars = BarArrays("X", ts, *([np.ones(2)] * 5))
    assert bars.bar(0).ts == datetime(2024, 1, 2, 14, 30, 0, 123456, tzinfo=UTC)
    assert bars.bar(1).ts == datetime(1969, 12, 31, 23, 59, 59, 998500, tzinfo=UTC)


def test_iter_bars_over_chunk_boundaries() -> None:
    """The fast path (chunked, slots set directly) yields every bar, equal to bar(i)."""
    bars = generate(seed=1, start=date(2020, 1, 2), n_bars=200_000)
    built = list(bars.iter_bars())
    assert len(built) == 200_000
    for i in (0, 1, 65_535, 65_536, 131_071, 199_999):
        assert built[i] == bars.bar(i)
