"""Bars pane: candlesticks of the recent closed bars with the SMA, last price and change; the
fills marked on the candles and the open position's average entry price as a dotted line."""

from __future__ import annotations

import time

from textual.app import ComposeResult
from textual.containers import Vertical

from tapewatch.console.format import ET, pct, price
from tapewatch.console.panes.base import View
from tapewatch.console.panes.chart import CandleChart, Mark
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


def fill_marks(state: Snapshot) -> tuple[Mark, ...]:
    """The chart's fills: each order of this symbol that (partly) filled, at its average price
    (a cancelled order that filled in part is marked too: those shares did trade).

    An order line's time is when the order was sent, and the chart places it in the bar whose
    span holds that time: a simulated market order fills at the next bar's open, which is the
    bar that opens at the moment the order went out; a broker's fill follows within seconds.
    """
    return tuple(
        Mark(row.time, row.side, row.fill_price)
        for row in reversed(state.orders)
        if row.fill_price is not None and row.symbol == state.symbol
    )


def average_entry(state: Snapshot) -> float | None:
    """The open position's average entry price, None when flat."""
    position = state.position(state.symbol)
    if position is None or abs(position.qty) <= 1e-12:
        return None
    return position.avg_entry_price


CHART_INTERVAL = 0.25  # seconds: at most 4 chart rebuilds a second, however fast bars come


class BarsPane(Vertical):
    DEFAULT_CSS = """
    BarsPane { height: 1fr; width: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="pane")
        self.border_title = self._title = "Bars"
        self._throttled = False  # a newer picture is waiting for the rebuild throttle
        self._chart = CandleChart(id="chart")
        self._key: tuple[object, ...] | None = None
        self._built_at = 0.0

    def compose(self) -> ComposeResult:
        yield self._chart

    @property
    def pending(self) -> bool:
        """A newer picture waits for the rebuild throttle, or the chart is still drawing it."""
        return self._throttled or self._chart.building  # (kept: no query while unmounting)

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
        if title != self._title:  # a title repaints the pane (and the chart) even unchanged
            self._title = title
            self.border_title = title
        newest = state.bars[-1] if state.bars else None
        marks, entry = fill_marks(state), average_entry(state)
        key = (len(state.bars), newest, marks, entry, p.up, p.down, p.sma, p.warn, view.mono)
        if key == self._key:
            return
        now = time.monotonic()
        restyled = self._key is not None and key[:4] == self._key[:4]
        # New bars are throttled; a theme or colour-mode change is drawn at once.
        if not restyled and now - self._built_at < CHART_INTERVAL:
            self._throttled = True  # the app calls again on a later frame
            return
        self._key, self._built_at, self._throttled = key, now, False
        self._chart.set_data(
            state.bars,
            state.sma,
            (p.up, p.down, p.sma),
            mono=view.mono,
            marks=marks,
            entry=entry,
            mark_styles=(p.up, p.down, p.warn),
        )
