"""Breakers pane: the trading state, and each breaker's value against its threshold.

State words (ACTIVE / REDUCING / HALTED, ok / WARN / TRIPPED) carry the meaning; colour only
reinforces it, so the pane reads under NO_COLOR and in 16 colours. The rate-limit row shows
the minute's requests used against the limit and its tier (1 normal, 2 warning, 3 no new
entries); without Alpaca (the demo) it says "n/a".
"""

from __future__ import annotations

from rich.console import Group
from rich.style import Style
from rich.text import Text

from tapewatch.console.format import et
from tapewatch.console.panes.base import Pane, View
from tapewatch.console.panes.header import trading_label
from tapewatch.engine.api.types import BreakerStatus, Mode

GAUGE = 8
LABELS = {"ratelimit": "rate-lim"}  # names wider than the 9-column name cell


def gauge(fraction: float, width: int = GAUGE) -> str:
    filled = max(0, min(width, round(fraction * width)))
    return "▕" + "█" * filled + "░" * (width - filled) + "▏"


def _value(status: BreakerStatus, view: View) -> Text:
    p = view.palette
    if status.name == "pause":
        return Text("paused by operator" if status.tripped else "off", style=p.muted)
    frac = status.value / status.threshold if status.threshold else 0.0
    if status.unit == "req/min":
        tier = 3 if status.tripped else 2 if status.warning else 1
        used = f"{status.value:.0f}/{status.threshold:.0f} req/min"
        return Text(f"{gauge(frac)} {used} · tier {tier}")
    if status.unit == "%":
        return Text(f"{gauge(frac)} {status.value:.2f}/{status.threshold:.2f}%")
    if status.unit == "s":
        if not _market_open(view):
            return Text(f"idle: market closed (limit {status.threshold:.0f}s)", style=p.muted)
        return Text(f"{gauge(frac)} {status.value:.0f}/{status.threshold:.0f}s")
    return Text(f"{gauge(frac)} {status.value:g}/{status.threshold:g} {status.unit}".rstrip())


def _market_open(view: View) -> bool:
    market = view.state.market
    return True if market is None else market.open  # unknown hours: judge as if open


class BreakersPane(Pane):
    TITLE = "Breakers"

    def redraw(self, view: View) -> None:
        p = view.palette
        statuses = view.state.breakers
        lines: list[Text] = [Text.assemble(("trading ", p.muted), trading_label(view))]
        for s in statuses:
            if s.tripped and s.name == "pause":
                flag: tuple[str, Style] = ("ON", p.warn + Style(bold=True))
            elif s.tripped:
                flag = ("TRIP", p.bad)
            elif s.warning:
                flag = ("WARN", p.warn + Style(bold=True))
            else:
                flag = ("ok", p.good)
            name = (f"{LABELS.get(s.name, s.name):<9}", p.strong)
            lines.append(Text.assemble(name, (f"{flag[0]:<5}", flag[1]), _value(s, view)))
            if s.tripped and s.name != "pause":
                since = et(s.tripped_at, "%m-%d %H:%M")
                lines.append(Text(f"  ↳ {s.state.value} since {since}: {s.reason}", style=p.warn))
        if not any("rate" in s.name for s in statuses):
            where = "demo" if view.state.mode is Mode.DEMO else "not wired"
            lines.append(
                Text.assemble((f"{'rate-lim':<9}", p.strong), (f"{'—':<5}n/a ({where})", p.muted))
            )
        lines.extend(_stream_lines(view))
        self.update(Group(*lines))


_STREAM_FLAGS = {"ok": "ok", "connecting": "CONN", "reconnecting": "RETRY", "down": "DOWN"}


def _stream_lines(view: View) -> list[Text]:
    """One line per broker stream (paper/live): its state and, when not ok, why and since."""
    p = view.palette
    lines = []
    for stream in view.state.streams:
        name, health = stream.name, stream.health
        flag = _STREAM_FLAGS.get(health.state, health.state.upper()[:5])
        style = p.good if health.ok else p.bad if health.state == "down" else p.warn
        label = (f"{name + ' ws':<9}", p.strong)
        if health.ok:
            lines.append(Text.assemble(label, (f"{flag:<5}", style)))
            continue
        age = max(0.0, (view.now - health.since).total_seconds())
        why = f"{health.reason} · " if health.reason else ""
        lines.append(Text.assemble(label, (f"{flag:<5}", style), (f"{why}{age:.0f}s", p.muted)))
    return lines
