"""Replay stored or generated bars as a ``Feed``, driving a ``SimClock`` bar by bar.

Each bar is delivered only once it is closed: before yielding it the clock moves to the bar's
END (``ts + timeframe``), firing every timer due by then. So a strategy never sees a bar before
its close, and timers due before a bar fire before that bar arrives.

Speed ``None`` replays as fast as possible (the backtester; ``iter_sync`` skips asyncio too).
Speed ``N`` paces the demo at one bar every ``timeframe / N`` real seconds against deadlines on
an injected monotonic clock (``pace.PaceSchedule``), so the time spent on a bar comes out of the
wait and the delivered rate is the one shown; overnight and holiday gaps are not slept through,
pacing is per bar. A new speed wakes the wait in progress and applies at once. With an
``ahead`` predicate (is this bar a strategy signal?) ``skip_to_signal`` hands bars over
unpaced until the next signal, which then arrives at the normal pace. Chunks of bars are
pulled lazily, so an endless generator of ``SyntheticMarket.next_days(...)`` runs forever in
constant memory.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from datetime import timedelta

from tapewatch.engine.adapters.sim.pace import PaceSchedule
from tapewatch.engine.core.clock import SimClock
from tapewatch.engine.market.bars import BarArrays
from tapewatch.engine.model.types import Bar

MIN_SPEED = 1.0
MAX_SPEED = 10_000.0
# At full speed the async feed still hands the loop a turn this often, so a console sharing the
# loop keeps repainting and stop() from another task takes effect; it never sleeps for real.
_YIELD_EVERY = 512
MAX_SKIP_BARS = 78 * 20
"""A fast-forward to the next signal gives up after this many bars (20 regular sessions)."""


def _clamp_speed(speed: float | None) -> float | None:
    if speed is None:
        return None
    speed = float(speed)
    if math.isnan(speed):
        raise ValueError("speed must be a number (or None for as fast as possible)")
    return min(max(speed, MIN_SPEED), MAX_SPEED)


class ReplayFeed:
    """Warm-up bars first, then the rest one closed bar at a time (``engine.core.feed.Feed``)."""

    def __init__(
        self,
        bars: BarArrays | Iterable[BarArrays],
        clock: SimClock,
        *,
        timeframe_seconds: int = 300,
        warmup: int = 0,
        speed: float | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        ahead: Callable[[Bar], bool] | None = None,
    ) -> None:
        """``sleep`` and ``monotonic`` are injected together (tests move a fake clock in the
        sleep); ``ahead`` sees every bar once, in order, before it is delivered, and says
        whether the strategy will act on it."""
        if timeframe_seconds <= 0:
            raise ValueError(f"timeframe_seconds must be positive, got {timeframe_seconds}")
        if warmup < 0:
            raise ValueError(f"warmup must be >= 0, got {warmup}")
        chunks: Iterable[BarArrays] = [bars] if isinstance(bars, BarArrays) else bars
        self._source: Iterator[Bar] = self._flatten(iter(chunks))
        self._clock = clock
        self._timeframe_seconds = timeframe_seconds
        self._timeframe = timedelta(seconds=timeframe_seconds)
        self._warmup_count = warmup
        self._warm: list[Bar] | None = None
        self._speed = _clamp_speed(speed)
        self._sleep = sleep
        self._monotonic = monotonic
        self._schedule = PaceSchedule(timeframe_seconds)
        self._ahead = ahead
        self._sleep_task: asyncio.Future[None] | None = None
        self._woken = False  # set_speed/skip_to_signal cut the wait short (not stop())
        self._next_is_signal = False  # the bar in hand, peeked by ``ahead``
        self._skipping = False
        self._skipped = 0
        self._stopped = False
        self.bars_delivered = 0

    @staticmethod
    def _flatten(chunks: Iterator[BarArrays]) -> Iterator[Bar]:
        for chunk in chunks:  # the next chunk is pulled only when this one is used up
            yield from chunk.iter_bars()

    # -- control --------------------------------------------------------------------------------

    @property
    def speed(self) -> float | None:
        """Bars per bar-length of real time (``None``: as fast as possible)."""
        return self._speed

    def set_speed(self, speed: float | None) -> None:
        """Change the pace now, mid-wait too; numbers are clamped to [1, 10000]."""
        self._speed = _clamp_speed(speed)
        self._wake()

    @property
    def can_skip(self) -> bool:
        """True when this feed can tell a signal bar before delivering it."""
        return self._ahead is not None

    @property
    def skipping(self) -> bool:
        """A fast-forward to the next signal is under way."""
        return self._skipping

    def skip_to_signal(self) -> bool:
        """Hand bars over unpaced until the next signal bar, which then comes at the pace set.

        False when there is nothing to skip: no ``ahead`` predicate, or the bar being waited
        for is itself a signal (the replay already stands just before it).
        """
        if self._ahead is None or self._stopped or self._next_is_signal:
            return False
        self._skipping = True
        self._skipped = 0
        self._wake()
        return True

    def _wake(self) -> None:
        task = self._sleep_task
        if task is not None and not task.done():
            self._woken = True
            task.cancel()

    @property
    def stopped(self) -> bool:
        return self._stopped

    def stop(self) -> None:
        """End the iteration promptly, even in the middle of a paced sleep."""
        self._stopped = True
        task = self._sleep_task
        if task is not None and not task.done():
            task.cancel()

    # -- bars -----------------------------------------------------------------------------------

    def warmup(self) -> list[Bar]:
        """The first ``warmup`` bars; the clock moves to the end of the last one.

        Taken once: later calls return the same bars. ``bars()``/``iter_sync()`` take it
        themselves if nobody did, so the split never depends on the caller remembering.
        """
        if self._warm is None:
            self._warm = list(itertools.islice(self._source, self._warmup_count))
            if self._warm:
                self._clock.advance_to(self._warm[-1].ts + self._timeframe)
        return list(self._warm)

    def _close(self, bar: Bar) -> bool:
        """Advance the clock to the bar's close; False if that (or a timer) stopped the feed."""
        if self._stopped:
            return False
        self._clock.advance_to(bar.ts + self._timeframe)
        if self._stopped:
            return False
        self.bars_delivered += 1
        return True

    def iter_sync(self) -> Iterator[Bar]:
        """``bars()`` without asyncio or pacing, for the backtester's tight loop."""
        self.warmup()
        ahead = self._ahead
        for bar in self._source:
            if ahead is not None:
                ahead(bar)  # keep the look-ahead in step with what is delivered
            if not self._close(bar):
                return
            yield bar

    def _peek(self, bar: Bar) -> bool:
        """Is ``bar`` a signal? Also ends a fast-forward on it (or after ``MAX_SKIP_BARS``)."""
        signal = self._ahead(bar) if self._ahead is not None else False
        self._next_is_signal = signal
        if self._skipping:
            self._skipped += 1
            if signal or self._skipped > MAX_SKIP_BARS:
                self._skipping = False
                self._schedule.restart()  # the signal bar gets a whole interval from now
        return signal

    async def bars(self) -> AsyncIterator[Bar]:
        """The bars after the warm-up, each once closed, paced if a speed is set."""
        self.warmup()
        since_yield = 0
        for bar in self._source:
            if self._stopped:
                return
            self._peek(bar)
            if self._skipping:
                await asyncio.sleep(0)  # unpaced, but the console keeps its turns
            elif self._speed is not None:
                if not await self._pace():
                    return
            else:
                self._schedule.restart()
                since_yield += 1
                if since_yield >= _YIELD_EVERY:
                    since_yield = 0
                    await asyncio.sleep(0)
            self._next_is_signal = False
            if not self._close(bar):
                return
            yield bar

    async def _pace(self) -> bool:
        """Wait until the bar in hand is due; False if stop() cut the wait short.

        A new speed rescales the wait and goes on waiting; a fast-forward (or speed ``None``)
        ends it at once.
        """
        speed = self._speed
        assert speed is not None
        delay = self._schedule.begin(self._monotonic(), speed)
        while True:
            self._woken = False
            task = asyncio.ensure_future(self._sleep(delay))
            self._sleep_task = task
            try:
                await task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling() > 0:
                    raise  # the consumer is being cancelled, not just our sleep
                if self._stopped:
                    return False  # our stop()
                if not self._woken:
                    raise
                now_speed = self._speed
                if self._skipping or now_speed is None:
                    self._schedule.restart()
                    return True
                delay = self._schedule.rescale(self._monotonic(), now_speed)
                continue
            finally:
                self._sleep_task = None
            return not self._stopped
