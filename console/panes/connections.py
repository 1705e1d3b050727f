"""The words for the connections and the data: one source for the header and the banner.

Trading REST, the trade-updates stream and the market-data stream are each ok, reconnecting
(for how long, why) or down; the last bar has a close time and an age. The header says it in
a few cells, the banner in a sentence, with the same words, so a glance at either agrees.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rich.text import Text

from tapewatch.console.format import et
from tapewatch.console.panes.base import View
from tapewatch.engine.api.snapshot import Snapshot
from tapewatch.engine.api.types import StreamHealth, TradingState

CONNECTIONS = (("rest", "REST"), ("trades", "trades"), ("data", "data"))
"""Snapshot name -> the label shown, in the order shown."""
GRACE = 5.0
"""Seconds a connection may be reconnecting before the banner calls it down (a blip of a
reconnect is the header's business; the banner is for an outage, shown within 10 s)."""
REASON_CELLS = 48  # a failure's reason is cut to this in the banner


def ago(seconds: float) -> str:
    """An elapsed time in one short token: '42s', '3m05s', '2h05m'."""
    total = max(0, int(seconds))
    if total < 60:
        return f"{total}s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _for(health: StreamHealth, now: datetime) -> float:
    return max(0.0, (now - health.since).total_seconds())


def state_word(health: StreamHealth) -> str:
    return {"reconnecting": "reconnecting", "down": "DOWN", "connecting": "connecting"}.get(
        health.state, health.state
    )


def _short_reason(reason: str | None, cells: int) -> str:
    if not reason:
        return ""
    line = reason.splitlines()[0].strip()
    return line if len(line) <= cells else line[: cells - 1] + "…"


def health_text(view: View, *, short: bool = False) -> Text:
    """The header's connection cells: 'REST ok · trades ok · data ok · bar 10:55 42s ago'.

    All ok and short: 'conn ok'. Not ok: the state and for how long ('trades reconnecting
    35s'). A simulated session has no connections: only the bar."""
    state, p = view.state, view.palette
    out = Text()
    watched = [(label, h) for name, label in CONNECTIONS if (h := state.stream(name)) is not None]
    if watched and short and all(h.ok for _, h in watched):
        out.append("conn ", p.muted)
        out.append("ok", p.good)
    else:
        for label, health in watched:
            if out:
                out.append(" · ", p.muted)
            out.append(f"{label} ", p.muted)
            if health.ok:
                out.append("ok", p.good)
                continue
            style = p.bad if health.state == "down" else p.warn
            out.append(state_word(health), style)
            if health.state in ("reconnecting", "down"):
                out.append(f" {ago(_for(health, view.now))}", style)
    if state.last_bar_at is not None:
        if out:
            out.append(" · ", p.muted)
        age = ago((view.now - state.last_bar_at).total_seconds())
        out.append("bar " if short else f"bar {et(state.last_bar_at, '%H:%M')} ", p.muted)
        out.append(age if short else f"{age} ago", p.muted)
    return out


def connections_ok(snap: Snapshot) -> bool:
    """Every watched connection is ok (true with none: a simulated session)."""
    return all(h is None or h.ok for h in (snap.stream(name) for name, _ in CONNECTIONS))


@dataclass(frozen=True, slots=True)
class Outage:
    """One thing the banner must say: what, and in what words."""

    what: str  # "halted", "broker", "data"
    message: str


def outages(snap: Snapshot, now: datetime) -> list[Outage]:
    """What is wrong enough for the banner now: HALTED, the broker (REST or trade stream)
    down, the market data down; 'down' includes reconnecting for longer than ``GRACE``."""
    found = []
    if snap.trading_state is TradingState.HALTED:
        why = "; ".join(
            f"{b.name}: {b.reason}" if b.reason else b.name
            for b in snap.breakers
            if b.tripped and b.state is TradingState.HALTED
        )
        found.append(Outage("halted", "■ HALTED · no orders" + (f" · {why}" if why else "")))
    broker = [
        (label, h)
        for name, label in CONNECTIONS[:2]
        if (h := snap.stream(name)) is not None and _is_down(h, now)
    ]
    if broker:
        parts = ", ".join(_described(label, h, now) for label, h in broker)
        found.append(Outage("broker", f"BROKER UNREACHABLE · {parts} · orders cannot be sent"))
    data = snap.stream("data")
    if data is not None and _is_down(data, now):
        last = snap.last_bar_at
        since = f" · last bar {et(last, '%H:%M')} ET" if last is not None else ""
        found.append(Outage("data", f"NO MARKET DATA · {_described('data', data, now)}{since}"))
    return found


def _is_down(health: StreamHealth, now: datetime) -> bool:
    if health.state == "down":
        return True
    return health.state == "reconnecting" and _for(health, now) >= GRACE


def _described(label: str, health: StreamHealth, now: datetime) -> str:
    why = _short_reason(health.reason, REASON_CELLS)
    return f"{label} {state_word(health)} {ago(_for(health, now))}" + (f" ({why})" if why else "")
