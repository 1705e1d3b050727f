"""What the activity pane logs: one short line per thing that happened, from events and
the console's own notices.

Signals with the rule values behind them, orders and fills (a closing fill's realized P&L
once the snapshot knows it), breaker and trading-state changes, reconnects (the engine's
notices, and connection states the snapshot reports changing), operator actions and notices.
Each line has a category, so the pane can show one kind at a time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from tapewatch.console.format import money, price, qty
from tapewatch.console.panes.connections import CONNECTIONS, ago, state_word
from tapewatch.console.panes.header import DONE
from tapewatch.engine.api.snapshot import Snapshot
from tapewatch.engine.api.types import (
    BreakerChanged,
    Event,
    Notice,
    OperatorAction,
    OrderFilled,
    OrderStatus,
    OrderSubmitted,
    OrderUpdated,
    RiskDenied,
    SessionStopped,
    SignalEvaluated,
    StreamHealth,
    TradingStateChanged,
)

Kind = Literal["signal", "order", "risk", "link", "operator", "notice"]
Tone = Literal["plain", "good", "warn", "bad"]
FILTERS: tuple[tuple[str, frozenset[str]], ...] = (
    ("all", frozenset({"signal", "order", "risk", "link", "operator", "notice"})),
    ("trades", frozenset({"signal", "order"})),
    ("risk", frozenset({"risk", "operator"})),
    ("system", frozenset({"link", "notice"})),
)
"""The pane's filters, in the order its key cycles through them: name -> kinds shown."""
_ORDER_NEWS = {
    OrderStatus.REJECTED: "rejected",
    OrderStatus.CANCELLED: "cancelled",
    OrderStatus.EXPIRED: "expired",
}


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of the log; ``client_order_id`` ties a fill to its order's realized P&L."""

    ts: datetime
    kind: Kind
    text: str
    tone: Tone = "plain"
    client_order_id: str = ""


def signal_text(event: SignalEvaluated) -> str:
    """'BUY SPY · RSI 27.9 oversold · close 10.50 > SMA 10.20': the rule's values."""
    parts = [f"{event.action.upper()} {event.symbol}"]
    if event.rsi is not None:
        zone = " oversold" if event.rsi_oversold else " overbought" if event.rsi_overbought else ""
        parts.append(f"RSI {event.rsi:.1f}{zone}")
    if event.sma is not None:
        cmp = ">" if event.close_above_sma else "≤"
        parts.append(f"close {price(event.close)} {cmp} SMA {price(event.sma)}")
    else:
        parts.append(f"close {price(event.close)}")
    return " · ".join(parts)


def entries_for(event: Event) -> list[Entry]:
    """The log lines an event makes (none for bars, holds and quiet order updates)."""
    ts = event.ts
    if isinstance(event, SignalEvaluated):
        if event.action == "hold":
            return []
        return [Entry(ts, "signal", signal_text(event), "good")]
    if isinstance(event, RiskDenied):
        r = event.request
        line = f"denied {r.side.value} {qty(r.qty)} {r.symbol} by {event.breaker}: {event.reason}"
        return [Entry(ts, "order", line, "warn")]
    if isinstance(event, OrderFilled):
        f = event.fill
        line = f"filled {f.side.value} {qty(f.qty)} {f.symbol} @ {price(f.price)}"
        return [Entry(ts, "order", line, "good", f.client_order_id)]
    if isinstance(event, OrderSubmitted | OrderUpdated):
        o = event.order
        what = f"{o.side.value} {qty(o.qty)} {o.symbol}"
        if o.status is OrderStatus.REJECTED:
            return [Entry(ts, "order", f"rejected {what}: {o.reason or 'no reason given'}", "bad")]
        if isinstance(event, OrderSubmitted):
            return [Entry(ts, "order", f"sent {what}")]
        news = _ORDER_NEWS.get(o.status)
        return [Entry(ts, "order", f"{news} {what}", "warn")] if news else []
    if isinstance(event, BreakerChanged):
        if event.name == "pause":
            return []  # the operator's pause: its own line says so
        if event.tripped:
            line = f"breaker {event.name} tripped → {event.state.value}: {event.reason}"
            return [Entry(ts, "risk", line, "bad")]
        return [Entry(ts, "risk", f"breaker {event.name} reset", "good")]
    if isinstance(event, TradingStateChanged):
        tone: Tone = "good" if event.new.severity < event.old.severity else "warn"
        why = f": {event.reason}" if event.reason else ""
        return [Entry(ts, "risk", f"trading {event.old.value} → {event.new.value}{why}", tone)]
    if isinstance(event, OperatorAction):
        what = DONE.get(event.action, event.action.replace("_", " "))
        detail = f" {event.detail}" if event.detail and event.action == "reset_breaker" else ""
        who = event.who.removesuffix("@local")
        return [Entry(ts, "operator", f"{what}{detail} by {who}")]
    if isinstance(event, Notice):
        tone = {"warning": "warn", "error": "bad"}.get(event.level, "plain")  # type: ignore[assignment]
        return [Entry(ts, _notice_kind(event.message), event.message, tone)]
    if isinstance(event, SessionStopped):
        return [Entry(ts, "notice", f"engine stopped: {event.reason}", "warn")]
    return []


def _notice_kind(message: str) -> Kind:
    """Stream failures and recoveries are the engine's notices too: file them as links."""
    lowered = message.lower()
    words = ("stream", "reconnect", "websocket", "connection", "trade_updates")
    return "link" if any(w in lowered for w in words) else "notice"


SEED_ORDERS = 20


def seeded(snap: Snapshot) -> list[Entry]:
    """What happened before the console attached, as far as a snapshot tells, oldest first:
    its newest order lines (with why), the last signal and the last operator action."""
    out = []
    for line in reversed(snap.orders[:SEED_ORDERS]):
        what = f"{line.status} {line.side} {qty(line.qty)} {line.symbol}"
        if line.fill_price is not None:
            what += f" @ {price(line.fill_price)}"
        why = " · ".join(part for part in (line.reason, line.why) if part)
        tone: Tone = "warn" if line.status in ("denied", "rejected", "cancelled") else "plain"
        text = f"{what} · {why}" if why else what
        out.append(Entry(line.time, "order", text, tone, line.client_order_id))
    signal = snap.last_signal
    if signal is not None and signal.action != "hold":
        out.append(Entry(signal.ts, "signal", signal_text(signal), "good"))
    if snap.last_action is not None:
        out.extend(entries_for(snap.last_action))
    return sorted(out, key=lambda e: e.ts)


def link_changes(
    before: Snapshot | None, after: Snapshot, now: datetime | None = None
) -> Iterable[Entry]:
    """Connections whose state changed between two snapshots: 'REST reconnecting: why',
    'REST ok again after 40s'. The first snapshot logs only what is not ok."""
    ts = now or after.now
    for name, label in CONNECTIONS:
        new = after.stream(name)
        if new is None:
            continue
        old = before.stream(name) if before is not None else None
        if old is not None and old.state == new.state:
            continue
        if old is None and new.ok:
            continue
        yield _link_entry(label, old, new, ts)


def _link_entry(label: str, old: StreamHealth | None, new: StreamHealth, ts: datetime) -> Entry:
    if new.ok:
        after = f" after {ago((new.since - old.since).total_seconds())}" if old else ""
        return Entry(ts, "link", f"{label} ok again{after}", "good")
    why = f": {new.reason.splitlines()[0]}" if new.reason else ""
    tone: Tone = "bad" if new.state == "down" else "warn"
    return Entry(ts, "link", f"{label} {state_word(new)}{why}", tone)


def realized(pnl: float) -> str:
    return f"realized {money(pnl, sign=True)}"
