"""Operator pause: REDUCING, so no new entries while exits (and flatten) still go through."""

from __future__ import annotations

from datetime import datetime

from tapewatch.engine.model.types import TradingState
from tapewatch.engine.risk.base import BreakerStatus
from tapewatch.engine.risk.latch import Latch

DEFAULT_REASON = "paused by operator"


class PauseBreaker(Latch):
    """Tripped by the operator's pause, cleared by resume (reset)."""

    name = "pause"
    state = TradingState.REDUCING

    def trip(self, now: datetime, reason: str = DEFAULT_REASON) -> bool:
        return super().trip(now, reason or DEFAULT_REASON)

    def status(self, now: datetime) -> BreakerStatus:
        return BreakerStatus(
            name=self.name,
            tripped=self.tripped,
            state=self.state,
            reason=self.reason,
            tripped_at=self.tripped_at,
            value=1.0 if self.tripped else 0.0,
            threshold=1.0,
            unit="",
        )
