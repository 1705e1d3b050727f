"""One self-contained HTML file per backtest: equity, drawdown, trades on the price, months.

Nothing is fetched when it opens: the charts are inline SVG written here, the styles an inline
``<style>``, no script and no font or CDN link, so the file reads the same offline, attached to
a mail or years later. Compared runs are overlaid, one series each (``data-run`` names it).
Lines are thinned to their extremes per pixel column, so a million-bar run is a small file.
Monthly returns are those of ``curves.monthly_returns``: compounded, they are the report's
total return (each cell also carries the exact value in ``data-value``).
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from tapewatch.engine.backtest.curves import (
    Curves,
    MonthReturn,
    fill_bar,
    monthly_returns,
    thin_extremes,
)
from tapewatch.engine.backtest.plots import date_ticks
from tapewatch.engine.backtest.stats import Report
from tapewatch.engine.market.bars import BarArrays
from tapewatch.engine.model.types import Side, Timeframe

W, H = 960, 280
LEFT, RIGHT, TOP, BOTTOM = 84, 16, 30, 36
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")
PRICE = "#555555"
BUY, SELL = "#1a9850", "#d73027"
STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse}td,th{padding:3px 10px;text-align:right;border-bottom:1px solid #ddd}
th:first-child,td:first-child{text-align:left}
svg{background:#fafafa;border:1px solid #ddd}
.axis{stroke:#999;stroke-width:1}.grid{stroke:#e4e4e4;stroke-width:1}
.tick{font-size:11px;fill:#555}.legend{font-size:12px}
.series{fill:none;stroke-width:1.5}
.pos{color:#1a7f37}.neg{color:#b42318}
"""


def _svg_text(x: float, y: float, text: str, cls: str, anchor: str = "middle") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" class="{cls}" text-anchor="{anchor}">'
        f"{html.escape(text)}</text>"
    )


class _Frame:
    """Maps bar positions and values onto one SVG chart's pixels."""

    def __init__(self, count: int, low: float, high: float) -> None:
        if not high > low:
            low, high = low - 1.0, high + 1.0
        pad = (high - low) * 0.05
        self.low, self.high = low - pad, high + pad
        self.count = max(1, count - 1)

    def x(self, position: float) -> float:
        return LEFT + (W - LEFT - RIGHT) * position / self.count

    def y(self, value: float) -> float:
        return TOP + (H - TOP - BOTTOM) * (self.high - value) / (self.high - self.low)


def _decimals(span: float) -> int:
    """Enough decimals for five ticks over ``span`` to read apart."""
    step = span / 4
    return max(0, min(6, -math.floor(math.log10(step)))) if step > 0 else 2


def _axes(frame: _Frame, ts_ns: np.ndarray, fmt: Callable[[float, int], str]) -> list[str]:
    parts = [
        f'<line class="axis" x1="{LEFT}" y1="{H - BOTTOM}" x2="{W - RIGHT}" y2="{H - BOTTOM}"/>',
        f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{H - BOTTOM}"/>',
    ]
    decimals = _decimals(frame.high - frame.low)
    for value in np.linspace(frame.low, frame.high, 5):
        y = frame.y(float(value))
        parts.append(f'<line class="grid" x1="{LEFT}" y1="{y:.1f}" x2="{W - RIGHT}" y2="{y:.1f}"/>')
        parts.append(_svg_text(LEFT - 6, y + 4, fmt(float(value), decimals), "tick", "end"))
    positions, labels = date_ticks(ts_ns, 6)
    for i, (position, label) in enumerate(zip(positions, labels, strict=True)):
        anchor = "start" if i == 0 else "end" if i == len(labels) - 1 else "middle"
        parts.append(_svg_text(frame.x(position), H - BOTTOM + 18, label, "tick", anchor))
    return parts


def _polyline(frame: _Frame, values: np.ndarray, colour: str, cls: str, run: str) -> str:
    keep = thin_extremes(values, 2 * (W - LEFT - RIGHT))
    points = " ".join(f"{frame.x(int(i)):.1f},{frame.y(float(values[i])):.2f}" for i in keep)
    return (
        f'<polyline class="series {cls}" data-run="{html.escape(run)}" stroke="{colour}" '
        f'points="{points}"/>'
    )


def _legend(runs: Sequence[Curves]) -> list[str]:
    parts = []
    for i, run in enumerate(runs):
        x = LEFT + 10 + 110 * i
        colour = COLOURS[i % len(COLOURS)]
        parts.append(f'<rect x="{x}" y="{TOP - 16}" width="12" height="3" fill="{colour}"/>')
        parts.append(_svg_text(x + 16, TOP - 10, run.label, "legend", "start"))
    return parts


def _svg(body: list[str], title: str) -> str:
    inner = "".join(body)
    return (
        f'<svg role="img" viewBox="0 0 {W} {H}" '
        f'width="{W}" height="{H}"><title>{html.escape(title)}</title>{inner}</svg>'
    )


def _line_chart(
    runs: Sequence[Curves],
    pick: Callable[[Curves], np.ndarray],
    cls: str,
    title: str,
    fmt: Callable[[float, int], str],
) -> str:
    series = [pick(run) for run in runs]
    low = min(float(s.min()) for s in series)
    high = max(float(s.max()) for s in series)
    frame = _Frame(len(runs[0].ts_ns), low, high)
    body = _axes(frame, runs[0].ts_ns, fmt)
    for i, (run, values) in enumerate(zip(runs, series, strict=True)):
        body.append(_polyline(frame, values, COLOURS[i % len(COLOURS)], cls, run.label))
    body.extend(_legend(runs))
    return _svg(body, title)


def _price_chart(bars: BarArrays, runs: Sequence[Curves], timeframe_seconds: int) -> str:
    close = bars.close
    frame = _Frame(len(close), float(bars.low.min()), float(bars.high.max()))
    body = _axes(frame, bars.ts_ns, lambda v, d: f"{v:,.{max(d, 2)}f}")
    body.append(_polyline(frame, close, PRICE, "price", bars.symbol))
    for i, run in enumerate(runs):
        colour = COLOURS[i % len(COLOURS)]
        for fill in run.fills:
            at = fill_bar(bars, fill, timeframe_seconds)
            x, y = frame.x(at), frame.y(fill.price)
            buy = fill.side is Side.BUY
            tip = (
                f"{run.label}: {'buy' if buy else 'sell'} {fill.qty:g} @ {fill.price:,.2f} "
                f"{fill.ts.isoformat()}"
            )
            shape = (
                f"{x:.1f},{y + 6:.1f} {x - 5:.1f},{y + 13:.1f} {x + 5:.1f},{y + 13:.1f}"
                if buy
                else f"{x:.1f},{y - 6:.1f} {x - 5:.1f},{y - 13:.1f} {x + 5:.1f},{y - 13:.1f}"
            )
            body.append(
                f'<polygon class="trade {"buy" if buy else "sell"}" '
                f'data-run="{html.escape(run.label)}" points="{shape}" '
                f'fill="{BUY if buy else SELL}" stroke="{colour}">'
                f"<title>{html.escape(tip)}</title></polygon>"
            )
    if len(runs) > 1:
        body.extend(_legend(runs))
    return _svg(body, f"{bars.symbol} close and trades")


def _percent(value: float) -> str:
    return f"{value:+.2%}"


def _months_table(runs: Sequence[Curves]) -> str:
    per_run = [{m.month: m for m in monthly_returns(run)} for run in runs]
    months = sorted({month for table in per_run for month in table})
    head = "".join(f"<th>{html.escape(run.label)}</th>" for run in runs)
    rows = []
    for month in months:
        cells = []
        for run, table in zip(runs, per_run, strict=True):
            entry: MonthReturn | None = table.get(month)
            if entry is None:
                cells.append("<td></td>")
                continue
            cls = "pos" if entry.value > 0 else "neg" if entry.value < 0 else ""
            cells.append(
                f'<td class="month {cls}" data-run="{html.escape(run.label)}" '
                f'data-month="{month}" data-value="{entry.value!r}">{_percent(entry.value)}</td>'
            )
        rows.append(f"<tr><td>{month}</td>{''.join(cells)}</tr>")
    return (
        f'<table class="months"><thead><tr><th>Month</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _summary(reports: Sequence[Report], runs: Sequence[Curves]) -> str:
    rows = (
        ("Start equity", lambda r: f"${r.start_equity:,.2f}"),
        ("End equity", lambda r: f"${r.end_equity:,.2f}"),
        ("Total return", lambda r: _percent(r.total_return)),
        ("Max drawdown", lambda r: f"{r.max_drawdown:.2%}"),
        ("Sharpe (ann.)", lambda r: f"{r.sharpe:.2f}"),
        ("Trades", lambda r: f"{r.trades:,}"),
        ("Win rate", lambda r: f"{r.win_rate:.1%}"),
    )
    head = "".join(f"<th>{html.escape(run.label)}</th>" for run in runs)
    body = "".join(
        f"<tr><td>{label}</td>{''.join(f'<td>{html.escape(fmt(r))}</td>' for r in reports)}</tr>"
        for label, fmt in rows
    )
    return f'<table class="summary"><thead><tr><th></th>{head}</tr></thead>{body}</table>'


def html_report(bars: BarArrays, reports: Sequence[Report], runs: Sequence[Curves]) -> str:
    """The whole page as one string (``reports`` and ``runs`` in the same order)."""
    if not runs or len(reports) != len(runs):
        raise ValueError("html_report needs one report per run, and at least one")
    first = reports[0]
    seconds = Timeframe.parse(first.timeframe).seconds
    title = f"Backtest {first.symbol} {first.timeframe}, {first.start[:10]} to {first.end[:10]}"
    equity = _line_chart(runs, lambda r: r.equity, "equity", "Equity", lambda v, d: f"${v:,.{d}f}")
    drawdown = _line_chart(
        runs, lambda r: r.drawdown * 100.0, "drawdown", "Drawdown", lambda v, d: f"{v:.{d}f}%"
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        f"<p>Sharpe annualised as {html.escape(first.annualised_as)}.</p>"
        f"{_summary(reports, runs)}"
        f"<h2>Equity</h2>{equity}"
        f"<h2>Drawdown</h2>{drawdown}"
        f"<h2>Price and trades</h2>{_price_chart(bars, runs, seconds)}"
        f"<h2>Monthly returns</h2>{_months_table(runs)}"
        "</body></html>\n"
    )


def write_html(path: Path, text: str) -> None:
    Path(path).write_text(text, encoding="utf-8")
