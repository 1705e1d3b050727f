"""Bars pane: candlesticks of the recent closed bars with the SMA, last price and change."""

from __future__ import annotations

import time

from textual.app import ComposeResult
from textual.containers import Vertical

from tapewatch.console.format import ET, pct, price
from tapewatch.console.panes.base import View
from tapewatch.console.panes.chart import CandleChart
from tapewatch.engine.api.snapshot import Snapshot


def day_change(state: Snapshot) -> tuple[float, float] | None:
    """Last close against the previous session's last close: (change, percent)."""
    bars = state.bars
    if len(bars) < 2:
        return None
    last = bars[-1]
    today = last.ts.astimezone(ET).date()
    for bar in reversed(bars):
        if bar.ts.astimezone(ET).date() != today:
            change = last.close - bar.close
            return change, 100.0 * change / bar.close if bar.close else 0.0
    first = bars[0]
    change = last.close - first.open
    return change, 100.0 * change / first.open if first.open else 0.0


CHART_INTERVAL = 0.25  # seconds: at most 4 chart rebuilds a second, however fast bars come


class BarsPane(Vertical):
    DEFAULT_CSS = """
    BarsPane { height: 1fr; width: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="pane")
        self.border_title = "Bars"
        self.pending = False  # a newer picture is waiting for the rebuild throttle
        self._key: tuple[object, ...] | None = None
        self._built_at = 0.0

    def compose(self) -> ComposeResult:
        yield CandleChart(id="chart")

    def redraw(self, view: View) -> None:
        state = view.state
        p = view.palette
        title = f"{state.symbol} {state.timeframe}"
        if state.bars:
            last = state.bars[-1]
            title += f" · last {price(last.close)}"
            change = day_change(state)
            if change is not None:
                arrow, var = ("▲", "chart-up") if change[0] >= 0 else ("▼", "chart-down")
                title += f" [${var}]{arrow} {change[0]:+.2f} ({pct(change[1])})[/] on the day"
        sma = next((v for v in reversed(state.sma) if v is not None), None)
        if sma is not None:
            title += f" · [$chart-sma]SMA {price(sma)}[/]"
        self.border_title = title
        newest = state.bars[-1] if state.bars else None
        key = (len(state.bars), newest, p.up, p.down, p.sma, view.mono)
        if key == self._key:
            return
        now = time.monotonic()
        restyled = self._key is not None and key[:2] == self._key[:2]
        # New bars are throttled; a theme or colour-mode change is drawn at once.
        if not restyled and now - self._built_at < CHART_INTERVAL:
            self.pending = True  # the app calls again on a later tick
            return
        self._key, self._built_at, self.pending = key, now, False
        self.query_one(CandleChart).set_data(
            state.bars, state.sma, (p.up, p.down, p.sma), mono=view.mono
        )
