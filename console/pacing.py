"""When the console redraws: changes coalesced into frames, each pane no faster than it is read.

The app used to poll the engine ten times a second, idle or not. Now a change (an engine event,
a command's reply, a resize) asks for a frame; every change that arrives before that frame rides
on it, so a burst of snapshots is one redraw, and nothing is drawn while nothing changes. A pane
that is costly and read slowly (the latency table) redraws at most every ``every`` seconds;
a newer picture waits for its next turn and is never dropped.

``StallProbe`` is the loop's independent witness: a short sleep in a loop, and how late it
wakes. It runs only while changes arrive, so an idle console is really idle.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

FRAME_INTERVAL = 0.1  # seconds between frames at most 10 a second
PROBE_SLEEP = 0.010  # the stall probe's sleep
PROBE_IDLE = 2.0  # seconds without a change before the probe parks
PROBE_SAMPLES = 600  # about the last 6 s of a busy loop


@dataclass(slots=True)
class FramePacer:
    """Turns many "something changed" calls into one frame per ``interval`` at most.

    ``request`` answers the delay for a frame timer, or None when a frame is already on its way
    (the change will be drawn by it). ``begin`` is called as the frame starts drawing.
    """

    interval: float = FRAME_INTERVAL
    clock: Callable[[], float] = time.monotonic
    _last: float = float("-inf")
    _armed: bool = False

    @property
    def armed(self) -> bool:
        return self._armed

    def request(self, at_least: float = 0.0) -> float | None:
        if self._armed:
            return None
        self._armed = True
        return max(at_least, self._last + self.interval - self.clock(), 0.0)

    def begin(self) -> None:
        self._armed = False
        self._last = self.clock()


@dataclass(slots=True)
class Throttle:
    """A pane drawn at most every ``every`` seconds; ``wait`` says how long until it may be."""

    every: float
    clock: Callable[[], float] = time.monotonic
    _drawn: float = float("-inf")

    def wait(self) -> float:
        return max(0.0, self._drawn + self.every - self.clock())

    def drawn(self) -> None:
        self._drawn = self.clock()


@dataclass(slots=True)
class StallProbe:
    """How late a ``PROBE_SLEEP`` sleep wakes on this loop: (p99, max) of the recent samples.

    ``wake`` (on each change) starts it; after ``idle`` seconds without one it parks on an
    event, so a console with nothing arriving costs no wake-ups.
    """

    idle: float = PROBE_IDLE
    sleep: float = PROBE_SLEEP
    samples: deque[float] = field(default_factory=lambda: deque(maxlen=PROBE_SAMPLES))
    _woken_at: float = float("-inf")
    _wake: asyncio.Event | None = None

    def wake(self) -> None:
        self._woken_at = time.perf_counter()
        if self._wake is not None:
            self._wake.set()

    def summary(self) -> tuple[float, float] | None:
        if not self.samples:
            return None
        ordered = sorted(self.samples)
        return ordered[int(0.99 * (len(ordered) - 1))], ordered[-1]

    async def run(self) -> None:
        self._wake = asyncio.Event()
        while True:
            if time.perf_counter() - self._woken_at > self.idle:
                self._wake.clear()
                await self._wake.wait()
            started = time.perf_counter()
            await asyncio.sleep(self.sleep)
            self.samples.append(max(0.0, time.perf_counter() - started - self.sleep))
