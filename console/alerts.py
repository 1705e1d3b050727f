"""Which engine events deserve a toast, and what it says.

Every event also goes to the activity pane; a toast is for what a person must see now. So an
operator action raises one toast, its command's: the trading-state change and the breaker
reset it causes are in the header and the activity pane, never a second and third toast (the
header's PAUSED beside a toast saying REDUCING). A breaker's trip is one toast (its state
change is not another), and the fills of a flatten are the flatten watch's to report. A small
budget keeps a burst (say a reconnect storm of notices) from burying the screen.
"""

from __future__ import annotations

from collections.abc import Container
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


def alert_for(event: Event, quiet: Container[str] = ()) -> tuple[str, Severity] | None:
    """The toast for an event, or None when the header, panes or another toast say enough.

    ``quiet``: client order ids whose fills are someone else's to report (a flatten's)."""
    if isinstance(event, BreakerChanged):
        if event.name == "pause" or not event.tripped:
            return None  # the operator's pause or reset: its command's toast says so
        return f"Breaker {event.name} tripped → {event.state.value}: {event.reason}", "error"
    if isinstance(event, TradingStateChanged):
        return None  # the header shows the state; a trip or a command already said why
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
        if f.client_order_id in quiet:
            return None
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
