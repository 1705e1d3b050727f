"""A heat map of the objective over two parameters: as text (plotext) and as data for HTML.

Each square is the best score over the other parameters at that pair of values, so a ridge
that holds whatever the rest shows as a stripe. A pair no valid cell reached is blank.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from tapewatch.engine.research.space import Value
from tapewatch.engine.research.sweep import CellRow

SHADES = ".:-=+*#%@"


@dataclass(frozen=True, slots=True)
class Heat:
    x: str
    y: str
    xs: tuple[Value, ...]
    ys: tuple[Value, ...]
    values: tuple[tuple[float, ...], ...]  # values[row for ys][column for xs]; NaN: no cell


def _sort_key(value: Value) -> tuple[int, float, str]:
    return (1, 0.0, value) if isinstance(value, str) else (0, float(value), "")


def heat(rows: Sequence[CellRow], x: str, y: str) -> Heat:
    xs = tuple(sorted({r.params[x] for r in rows if x in r.params}, key=_sort_key))
    ys = tuple(sorted({r.params[y] for r in rows if y in r.params}, key=_sort_key))
    best: dict[tuple[Value, Value], float] = {}
    for r in rows:
        if x in r.params and y in r.params and math.isfinite(r.score):
            at = (r.params[x], r.params[y])
            best[at] = max(best.get(at, -math.inf), r.score)
    values = tuple(tuple(best.get((vx, vy), math.nan) for vx in xs) for vy in ys)
    return Heat(x, y, xs, ys, values)


def _label(value: Value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def text_heatmap(h: Heat, *, color: bool, width: int = 100) -> str:
    """The map as a table of scores with a shade per square; in colour, plotext's heat map of
    the same matrix above it."""
    finite = [v for row in h.values for v in row if math.isfinite(v)]
    low, high = (min(finite), max(finite)) if finite else (0.0, 0.0)
    labels = [_label(v) for v in h.xs]
    cell = max(6, *(len(s) for s in labels)) + 1
    ylabels = [_label(v) for v in h.ys]
    left = max(len(h.y), *(len(s) for s in ylabels))
    lines = [f"{h.y} (rows) x {h.x} (columns), best score per square"]
    lines.append(" " * left + " " + "".join(s.rjust(cell) for s in labels))
    for label, row in zip(ylabels, h.values, strict=True):
        parts = []
        for v in row:
            if not math.isfinite(v):
                parts.append("".rjust(cell))
                continue
            share = (v - low) / (high - low) if high > low else 1.0
            shade = SHADES[min(len(SHADES) - 1, int(share * (len(SHADES) - 1) + 0.5))]
            parts.append(f"{v:.2f}{shade}".rjust(cell))
        lines.append(label.rjust(left) + " " + "".join(parts))
    table = "\n".join(lines)
    if not color or not finite:
        return table
    return _plotext(h, low, high, width) + "\n" + table


def _plotext(h: Heat, low: float, high: float, width: int) -> str:
    import plotext

    terminal = plotext.terminal
    limits = list(getattr(terminal, "_limit", (True, True)))
    terminal.limit(False, False)
    try:
        fig = plotext.figure
        fig.clear()
        cols = max(1, len(h.xs))
        fig.plot_size(min(width, 8 * cols + 12), 2 * max(1, len(h.ys)) + 6)
        span = high - low if high > low else 1.0
        rgb = [
            [_colour((v - low) / span) if math.isfinite(v) else (0, 0, 0) for v in row]
            for row in h.values
        ]
        fig.draw(fig.heatmap(rgb))
        fig.ruler("x").ticks(list(range(cols)), labels=[_label(v) for v in h.xs])
        fig.ruler("y").ticks(list(range(len(h.ys)))[::-1], labels=[_label(v) for v in h.ys])
        fig.title(f"{h.y} (rows) x {h.x} (columns)")
        return str(fig.build().string(colorless=False))
    finally:
        terminal.limit(*limits)


def _colour(share: float) -> tuple[int, int, int]:
    """Low scores red, high green, through yellow (readable on dark and light terminals)."""
    share = min(1.0, max(0.0, share))
    if share < 0.5:
        return (215, int(48 + share * 2 * 170), 39)
    return (int(215 - (share - 0.5) * 2 * 189), 190, 80)
