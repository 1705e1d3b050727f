"""The demo's pace: deadlines on an injected clock, speeds that apply mid-wait, next signal.

Every test runs on a fake monotonic clock that only the injected sleep (and the test) moves,
so nothing depends on how fast this machine is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, date, datetime

import pytest

from tapewatch.engine.adapters.sim.pace import MAX_BEHIND, PaceSchedule
from tapewatch.engine.adapters.sim.replay import ReplayFeed
from tapewatch.engine.api.commands import SkipToSignal
from tapewatch.engine.api.handle import InProcessHandle
from tapewatch.engine.api.replies import Accepted, Refused
from tapewatch.engine.core.clock import SimClock
from tapewatch.engine.market.bars import BarArrays
from tapewatch.engine.market.synthetic import generate
from tapewatch.engine.model.events import Event, SignalEvaluated
from tapewatch.engine.model.types import Bar, Mode
from tapewatch.engine.root.demo import DEMO_LEAD_BARS, DemoOptions, DemoSession, build_demo
from tapewatch.engine.settings.config import EngineConfig

T0 = datetime(2024, 3, 4, tzinfo=UTC)


@pytest.fixture(scope="module")
def week() -> BarArrays:
    return generate(seed=2, start=date(2024, 3, 4), end=date(2024, 3, 8))  # 390 bars


class FakeTime:
    """A monotonic clock and a sleep on it. ``block`` sleeps wait (for a cancel or
    ``release``) instead of returning: the test then moves the clock itself."""

    def __init__(self, *, block: bool = False) -> None:
        self.now = 0.0
        self.delays: list[float] = []
        self.block = block
        self.entered = asyncio.Event()
        self._release = asyncio.Event()

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.delays.append(delay)
        if self.block:
            self.entered.set()
            await self._release.wait()
            self._release.clear()
            self.entered.clear()
        self.now += delay

    def release(self) -> None:
        self._release.set()


def paced(bars: BarArrays, time: FakeTime, speed: float | None, **kwargs: object) -> ReplayFeed:
    return ReplayFeed(
        bars,
        SimClock(T0),
        speed=speed,
        sleep=time.sleep,
        monotonic=time.monotonic,
        **kwargs,  # type: ignore[arg-type]
    )


async def until_sleeping(time: FakeTime, calls: int) -> None:
    for _ in range(1000):
        if time.entered.is_set() and len(time.delays) == calls:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"the feed never made sleep call {calls} (delays {time.delays})")


# -- deadlines: the delivered rate is the rate shown ------------------------------------------


async def test_time_spent_on_a_bar_comes_out_of_the_wait(week: BarArrays) -> None:
    """×10000 on 5-minute bars promises 33.3 bars/s; 7.7 ms of work per bar must not eat it."""
    time = FakeTime()
    feed = paced(week.slice(0, 300), time, 10_000)
    async for _ in feed.bars():
        time.now += 0.0077  # the engine and the console handling the bar
    assert len(time.delays) == 300
    assert time.delays[0] == pytest.approx(0.03)
    assert time.delays[1:] == pytest.approx([0.03 - 0.0077] * 299)
    rate = feed.bars_delivered / time.now
    assert rate == pytest.approx(10_000 / 300, rel=0.01)  # 33.3 bars/s, not 26.5


async def test_a_stall_restarts_the_schedule_instead_of_bursting(week: BarArrays) -> None:
    time = FakeTime()
    feed = paced(week.slice(0, 4), time, 60)  # one bar per 5 s
    async for _ in feed.bars():
        if feed.bars_delivered == 2:
            time.now += 5 + MAX_BEHIND + 3  # the loop was stuck well past the next deadline
    assert time.delays == [5.0, 5.0, 0.0, 5.0]  # one late bar at once, then the pace again


def test_schedule_rescales_what_is_left_of_the_wait() -> None:
    schedule = PaceSchedule(300)
    assert schedule.begin(0.0, 60) == 5.0
    assert schedule.rescale(2.5, 300) == pytest.approx(0.5)  # half-way: half of the new 1 s
    assert schedule.due == pytest.approx(3.0)
    assert schedule.rescale(2.9, 1) == pytest.approx(0.1 * 300)  # a tenth left of 300 s


# -- a new speed applies at once --------------------------------------------------------------


async def collect(feed: ReplayFeed) -> list[Bar]:
    return [bar async for bar in feed.bars()]


async def test_a_new_speed_wakes_the_wait_in_progress(week: BarArrays) -> None:
    time = FakeTime(block=True)
    feed = paced(week.slice(0, 2), time, 1)  # 300 s for the first bar
    consumer = asyncio.create_task(collect(feed))
    await until_sleeping(time, 1)
    time.now = 150.0  # half-way through the first bar's wait
    feed.set_speed(300)  # 1 s per bar: half of it is left
    await until_sleeping(time, 2)
    assert time.delays == [300.0, pytest.approx(0.5)]
    assert feed.bars_delivered == 0  # the speed change alone delivers nothing
    time.release()
    await until_sleeping(time, 3)
    assert feed.bars_delivered == 1
    feed.stop()
    assert len(await asyncio.wait_for(consumer, 1)) == 1


async def test_unpaced_mid_wait_delivers_the_bar_at_once(week: BarArrays) -> None:
    time = FakeTime(block=True)
    feed = paced(week.slice(0, 3), time, 1)
    consumer = asyncio.create_task(collect(feed))
    await until_sleeping(time, 1)
    feed.set_speed(None)
    bars = await asyncio.wait_for(consumer, 1)
    assert len(bars) == 3 and time.delays == [300.0]


# -- next signal ------------------------------------------------------------------------------


def signal_at(*indices: int, of: BarArrays) -> set[datetime]:
    return {of.bar(i).ts for i in indices}


async def test_skip_hands_bars_over_unpaced_until_the_signal(week: BarArrays) -> None:
    signals = signal_at(40, 90, of=week)
    time = FakeTime()
    feed = paced(week.slice(0, 100), time, 60, ahead=lambda bar: bar.ts in signals)
    assert feed.can_skip
    got: list[Bar] = []
    async for bar in feed.bars():
        got.append(bar)
        if len(got) == 2:
            assert feed.skip_to_signal()
            assert feed.skipping
        if bar.ts in signals:
            break
    assert got[-1] == week.bar(40)
    # Two paced bars, then none until the signal bar, which keeps a whole interval.
    assert time.delays == [5.0, 5.0, 5.0]
    assert not feed.skipping


async def test_skip_ends_the_wait_in_progress(week: BarArrays) -> None:
    signals = signal_at(10, of=week)
    time = FakeTime(block=True)
    feed = paced(week.slice(0, 20), time, 1, ahead=lambda bar: bar.ts in signals)
    consumer = asyncio.create_task(collect(feed))
    await until_sleeping(time, 1)
    assert feed.skip_to_signal()
    await until_sleeping(time, 2)  # bars 0..9 went at once; bar 10 waits its 300 s
    assert feed.bars_delivered == 10 and time.delays == [300.0, 300.0]
    feed.stop()
    await asyncio.wait_for(consumer, 1)


async def test_no_skip_when_the_bar_in_hand_is_the_signal_or_nothing_looks_ahead(
    week: BarArrays,
) -> None:
    time = FakeTime(block=True)
    feed = paced(week.slice(0, 5), time, 60, ahead=lambda bar: bar.ts == week.bar(0).ts)
    consumer = asyncio.create_task(collect(feed))
    await until_sleeping(time, 1)
    assert not feed.skip_to_signal()  # already just before it
    assert not feed.skipping
    feed.stop()
    await asyncio.wait_for(consumer, 1)
    blind = paced(week, FakeTime(), 60)
    assert not blind.can_skip and not blind.skip_to_signal()


# -- the demo: trading within the first minute, next signal through the API --------------------


async def drive(session: DemoSession, until: Callable[[list[Event]], bool]) -> list[Event]:
    """Run the engine until ``until(events so far)`` holds; every event it published."""
    engine = session.engine
    seen: list[Event] = []
    engine.add_sink(seen.append)  # synchronous: in step with the fake clock
    run = asyncio.create_task(engine.run(session.feed))
    while not until(seen):
        assert not run.done(), "the feed ended first"
        await asyncio.sleep(0)
    await engine.stop("test over")
    await run
    return seen


def acted(events: list[Event]) -> list[SignalEvaluated]:
    return [e for e in events if isinstance(e, SignalEvaluated) and e.action != "hold"]


@pytest.mark.parametrize("seed", [7, 3, 11])
async def test_the_first_order_comes_within_the_first_minute(seed: int) -> None:
    time = FakeTime()
    session = build_demo(
        EngineConfig().validate(),
        DemoOptions(seed=seed),  # the default ×60: one bar every 5 s
        data_dir=None,
        sleep=time.sleep,
        monotonic=time.monotonic,
    )
    submitted_at: list[float] = []
    session.engine.add_sink(
        lambda e: submitted_at.append(time.now) if e.kind == "order_submitted" else None
    )
    events = await drive(session, lambda seen: bool(submitted_at))
    assert acted(events)[0].action == "buy"
    bars = [e for e in events if e.kind == "bar"]
    assert len(bars) == DEMO_LEAD_BARS + 1  # a few bars to see, then the signal
    assert submitted_at[0] <= 60.0


def test_without_a_lead_the_warmup_is_as_asked() -> None:
    session = build_demo(
        EngineConfig().validate(), DemoOptions(seed=7, lead_bars=None), data_dir=None
    )
    assert len(session.feed.warmup()) == DemoOptions().warmup_bars


async def test_the_look_ahead_agrees_with_the_engine_bar_for_bar() -> None:
    """The scout's answer for each bar is what the engine then does (holding and flat)."""
    session = build_demo(EngineConfig().validate(), DemoOptions(seed=7), data_dir=None)
    feed, engine = session.feed, session.engine
    scout = feed._ahead  # wrapped below to record its answers
    assert scout is not None
    said: list[bool] = []

    def recorded(bar: Bar) -> bool:
        said.append(scout(bar))
        return said[-1]

    feed._ahead = recorded
    await engine.start()
    engine.warm(feed.warmup())
    did: list[bool] = []
    for bar in feed.iter_sync():
        await engine.on_bar(bar)
        signal = engine.state.last_signal
        assert signal is not None
        did.append(signal.action != "hold")
        if len(did) == 2500:
            break
    assert sum(did) >= 10  # buys and sells both happened
    assert said == did


async def test_skip_to_signal_through_the_handle() -> None:
    time = FakeTime(block=True)
    session = build_demo(
        EngineConfig().validate(),
        DemoOptions(seed=7, lead_bars=None),  # the first signal is 558 bars away
        data_dir=None,
        sleep=time.sleep,
        monotonic=time.monotonic,
    )
    engine, feed = session.engine, session.feed
    events: list[Event] = []
    engine.add_sink(events.append)
    handle = InProcessHandle(engine, alerts=False)
    run = asyncio.create_task(engine.run(feed))
    await until_sleeping(time, 1)
    time.release()
    await until_sleeping(time, 2)  # the second bar's wait has begun
    assert feed.bars_delivered == 1
    reply = await handle.send(SkipToSignal(who="tester"))
    assert isinstance(reply, Accepted), reply
    await until_sleeping(time, 3)  # the wait ended; 556 bars went at once; the signal bar waits
    assert feed.bars_delivered == 557 and not acted(events)
    assert time.delays == [5.0, 5.0, 5.0]
    time.release()
    for _ in range(1000):
        if acted(events):
            break
        await asyncio.sleep(0)
    assert feed.bars_delivered == 558 and acted(events)[0].action == "buy"
    await engine.stop("test over")
    time.release()
    await asyncio.wait_for(run, 1)


async def test_skip_is_refused_outside_the_demo() -> None:
    session = build_demo(
        EngineConfig().validate(),
        DemoOptions(seed=7, mode=Mode.PAPER, lead_bars=None),
        data_dir=None,
    )
    reply = await InProcessHandle(session.engine, alerts=False).send(SkipToSignal(who="t"))
    assert isinstance(reply, Refused) and "demo only" in reply.reason
