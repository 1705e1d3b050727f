"""Stale-data breaker: REDUCING when no bar has arrived for a while during the session.

A feed that goes silent while "connected" is a classic failure; trading on old prices is worse
than not trading. Outside the session silence is normal, so it is only checked in session, and
the clock starts no earlier than the first in-session check (the overnight gap never counts).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from tapewatch.engine.model.types import TradingState
from tapewatch.engine.risk.base import BreakerStatus
from tapewatch.engine.risk.latch import Latch

WARNING_FRACTION = 0.8


class StaleDataBreaker(Latch):
    """Trips when ``stale_bars`` × timeframe seconds pass in session without a new bar."""

    name = "stale"
    state = TradingState.REDUCING

    def __init__(
        self,
        timeframe_seconds: float,
        stale_bars: float = 2.0,
        in_session: Callable[[datetime], bool] = lambda _now: True,
    ) -> None:
        super().__init__()
        if timeframe_seconds <= 0 or stale_bars <= 0:
            raise ValueError("timeframe_seconds and stale_bars must be positive")
        self.timeframe_seconds = timeframe_seconds
        self.stale_bars = stale_bars
        self.threshold_seconds = stale_bars * timeframe_seconds
        self._in_session = in_session
        self.last_bar_at: datetime | None = None
        self._session_anchor: datetime | None = None  # first in-session check of this session

    def on_bar(self, bar_close_time: datetime) -> None:
        """A bar closed at ``bar_close_time``: data is flowing (never moves backwards)."""
        if self.last_bar_at is None or bar_close_time > self.last_bar_at:
            self.last_bar_at = bar_close_time

    def new_session(self) -> None:
        """A new trading day: restart the silence clock at the next in-session check."""
        self._session_anchor = None

    def _elapsed(self, now: datetime) -> float:
        """Seconds of in-session silence, measured from the later of last bar and session start."""
        ref = self._session_anchor
        last = self.last_bar_at
        if ref is None or (last is not None and last > ref):
            ref = last
        if ref is None:
            return 0.0
        return (now - ref).total_seconds()

    def check(self, now: datetime) -> bool:
        """True only when this check trips the breaker."""
        if not self._in_session(now):
            self._session_anchor = None
            return False
        if self._session_anchor is None:
            self._session_anchor = now
        if self.tripped:
            return False
        elapsed = self._elapsed(now)
        if elapsed < self.threshold_seconds:
            return False
        reason = (
            f"no new bar for {elapsed:.0f} s (limit {self.threshold_seconds:.0f} s = "
            f"{self.stale_bars:g} bars)"
        )
        return self.trip(now, reason)

    def status(self, now: datetime) -> BreakerStatus:
        since_last = (now - self.last_bar_at).total_seconds() if self.last_bar_at else 0.0
        in_session = self._in_session(now)
        return BreakerStatus(
            name=self.name,
            tripped=self.tripped,
            state=self.state,
            reason=self.reason,
            tripped_at=self.tripped_at,
            value=since_last,
            threshold=self.threshold_seconds,
            unit="s",
            warning=in_session and self._elapsed(now) >= WARNING_FRACTION * self.threshold_seconds,
        )
