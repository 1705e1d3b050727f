"""When each paced demo bar is due: a schedule of deadlines on a monotonic clock.

Sleeping a fixed ``timeframe / speed`` after each bar adds the time spent handling the bar to
every interval, so the delivered rate falls short of the speed shown (×10000 gave 26.5 bars/s
of 33.3). Here bar ``k`` is due one interval after bar ``k-1`` was *due*, not after it was
handled, so the handling time comes out of the sleep. A speed change rescales what is left of
the current interval at once (half-way through a 5 s wait, ×60 → ×300 leaves 0.5 s). After a
stall longer than ``max_behind`` the late bar comes at once and the schedule goes on from
there instead of bursting to catch up.
"""

from __future__ import annotations

MAX_BEHIND = 1.0
"""Seconds the schedule may fall behind and still catch up; past that it starts afresh."""


class PaceSchedule:
    """Deadlines (monotonic seconds) for one bar at a time, ``timeframe / speed`` apart."""

    __slots__ = ("_due", "_interval", "_max_behind", "_timeframe")

    def __init__(self, timeframe_seconds: float, *, max_behind: float = MAX_BEHIND) -> None:
        if timeframe_seconds <= 0:
            raise ValueError(f"timeframe_seconds must be positive, got {timeframe_seconds}")
        self._timeframe = float(timeframe_seconds)
        self._max_behind = max_behind
        self._due: float | None = None  # the deadline of the bar being waited for
        self._interval = 0.0

    @property
    def due(self) -> float | None:
        """When the bar being waited for is due; None before ``begin``."""
        return self._due

    def interval(self, speed: float) -> float:
        return self._timeframe / speed

    def begin(self, now: float, speed: float) -> float:
        """Start waiting for the next bar; returns the seconds left until it is due.

        The next bar is due one interval after the last one was due. When that is more than
        ``max_behind`` ago it is due now and the schedule goes on from here (no burst); with no
        last deadline (the start, after ``restart``) it is due one interval from now.
        """
        self._interval = self.interval(speed)
        previous = self._due
        if previous is None:
            self._due = now + self._interval
        else:
            due = previous + self._interval
            self._due = now if now - due > self._max_behind else due
        return max(0.0, self._due - now)

    def rescale(self, now: float, speed: float) -> float:
        """The speed changed mid-wait: keep the fraction of the interval already waited."""
        due = self._due
        if due is None or self._interval <= 0:
            return self.begin(now, speed)
        left = min(1.0, max(0.0, (due - now) / self._interval))
        self._interval = self.interval(speed)
        self._due = now + left * self._interval
        return max(0.0, self._due - now)

    def remaining(self, now: float) -> float:
        due = self._due
        return 0.0 if due is None else max(0.0, due - now)

    def restart(self) -> None:
        """Forget the last deadline: the next ``begin`` counts from its own ``now``."""
        self._due = None
