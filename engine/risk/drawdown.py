"""Daily drawdown breaker: trips once equity has fallen ``max_drawdown`` below the day's start.

What a trip imposes is the user's ``[risk] drawdown_action``: REDUCING by default ("reduce":
no new entries, but the strategy's exit still goes, so a losing position is not held to the
end), HALTED ("halt": no strategy order at all), or REDUCING plus a flatten the engine sends
("flatten"). The operator's flatten works in every case.
"""

from __future__ import annotations

from datetime import datetime

from tapewatch.engine.model.types import TradingState
from tapewatch.engine.risk.base import BreakerStatus
from tapewatch.engine.risk.latch import Latch

WARNING_FRACTION = 0.8
"""Show a warning once the drawdown reaches this fraction of the limit."""

_EPS = 1e-12  # 95,000 against 100,000 must count as exactly 5%, whatever the binary noise


class DrawdownBreaker(Latch):
    """Measures (day start - equity) / day start; trips at or beyond the limit."""

    name = "drawdown"

    def __init__(self, max_drawdown: float, action: str = "reduce") -> None:
        super().__init__()
        if not 0 < max_drawdown < 1:
            raise ValueError(f"max_drawdown must be in (0, 1) (got {max_drawdown!r})")
        if action not in ("reduce", "halt", "flatten"):
            raise ValueError(f"drawdown action must be reduce, halt or flatten (got {action!r})")
        self.max_drawdown = max_drawdown
        self.action = action
        self.state = TradingState.HALTED if action == "halt" else TradingState.REDUCING
        self.day_start_equity: float | None = None
        self.drawdown = 0.0  # the latest measured fraction; 0 when equity is at or above start

    def start_day(self, starting_equity: float) -> None:
        """Measure from a new day's starting equity (a trip from an earlier day stays latched)."""
        self.day_start_equity = starting_equity
        self.drawdown = 0.0

    def breaches(self, equity: float) -> bool:
        """Would this equity trip the (not yet tripped) breaker? Same arithmetic as on_equity."""
        start = self.day_start_equity
        if self.tripped or start is None or start <= 0:
            return False
        return (start - equity) / start >= self.max_drawdown - _EPS

    def on_equity(self, equity: float, now: datetime) -> bool:
        """Record the latest equity; True only when this update trips the breaker."""
        start = self.day_start_equity
        if start is None or start <= 0:
            return False
        drawdown = (start - equity) / start
        self.drawdown = drawdown if drawdown > 0.0 else 0.0
        if self.tripped or drawdown < self.max_drawdown - _EPS:
            return False
        reason = (
            f"drawdown {drawdown:.1%} ≥ {self.max_drawdown:.1%} of day's starting equity "
            f"${start:,.2f}"
        )
        return self.trip(now, reason)

    def status(self, now: datetime) -> BreakerStatus:
        return BreakerStatus(
            name=self.name,
            tripped=self.tripped,
            state=self.state,
            reason=self.reason,
            tripped_at=self.tripped_at,
            value=self.drawdown * 100.0,
            threshold=self.max_drawdown * 100.0,
            unit="%",
            warning=self.drawdown >= WARNING_FRACTION * self.max_drawdown - _EPS,
        )
