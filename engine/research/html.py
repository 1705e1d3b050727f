"""The sweep as one self-contained HTML page: the heat map, the ranked cells, the walk-forward.

Like the backtest's page (engine.backtest.html_report): inline SVG and an inline style, no
script, font or link to fetch, so it reads the same offline or years later. Each square of
the heat map carries its exact score in ``data-value``.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

from tapewatch.engine.backtest.html_report import STYLE, write_html
from tapewatch.engine.research.heatmap import Heat, _colour, _label
from tapewatch.engine.research.sweep import CellRow, SweepResult

__all__ = ["sweep_html", "write_html"]

CELL = 56
ROWS_SHOWN = 50


def _heat_svg(h: Heat) -> str:
    finite = [v for row in h.values for v in row if math.isfinite(v)]
    low, high = (min(finite), max(finite)) if finite else (0.0, 1.0)
    span = high - low if high > low else 1.0
    left, top = 90, 30
    width = left + CELL * len(h.xs) + 20
    height = top + CELL * len(h.ys) + 50
    out = [f'<svg width="{width}" height="{height}" role="img" aria-label="heat map">']
    for r, (yv, row) in enumerate(zip(h.ys, h.values, strict=True)):
        y = top + r * CELL
        out.append(
            f'<text x="{left - 6}" y="{y + CELL / 2 + 4}" class="tick" text-anchor="end">'
            f"{html.escape(_label(yv))}</text>"
        )
        for c, v in enumerate(row):
            x = left + c * CELL
            if not math.isfinite(v):
                out.append(
                    f'<rect x="{x}" y="{y}" width="{CELL}" height="{CELL}" fill="#eee" '
                    'data-value="none"/>'
                )
                continue
            red, green, blue = _colour((v - low) / span)
            out.append(
                f'<rect x="{x}" y="{y}" width="{CELL}" height="{CELL}" '
                f'fill="rgb({red},{green},{blue})" data-value="{v!r}"/>'
                f'<text x="{x + CELL / 2}" y="{y + CELL / 2 + 4}" class="tick" '
                f'text-anchor="middle">{v:.2f}</text>'
            )
    base = top + CELL * len(h.ys)
    for c, xv in enumerate(h.xs):
        out.append(
            f'<text x="{left + c * CELL + CELL / 2}" y="{base + 16}" class="tick" '
            f'text-anchor="middle">{html.escape(_label(xv))}</text>'
        )
    out.append(
        f'<text x="{left + CELL * len(h.xs) / 2}" y="{base + 38}" class="legend" '
        f'text-anchor="middle">{html.escape(h.x)}</text>'
        f'<text x="12" y="{top - 10}" class="legend">{html.escape(h.y)}</text></svg>'
    )
    return "".join(out)


def _pct(value: object) -> str:
    return f"{float(value):.2%}" if isinstance(value, int | float) else "–"


def _num(value: object) -> str:
    return f"{float(value):.2f}" if isinstance(value, int | float) else "–"


def _cells_table(rows: Sequence[CellRow], names: Sequence[str]) -> str:
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    lines = [
        f"<table><tr><th>#</th>{head}<th>score</th><th>return</th><th>Sharpe</th>"
        "<th>max DD</th><th>trades</th></tr>"
    ]
    for i, row in enumerate(rows[:ROWS_SHOWN], start=1):
        params = "".join(f"<td>{html.escape(_label(row.params[n]))}</td>" for n in names)
        rep = row.report
        lines.append(
            f"<tr><td>{i}</td>{params}<td>{row.score:.3f}</td><td>{_pct(rep['total_return'])}"
            f"</td><td>{_num(rep['sharpe'])}</td><td>{_pct(rep['max_drawdown'])}</td>"
            f"<td>{rep['trades']}</td></tr>"
        )
    lines.append("</table>")
    return "".join(lines)


def _walk_table(result: SweepResult) -> str:
    walk = result.walk
    assert walk is not None
    lines = [
        "<table><tr><th>test window</th><th>best parameters</th><th>in-sample return</th>"
        "<th>in-sample Sharpe</th><th>out-of-sample return</th><th>out-of-sample Sharpe</th>"
        "</tr>"
    ]
    for w in walk.windows:
        params = ", ".join(f"{k}={_label(v)}" for k, v in w.best.params.items())
        oos = w.out_of_sample
        lines.append(
            f"<tr><td>{html.escape(w.test[0][:10])} – {html.escape(w.test[1][:10])}</td>"
            f"<td>{html.escape(params)}</td><td>{_pct(w.best.report['total_return'])}</td>"
            f"<td>{_num(w.best.report['sharpe'])}</td><td>{_pct(oos['total_return'])}</td>"
            f"<td>{_num(oos['sharpe'])}</td></tr>"
        )
    s = walk.stitched
    lines.append(
        f"<tr><th>stitched</th><td></td><td></td><td>mean {_num(walk.in_sample_mean.get('sharpe'))}"
        f"</td><td>{_pct(s.get('total_return'))}</td><td>{_num(s.get('sharpe'))}</td></tr>"
    )
    lines.append("</table>")
    return "".join(lines)


def sweep_html(result: SweepResult, heat: Heat | None, title: str) -> str:
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>Objective: {html.escape(result.objective)}; {result.computed} cells computed, "
        f"{result.from_store} from the store, {result.skipped} skipped (invalid).</p>",
    ]
    if heat is not None:
        parts.append(f"<h2>{html.escape(heat.y)} × {html.escape(heat.x)}</h2>")
        parts.append(_heat_svg(heat))
    if result.rows:
        parts.append("<h2>Cells, best first</h2>")
        parts.append(_cells_table(result.rows, result.names))
    if result.walk is not None:
        parts.append(f"<h2>Walk-forward ({html.escape(result.walk.spec)})</h2>")
        parts.append(_walk_table(result))
    parts.append("</body></html>")
    return "\n".join(parts)
