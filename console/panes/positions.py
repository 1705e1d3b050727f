"""Positions pane: each open position with its P&L, then cash, equity and the day's P&L.

While flat it says what the last closed trade realized (the Orders pane has every one)."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from tapewatch.console.format import et, money, pct, price, qty
from tapewatch.console.panes.base import Pane, View


class PositionsPane(Pane):
    TITLE = "Positions"

    def redraw(self, view: View) -> None:
        state = view.state
        p = view.palette
        table = Table(
            box=None, expand=True, padding=(0, 0, 0, 1), pad_edge=False, header_style=p.muted
        )
        for name in ("Sym", "Qty", "Avg", "Last", "Value", "Unrl $", "Unrl %"):
            table.add_column(name, justify="left" if name == "Sym" else "right", no_wrap=True)
        open_positions = list(state.open_positions)
        for pos in sorted(open_positions, key=lambda x: x.symbol):
            cost = pos.avg_entry_price * pos.qty
            upct = 100.0 * pos.unrealized_pnl / abs(cost) if cost else None
            style = p.up if pos.unrealized_pnl >= 0 else p.down
            table.add_row(
                Text(pos.symbol, style=p.strong),
                qty(pos.qty),
                price(pos.avg_entry_price),
                price(pos.last_price),
                money(pos.market_value),
                Text(money(pos.unrealized_pnl, sign=True), style=style),
                Text(pct(upct), style=style),
            )
        parts: list[Table | Text] = [table]
        if not open_positions:
            closed = next((r for r in state.orders if r.realized_pnl is not None), None)
            if closed is None or closed.realized_pnl is None:
                parts.append(Text("flat — no open positions", style=p.muted))
            else:
                gain = closed.realized_pnl
                parts.append(
                    Text.assemble(
                        ("flat — last trade ", p.muted),
                        (money(gain, sign=True), p.up if gain >= 0 else p.down),
                        (f" ({closed.symbol} {et(closed.time, '%H:%M')})", p.muted),
                    )
                )
        day = state.day_pnl
        day_pct = 100.0 * day / state.day_start_equity if state.day_start_equity else None
        parts.append(
            Text.assemble(
                ("cash ", p.muted),
                money(state.cash),
                ("  equity ", p.muted),
                (money(state.equity), p.strong),
            )
        )
        parts.append(
            Text.assemble(
                ("day P&L ", p.muted),
                (f"{money(day, sign=True)} ({pct(day_pct)})", p.up if day >= 0 else p.down),
                ("  from ", p.muted),
                money(state.day_start_equity or None),
            )
        )
        self.update(Group(*parts))
