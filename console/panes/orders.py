"""Order log: newest first, scrollable, every column including why each order exists.

The reason column gives what happened to an order (a denial, a rejection) and the decision
behind it (the rule's values such as ``RSI 27.9 < 30, close > SMA``, or who flattened); the
P&L column what each closing order realized, fees included.

The log is a Rich table in a scrolling container, so a long denial reason wraps inside its
column instead of being cut off. It is rebuilt only when the rows changed (a cheap signature of
the newest rows), never per event.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from tapewatch.console.format import duration, et, money, price, qty
from tapewatch.console.panes.base import View
from tapewatch.engine.api.snapshot import OrderLine

COLUMNS = ("Time", "Side", "Qty", "Sym", "Status", "Fill", "P&L", "Latency", "Reason")
_SIGNATURE_ROWS = 20  # rows change state only while recent; older ones are settled
_STATUS = {"partially_filled": "partial", "cancelled": "cancelled"}


def reason(line: OrderLine) -> str:
    """What happened to the order, then why it exists; "operator flatten" when neither is known."""
    text = " · ".join(part for part in (line.reason, line.why) if part)
    return text or ("operator flatten" if line.intent == "flatten" else "")


def _signature(rows: Sequence[OrderLine], count: int) -> tuple[object, ...]:
    return (count, *rows[:_SIGNATURE_ROWS])  # frozen lines: equal when nothing changed


class OrdersPane(VerticalScroll):
    DEFAULT_CSS = """
    OrdersPane { height: 1fr; width: 1fr; }
    OrdersPane > #order-log { width: 1fr; height: auto; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="pane")
        self.border_title = "Orders"
        self._signature: tuple[object, ...] | None = None
        self._palette_key: object = None

    def compose(self) -> ComposeResult:
        yield Static("no orders yet", id="order-log")

    def redraw(self, view: View) -> None:
        orders = view.state.orders
        signature = (_signature(orders, len(orders)), view.palette, view.measured)
        if signature == self._signature:
            return
        self._signature = signature
        self.border_title = f"Orders ({len(orders)}, newest first)" if orders else "Orders"
        self.query_one("#order-log", Static).update(self.table(view) if orders else "no orders yet")

    @staticmethod
    def table(view: View) -> Table:
        p = view.palette
        table = Table(
            box=None, expand=True, padding=(0, 0, 0, 1), pad_edge=False, header_style=p.muted
        )
        for name in COLUMNS:
            right = name in ("Qty", "Fill", "P&L", "Latency")
            table.add_column(
                name,
                justify="right" if right else "left",
                no_wrap=name != "Reason",
                ratio=1 if name == "Reason" else None,
                overflow="fold",
            )
        status_style = {
            "filled": p.good,
            "rejected": p.bad,
            "denied": p.warn,
            "unknown": p.bad,
            "cancelled": p.muted,
            "expired": p.muted,
        }
        for r in view.state.orders:
            pnl = r.realized_pnl
            table.add_row(
                et(r.time, "%m-%d %H:%M"),
                Text(r.side, style=p.up if r.side == "buy" else p.down),
                qty(r.qty),
                r.symbol,
                Text(_STATUS.get(r.status, r.status), style=status_style.get(r.status, p.strong)),
                price(r.fill_price),
                Text("")
                if pnl is None
                else Text(money(pnl, sign=True), p.up if pnl >= 0 else p.down),
                duration(r.latency) if view.measured or r.latency is None else "·",
                Text(reason(r), style=p.muted),
            )
        return table
