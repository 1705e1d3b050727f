"""The header: mode badge, account and endpoint, market hours, equity, connections, trading
state, clock.

The mode is the first thing on screen and LIVE is impossible to miss (the app also gives the
whole screen a red border and title). The last operator action stays beside the clock (e.g.
``flattened + paused 10:55 by alice``), so whoever looks next knows why trading is as it is.
The connections (trading REST, trade stream, data stream: ok, reconnecting for how long, down)
and the last bar's age sit beside the trading state, in the banner's words
(``panes.connections``). Every time shown is the engine clock's.
"""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.style import Style
from rich.table import Table
from rich.text import Text

from tapewatch.console.format import et, money, pct, span
from tapewatch.console.panes.base import Palette, Pane, View
from tapewatch.console.panes.connections import connections_ok, health_text
from tapewatch.engine.api.types import Mode, OperatorAction, TradingState

DONE = {
    "pause": "paused",
    "resume": "resumed",
    "flatten": "flattened",
    "flatten_and_pause": "flattened + paused",
    "reset_breaker": "reset",
    "switch_account": "switched account",
}
"""An operator action's journaled name -> the words the header shows."""


def badge(mode: Mode, palette: Palette) -> Text:
    colour = {
        Mode.LIVE: palette.bad,
        Mode.PAPER: palette.accent,
        Mode.DEMO: palette.good,
    }.get(mode, palette.muted)
    label = " LIVE · REAL MONEY " if mode is Mode.LIVE else f" {mode.value} "
    return Text(label, style=colour + Style(reverse=True, bold=True))


def trading_label(view: View, *, short: bool = False) -> Text:
    state = view.state
    p = view.palette
    if state.trading_state is TradingState.HALTED:
        return Text("■ HALTED" + ("" if short else " · no orders"), style=p.bad)
    warn = p.warn + Style(bold=True)
    if state.paused and state.trading_state is TradingState.REDUCING:
        return Text("‖ PAUSED" + ("" if short else " · exits only"), style=warn)
    if state.trading_state is TradingState.REDUCING:
        return Text("▼ REDUCING" + ("" if short else " · exits only"), style=warn)
    return Text("▶ ACTIVE", style=p.good + Style(bold=True))


def market_label(view: View, *, short: bool = False) -> Text:
    market = view.state.market
    p = view.palette
    if market is None or market.next_change is None:  # no calendar, or beyond its range
        return Text("market hours unknown", style=p.muted)
    word, prep = ("", "") if short else ("market ", "in ")
    until = span(market.next_change - view.now)
    if market.open:
        return Text.assemble((f"{word}OPEN", p.good), (f" · closes {prep}{until}", p.muted))
    return Text.assemble((f"{word}CLOSED", p.warn), (f" · opens {prep}{until}", p.muted))


def action_label(action: OperatorAction, view: View) -> Text:
    """What the operator last did, when (engine clock, ET) and who: one short phrase."""
    p = view.palette
    what = DONE.get(action.action, action.action.replace("_", " "))
    if action.action == "reset_breaker" and action.detail:
        what = f"reset {action.detail}"
    who = action.who.removesuffix("@local")
    return Text.assemble(
        (what, p.accent), (f" {et(action.ts, '%H:%M')}", p.muted), (" by ", p.muted), who
    )


NARROW = 100  # below this width the header drops words, never the mode, state or clock


class HeaderPane(Pane):
    DEFAULT_CSS = """
    HeaderPane { height: 2; width: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="")

    def redraw(self, view: View) -> None:
        width = self.content_size.width
        self.update(self.compose_header(view, short=self.size.width < NARROW, width=width))

    @staticmethod
    def compose_header(
        view: View, *, short: bool = False, width: int | None = None
    ) -> RenderableType:
        """Both lines; ``width`` (cells) lets a narrow header choose what to keep on line 1:
        the mode and the clock always, then a connection in trouble, then the last action."""
        state = view.state
        p = view.palette
        left1 = Text.assemble(
            badge(state.mode, p),
            " ",
            (f"{state.symbol} {state.timeframe}", p.strong),
            (" · " if short else " · account ", p.muted),
            state.account or "—",
            (" · ", p.muted),
            state.endpoint or "—",
        )
        clock = "%m-%d %H:%M:%S ET" if short else "%a %Y-%m-%d %H:%M:%S ET"
        now = Text(et(view.now, clock), style=p.strong)
        right1 = now
        if state.last_action is not None:
            right1 = Text.assemble(action_label(state.last_action, view), "  ", now)
        day = state.day_pnl
        day_pct = 100.0 * day / state.day_start_equity if state.day_start_equity else None
        left2 = Text.assemble(
            market_label(view, short=short),
            ("  eq " if short else "   equity ", p.muted),
            (money(state.equity), p.strong),
            ("  day ", p.muted),
            (f"{money(day, sign=True)} ({pct(day_pct)})", p.up if day >= 0 else p.down),
        )
        health = health_text(view, short=short)
        if short:  # on line 1 the account and endpoint give way to it, not equity
            room = None if width is None else width - len(badge(state.mode, p)) - 1
            if room is None or len(health) + 2 + len(right1) <= room:
                right1 = Text.assemble(health, "  ", right1)
            elif not connections_ok(view.state):  # trouble outranks the last action
                right1 = Text.assemble(health, "  ", now)
        right2 = trading_label(view, short=short)
        if not short:
            right2 = Text.assemble(health, "  ", right2)
        if state.in_flight:
            right2.append(f"  {state.in_flight} in flight", style=p.warn)
        if state.mode is Mode.DEMO and state.speed:
            right2.append(f"  ×{state.speed:g}", style=p.muted)
        return Group(_line(left1, right1), _line(left2, right2))


def _line(left: Text, right: Text) -> Table:
    """One header line: ``right`` whole, ``left`` cut with an ellipsis where space runs out.
    A grid per line, so a long right side (the last action) never narrows the other line."""
    grid = Table.grid(expand=True)
    grid.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
    grid.add_column(justify="right", no_wrap=True)
    grid.add_row(left, right)
    return grid
