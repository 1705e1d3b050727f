"""Replay stored or generated bars as a ``Feed``, driving a ``SimClock`` bar by bar.

Each bar is delivered only once it is closed: before yielding it the clock moves to the bar's
END (``ts + timeframe``), firing every timer due by then. So a strategy never sees a bar before
its close, and timers due before a bar fire before that bar arrives.

Speed ``None`` replays as fast as possible (the backtester; ``iter_sync`` skips asyncio too).
Speed ``N`` paces the demo at one bar every ``timeframe / N`` real seconds through an injected
sleep; overnight and holiday gaps are not slept through, pacing is per bar. Chunks of bars are
pulled lazily, so an endless generator of ``SyntheticMarket.next_days(...)`` runs forever in
constant memory.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from datetime import timedelta

from tapewatch.engine.core.clock import SimClock
from tapewatch.engine.market.bars import BarArrays
from tapewatch.engine.model.types import Bar

MIN_SPEED = 1.0
MAX_SPEED = 10_000.0
# At full speed the async feed still hands the loop a turn this often, so a console sharing the
# loop keeps repainting and stop() from another task takes effect; it never sleeps for real.
_YIELD_EVERY = 512


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
    ) -> None:
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
        self._sleep_task: asyncio.Future[None] | None = None
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
        """Change the pace from the next bar on; numbers are clamped to [1, 10000]."""
        self._speed = _clamp_speed(speed)

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
        for bar in self._source:
            if not self._close(bar):
                return
            yield bar

    async def bars(self) -> AsyncIterator[Bar]:
        """The bars after the warm-up, each once closed, paced if a speed is set."""
        self.warmup()
        since_yield = 0
        for bar in self._source:
            if self._stopped:
                return
            speed = self._speed
            if speed is not None:
                if not await self._pace(self._timeframe_seconds / speed):
                    return
            else:
                since_yield += 1
                if since_yield >= _YIELD_EVERY:
                    since_yield = 0
                    await asyncio.sleep(0)
            if not self._close(bar):
                return
            yield bar

    async def _pace(self, delay: float) -> bool:
        """Sleep ``delay`` via the injected sleep; False if stop() cut it short."""
        task = asyncio.ensure_future(self._sleep(delay))
        self._sleep_task = task
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if self._stopped and (current is None or current.cancelling() == 0):
                return False  # our stop(), not a cancellation of the consumer
            raise
        finally:
            self._sleep_task = None
        return not self._stopped
