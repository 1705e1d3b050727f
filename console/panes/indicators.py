"""Indicators pane: RSI and SMA sparklines, current values, and which entry conditions hold.

The exit condition is shown only while a position is held (a tick beside ``RSI > 70`` while
flat would promise a sell that cannot happen).

The oversold/overbought bands are marked by shape (▼/▲ under the RSI line) as well as colour,
so the pane reads the same in 16 colours and under NO_COLOR.
"""

from __future__ import annotations

from rich.console import Group
from rich.style import Style
from rich.text import Text

from tapewatch.console.format import price
from tapewatch.console.panes.base import Pane, View
from tapewatch.console.panes.spark import band_marks, sparkline


def _mark(ok: bool, view: View) -> Text:
    p = view.palette
    return Text("✓ ", style=p.good) if ok else Text("✗ ", style=p.muted)


def _num(value: float | None, fmt: str = ".1f") -> str:
    return "—" if value is None else format(value, fmt)


class IndicatorsPane(Pane):
    TITLE = "Indicators"

    def redraw(self, view: View) -> None:
        state = view.state
        p = view.palette
        cfg = view.state.strategy
        width = max(10, self.content_size.width or 30)
        low, high = cfg.rsi_oversold, cfg.rsi_overbought
        rsi = next((v for v in reversed(state.rsi) if v is not None), None)
        sma = next((v for v in reversed(state.sma) if v is not None), None)
        close = state.bars[-1].close if state.bars else None
        held = state.position(state.symbol)
        holding = held is not None and held.qty > 1e-12
        flat = not holding
        signal = state.last_signal
        if signal is not None:
            oversold, above, flat_now = signal.rsi_oversold, signal.close_above_sma, signal.flat
            overbought, action = signal.rsi_overbought, signal.action.upper()
        else:
            oversold = rsi is not None and rsi < low
            above = close is not None and sma is not None and close > sma
            flat_now, overbought, action = flat, rsi is not None and rsi > high, "—"

        def band(v: float) -> Style:
            return p.good if v < low else p.bad if v > high else p.accent

        rsi_style = band(rsi) if rsi is not None else p.muted
        head = Text.assemble(
            (f"RSI({cfg.rsi_period}) ", p.strong),
            (_num(rsi), rsi_style),
            ("   ▼ <", p.muted),
            (f"{low:g}", p.good),
            ("  ▲ >", p.muted),
            (f"{high:g}", p.bad),
        )
        entry = oversold and above and flat_now
        lines = [
            head,
            sparkline(state.rsi, width, lo=0.0, hi=100.0, style=band),
            band_marks(state.rsi, width, low, high, (p.good, p.bad)),
            Text.assemble((f"SMA({cfg.sma_period}) ", p.strong), (price(sma), p.sma)),
            sparkline(state.sma, width, style=p.sma),
            Text.assemble(
                ("Entry ", p.strong),
                ("(all must hold) → ", p.muted),
                ("BUY" if entry else "no", p.good if entry else p.muted),
            ),
            Text.assemble(_mark(oversold, view), f"RSI {_num(rsi)} < {low:g}"),
            Text.assemble(_mark(above, view), f"close {price(close)} > SMA {price(sma)}"),
            Text.assemble(_mark(flat_now, view), "flat (no position)"),
            Text.assemble(
                ("Exit ", p.strong),
                *((_mark(overbought, view), f"RSI > {high:g}") if holding else ()),
                ("— not holding" if not holding else "", p.muted),
                (" · last ", p.muted),
                (action, p.strong),
            ),
        ]
        self.update(Group(*lines))
