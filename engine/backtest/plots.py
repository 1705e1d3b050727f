"""The equity curve and drawdown as a terminal picture, drawn by plotext into a string.

Compared runs share the bars, so they share the x axis (bar number, labelled with dates) and
are overlaid, one line each, named in the legend by their thresholds. A million bars are
thinned to their extremes per column first: a terminal has a few hundred columns, and plotext
would spend seconds placing points no one can see.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tapewatch.engine.backtest.curves import Curves, thin_extremes

WIDTH = 100
HEIGHT = 30
EQUITY_TITLE = "Equity ($)"
DRAWDOWN_TITLE = "Drawdown (%)"
MARKERS = ("+", "x", "o", "*", "#", "@")


def date_ticks(ts_ns: np.ndarray, count: int) -> tuple[list[int], list[str]]:
    """``count`` evenly spread bar positions and their UTC dates (YYYY-MM-DD)."""
    n = len(ts_ns)
    if n == 0:
        return [], []
    positions = sorted({round(float(p)) for p in np.linspace(0, n - 1, max(2, count))})
    days = ts_ns[positions].astype("datetime64[ns]").astype("datetime64[D]")
    return positions, [str(d) for d in days]


def terminal_plot(
    runs: Sequence[Curves], *, width: int = WIDTH, height: int = HEIGHT, color: bool = False
) -> str:
    """Two stacked charts (equity, drawdown) of every run, ``width`` × ``height`` cells."""
    if not runs:
        return ""
    import plotext

    terminal = plotext.terminal
    limits = list(getattr(terminal, "_limit", (True, True)))
    terminal.limit(False, False)  # the size asked, not the (absent) terminal's: text is text
    try:
        return _draw(plotext.figure, runs, width, height, color)
    finally:
        terminal.limit(*limits)


def _draw(fig: Any, runs: Sequence[Curves], width: int, height: int, color: bool) -> str:
    fig.clear()
    fig.plot_size(width, height)
    fig.subplots(2, 1)
    positions, labels = date_ticks(runs[0].ts_ns, max(2, width // 24))
    panels = ((EQUITY_TITLE, _equity, _dollars), (DRAWDOWN_TITLE, _drawdown_pct, _pct))
    for row, (title, pick, fmt) in enumerate(panels, start=1):
        panel = fig.subplot(row, 1)
        series = [pick(run) for run in runs]
        for i, (run, values) in enumerate(zip(runs, series, strict=True)):
            keep = thin_extremes(values, 4 * width)
            # Without colour the runs differ by their marker: braille dots, then plain characters.
            marker = "braille" if color or i == 0 else MARKERS[(i - 1) % len(MARKERS)]
            line = panel.signal(keep.tolist(), values[keep].tolist(), marker=marker)
            line.lines()
            if len(runs) > 1 and row == 1:  # one legend, on the equity chart
                line.label(run.label)
            panel.draw(line)
        panel.title(title)
        panel.ruler("x").ticks(positions, labels=labels)
        low = min(float(v.min()) for v in series)
        high = max(float(v.max()) for v in series)
        if high > low:
            ticks = np.linspace(low, high, 5).tolist()
            panel.ruler("y").ticks(ticks, labels=[fmt(t, high - low) for t in ticks])
    return str(fig.build().string(colorless=not color))


def _dollars(value: float, span: float) -> str:
    return f"${value:,.0f}" if span >= 50 else f"${value:,.2f}"


def _pct(value: float, span: float) -> str:
    return f"{value:.1f}%" if span >= 5 else f"{value:.2f}%" if span >= 0.05 else f"{value:.3f}%"


def _equity(run: Curves) -> np.ndarray:
    return run.equity


def _drawdown_pct(run: Curves) -> np.ndarray:
    return run.drawdown * 100.0
