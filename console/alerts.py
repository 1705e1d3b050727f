"""Which engine events deserve a toast, and what it says.

The console reads events only for these notifications; panes redraw from state on a timer.
A small budget keeps a burst (say a reconnect storm of notices) from burying the screen.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tapewatch.console.format import qty
from tapewatch.engine.api.types import (
    BreakerChanged,
    Event,
    Notice,
    OrderFilled,
    OrderStatus,
    OrderSubmitted,
    OrderUpdated,
    RiskDenied,
    SessionStopped,
    TradingStateChanged,
)

Severity = str  # "information" | "warning" | "error" (Textual's notify severities)


def alert_for(event: Event) -> tuple[str, Severity] | None:
    """The toast for an event, or None when the panes already say enough."""
    if isinstance(event, BreakerChanged):
        if event.name == "pause":
            return None  # the operator just did it; the header shows it
        if event.tripped:
            return f"Breaker {event.name} tripped → {event.state.value}: {event.reason}", "error"
        return f"Breaker {event.name} reset", "information"
    if isinstance(event, TradingStateChanged):
        severity = "information" if event.new.severity < event.old.severity else "warning"
        return f"Trading {event.old.value} → {event.new.value}", severity
    if isinstance(event, RiskDenied):
        r = event.request
        return f"Denied {r.side.value} {qty(r.qty)} {r.symbol}: {event.reason}", "warning"
    if (
        isinstance(event, OrderSubmitted | OrderUpdated)
        and event.order.status is OrderStatus.REJECTED
    ):
        o = event.order
        return (
            f"Rejected {o.side.value} {qty(o.qty)} {o.symbol}: {o.reason or 'no reason given'}",
            "error",
        )
    if isinstance(event, OrderFilled):
        f = event.fill
        return f"Filled {f.side.value} {qty(f.qty)} {f.symbol} @ {f.price:,.2f}", "information"
    if isinstance(event, Notice) and event.level in ("warning", "error"):
        return event.message, "warning" if event.level == "warning" else "error"
    if isinstance(event, SessionStopped):
        return f"Engine stopped: {event.reason}", "warning"
    return None


@dataclass(slots=True)
class AlertBudget:
    """At most ``per_second`` toasts a second; the rest are counted and summarised."""

    per_second: int = 4
    _window: float = 0.0
    _used: int = 0
    dropped: int = field(default=0)

    def allow(self, now: float) -> bool:
        if now - self._window >= 1.0:
            self._window = now
            self._used = 0
        if self._used < self.per_second:
            self._used += 1
            return True
        self.dropped += 1
        return False
