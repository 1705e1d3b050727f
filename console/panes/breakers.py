"""Breakers pane: the trading state, and each breaker's value against its threshold.

State words (ACTIVE / REDUCING / HALTED, ok / WARN / TRIPPED) carry the meaning; colour only
reinforces it, so the pane reads under NO_COLOR and in 16 colours. The trading state is in the
title; each breaker is one line at any width (the gauge shrinks, then the value's words go).
The rate-limit row shows the minute's requests used against the limit and its tier (1 normal,
2 warning, 3 no new entries); without Alpaca (the demo) it says "n/a".
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
NAME, FLAG = 9, 5  # the name and flag cells every row starts with
LABELS = {"ratelimit": "rate-lim"}  # names wider than the 9-column name cell


def gauge(fraction: float, width: int = GAUGE) -> str:
    filled = max(0, min(width, round(fraction * width)))
    return "▕" + "█" * filled + "░" * (width - filled) + "▏"


VALUE = 10  # the room kept for a gauge's value ("0.00/5.00%")


def gauge_cells(room: int) -> int:
    """One gauge width for the whole pane: 8 cells when there is room, fewer, or none (0)."""
    cells = min(GAUGE, room - VALUE - 3)
    return cells if cells >= 3 else 0


def _fit(room: int, *choices: str, frac: float | None = None) -> str:
    """The widest of ``choices`` (longest first) that fits ``room``, after the gauge if it fits
    too: at 100 columns a row is still one line."""
    cells = gauge_cells(room) if frac is not None else 0
    if cells and frac is not None:
        for choice in choices:
            if len(choice) + cells + 3 <= room:
                return f"{gauge(frac, cells)} {choice}"
    return next((c for c in choices if len(c) <= room), choices[-1])


def _value(status: BreakerStatus, view: View, room: int) -> Text:
    p = view.palette
    if status.name == "pause":
        if not status.tripped:
            return Text("off", style=p.muted)
        return Text(_fit(room, "paused by operator", "by operator"), style=p.muted)
    frac = status.value / status.threshold if status.threshold else 0.0
    if status.unit == "req/min":
        tier = 3 if status.tripped else 2 if status.warning else 1
        used = f"{status.value:.0f}/{status.threshold:.0f}"
        return Text(_fit(room, f"{used} req/min · tier {tier}", f"{used} req/min", used, frac=frac))
    if status.unit == "%":
        return Text(_fit(room, f"{status.value:.2f}/{status.threshold:.2f}%", frac=frac))
    if status.unit == "s":
        if not _market_open(view):
            limit = f"{status.threshold:.0f}s"
            return Text(
                _fit(room, f"idle: market closed (limit {limit})", "idle: market closed", "idle"),
                style=p.muted,
            )
        return Text(_fit(room, f"{status.value:.0f}/{status.threshold:.0f}s", frac=frac))
    value = f"{status.value:g}/{status.threshold:g} {status.unit}".rstrip()
    return Text(_fit(room, value, frac=frac))


def _market_open(view: View) -> bool:
    market = view.state.market
    return True if market is None else market.open  # unknown hours: judge as if open


def _row(name: str, flag: tuple[str, Style], value: Text, view: View) -> Text:
    """One breaker on one line: cropped with an ellipsis rather than wrapped."""
    p = view.palette
    row = Text.assemble((f"{name:<{NAME}}", p.strong), (f"{flag[0]:<{FLAG}}", flag[1]), value)
    row.no_wrap, row.overflow = True, "ellipsis"
    return row


class BreakersPane(Pane):
    TITLE = "Breakers"

    def redraw(self, view: View) -> None:
        p = view.palette
        statuses = view.state.breakers
        room = max(10, (self.content_size.width or 40) - NAME - FLAG)
        # The trading state heads the pane in its title: one more line for the breakers.
        self.border_title = Text.assemble("Breakers · ", trading_label(view, short=True))
        lines: list[Text] = []
        for s in statuses:
            if s.tripped and s.name == "pause":
                flag: tuple[str, Style] = ("ON", p.warn + Style(bold=True))
            elif s.tripped:
                flag = ("TRIP", p.bad)
            elif s.warning:
                flag = ("WARN", p.warn + Style(bold=True))
            else:
                flag = ("ok", p.good)
            lines.append(_row(LABELS.get(s.name, s.name), flag, _value(s, view, room), view))
            if s.tripped and s.name != "pause":
                since = et(s.tripped_at, "%m-%d %H:%M")
                lines.append(Text(f"  ↳ {s.state.value} since {since}: {s.reason}", style=p.warn))
        if not any("rate" in s.name for s in statuses):
            where = "demo" if view.state.mode is Mode.DEMO else "not wired"
            lines.append(_row("rate-lim", ("—", p.muted), Text(f"n/a ({where})", p.muted), view))
        lines.extend(_stream_lines(view))
        self.update(Group(*lines))


_STREAM_FLAGS = {"ok": "ok", "connecting": "CONN", "reconnecting": "RETRY", "down": "DOWN"}


def _stream_lines(view: View) -> list[Text]:
    """The broker streams (paper/live): one line while all are ok; else one per stream, with
    why and since when not ok (that line may wrap: the reason matters more than the layout)."""
    p = view.palette
    streams = view.state.streams
    if streams and all(s.health.ok for s in streams):
        names = ", ".join(s.name for s in streams)
        return [_row("streams", ("ok", p.good), Text(names, style=p.muted), view)]
    lines = []
    for stream in streams:
        name, health = stream.name, stream.health
        flag = _STREAM_FLAGS.get(health.state, health.state.upper()[:5])
        style = p.good if health.ok else p.bad if health.state == "down" else p.warn
        label = (f"{name + ' ws':<{NAME}}", p.strong)
        if health.ok:
            lines.append(Text.assemble(label, (f"{flag:<{FLAG}}", style)))
            continue
        age = max(0.0, (view.now - health.since).total_seconds())
        why = f"{health.reason} · " if health.reason else ""
        lines.append(
            Text.assemble(label, (f"{flag:<{FLAG}}", style), (f"{why}{age:.0f}s", p.muted))
        )
    return lines
