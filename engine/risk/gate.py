"""The risk gate between strategy and broker: ACTIVE lets all through, REDUCING only orders that
shrink a position, HALTED nothing (except the operator's flatten).

The gate owns the breakers, turns each latch change into a ``BreakerChanged`` event for the
engine to journal, and restores them from those events after a restart so a restart never
silently re-arms trading.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Protocol

from tapewatch.engine.model.events import BreakerChanged
from tapewatch.engine.model.types import Intent, OrderRequest, Side, TradingState
from tapewatch.engine.risk.base import Breaker, BreakerStatus, RiskDecision
from tapewatch.engine.risk.drawdown import DrawdownBreaker
from tapewatch.engine.risk.pause import PauseBreaker
from tapewatch.engine.risk.stale import StaleDataBreaker
from tapewatch.engine.settings.config import RiskConfig

_ALLOW = RiskDecision(allowed=True)
_QTY_EPS = 1e-9  # Alpaca's fractional precision: a sell of the whole floored position is fine


class LatchedBreaker(Breaker, Protocol):
    """A breaker the gate can read on the order path without building a status."""

    tripped: bool
    state: TradingState
    reason: str
    tripped_at: datetime | None


class RiskGate:
    """Holds the breakers (``.drawdown``, ``.operator_pause``, ``.stale``, plus any ``add()``ed)."""

    def __init__(
        self,
        cfg: RiskConfig,
        timeframe_seconds: int,
        in_session: Callable[[datetime], bool],
        *,
        watch_staleness: bool = True,
    ) -> None:
        """``watch_staleness`` False for history (a backtest): a hole in old data is not a
        silent feed, so the stale-data breaker never trips there."""
        self.drawdown = DrawdownBreaker(cfg.max_drawdown, cfg.drawdown_action)
        self.operator_pause = PauseBreaker()
        self.stale = StaleDataBreaker(timeframe_seconds, cfg.stale_bars, in_session)
        self.watch_staleness = watch_staleness
        self._breakers: list[LatchedBreaker] = []
        self._by_name: dict[str, LatchedBreaker] = {}
        self._pending: dict[str, BreakerChanged] = {}  # restored before their breaker was added
        self.day: str | None = None
        for breaker in (self.drawdown, self.operator_pause, self.stale):
            self.add(breaker)

    def add(self, breaker: LatchedBreaker) -> None:
        """Put another breaker in front of the broker (names must be unique)."""
        if breaker.name in self._by_name:
            raise ValueError(f"a breaker named {breaker.name!r} is already in the gate")
        self._breakers.append(breaker)
        self._by_name[breaker.name] = breaker
        pending = self._pending.pop(breaker.name, None)
        if pending is not None:
            breaker.restore(pending.tripped, pending.reason, pending.tripped_at)

    @property
    def breakers(self) -> tuple[LatchedBreaker, ...]:
        return tuple(self._breakers)

    def breaker(self, name: str) -> LatchedBreaker:
        try:
            return self._by_name[name]
        except KeyError:
            known = ", ".join(self._by_name)
            raise KeyError(f"no breaker named {name!r}; known: {known}") from None

    # -- state ---------------------------------------------------------------------------

    def _worst(self) -> LatchedBreaker | None:
        """The tripped breaker imposing the most severe state (first added wins a tie)."""
        worst: LatchedBreaker | None = None
        for b in self._breakers:
            if b.tripped and (worst is None or b.state.severity > worst.state.severity):
                worst = b
        return worst

    @property
    def state(self) -> TradingState:
        worst = self._worst()
        return TradingState.ACTIVE if worst is None else worst.state

    def start_day(self, day: str, starting_equity: float) -> None:
        """A new trading day: drawdown measures from here; the stale clock restarts."""
        self.day = day
        self.drawdown.start_day(starting_equity)
        self.stale.new_session()

    @property
    def day_start_equity(self) -> float | None:
        return self.drawdown.day_start_equity

    # -- inputs that may trip a breaker --------------------------------------------------

    def on_equity(self, equity: float, now: datetime) -> list[BreakerChanged]:
        return self._changed(now, self.drawdown) if self.drawdown.on_equity(equity, now) else []

    def on_bar(self, bar_close_time: datetime) -> None:
        self.stale.on_bar(bar_close_time)

    def check_staleness(self, now: datetime) -> list[BreakerChanged]:
        if not self.watch_staleness:
            return []
        return self._changed(now, self.stale) if self.stale.check(now) else []

    def pause(self, now: datetime, reason: str = "") -> list[BreakerChanged]:
        """The operator's pause: no new entries; exits and flatten still allowed."""
        tripped = self.operator_pause.trip(now, reason)
        return self._changed(now, self.operator_pause) if tripped else []

    def resume(self, now: datetime) -> list[BreakerChanged]:
        return self.reset(now, self.operator_pause.name)

    def reset(self, now: datetime, name: str | None = None) -> list[BreakerChanged]:
        """Re-arm one breaker (or every tripped one): an operator action the engine journals."""
        targets = self._breakers if name is None else [self.breaker(name)]
        events: list[BreakerChanged] = []
        for b in targets:
            if b.tripped:
                b.reset()
                events.extend(self._changed(now, b))
        return events

    def restore(self, events: Iterable[BreakerChanged]) -> None:
        """Put every latch back as the journal last recorded it (last event per name wins)."""
        last: dict[str, BreakerChanged] = {}
        for event in events:
            last[event.name] = event
        for name, event in last.items():
            breaker = self._by_name.get(name)
            if breaker is None:
                self._pending[name] = event
            else:
                breaker.restore(event.tripped, event.reason, event.tripped_at)

    @staticmethod
    def _changed(now: datetime, b: LatchedBreaker) -> list[BreakerChanged]:
        return [
            BreakerChanged(
                ts=now,
                name=b.name,
                tripped=b.tripped,
                state=b.state,
                reason=b.reason,
                tripped_at=b.tripped_at,
            )
        ]

    # -- the per-order check -------------------------------------------------------------

    def check(self, request: OrderRequest, position_qty: float) -> RiskDecision:
        """May this order go to the broker given the current position?"""
        if request.intent is Intent.FLATTEN:
            return _ALLOW  # the operator's flatten works even when HALTED
        worst = self._worst()
        if worst is None:
            return _ALLOW
        if worst.state is TradingState.HALTED:
            return RiskDecision(False, worst.name, f"HALTED: {worst.reason}")
        if worst.state is TradingState.REDUCING and _reduces(request, position_qty):
            return _ALLOW
        return RiskDecision(False, worst.name, f"{worst.reason}: no new entries")

    def statuses(self, now: datetime) -> list[BreakerStatus]:
        return [b.status(now) for b in self._breakers]


def _reduces(request: OrderRequest, position_qty: float) -> bool:
    """True for an order that shrinks the absolute position without crossing zero."""
    qty = request.qty
    if qty <= 0:
        return False
    if request.side is Side.SELL:
        return position_qty > 0 and qty <= position_qty + _QTY_EPS
    return position_qty < 0 and qty <= -position_qty + _QTY_EPS
