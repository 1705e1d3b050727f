"""The flatten preview: the exact orders that will be sent, then one explicit confirmation."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from tapewatch.console.format import money, price, qty
from tapewatch.console.screens.confirm import ConfirmScreen
from tapewatch.engine.api.types import OrderRequest


def preview_body(requests: Sequence[OrderRequest], in_flight: int) -> RenderableType:
    table = Table(box=None, expand=True, padding=(0, 1), show_edge=False)
    for name in ("Symbol", "Side", "Qty", "Est. price", "Est. notional"):
        table.add_column(name, justify="left" if name in ("Symbol", "Side") else "right")
    total = 0.0
    for r in requests:
        notional = r.qty * r.estimated_price if r.estimated_price else None
        total += notional or 0.0
        table.add_row(
            r.symbol, r.side.value.upper(), qty(r.qty), price(r.estimated_price), money(notional)
        )
    parts: list[RenderableType] = []
    if requests:
        n = len(requests)
        what = "This market order" if n == 1 else f"These {n} market orders"
        parts.append(Text(f"{what} will be sent:", style="bold"))
        parts.append(table)
        parts.append(
            Text(f"Estimated total notional {money(total)} (fills at the next price).", style="dim")
        )
    else:
        parts.append(Text("No open positions: nothing to sell or buy back."))
    if in_flight:
        open_orders = "1 open order" if in_flight == 1 else f"{in_flight} open orders"
        parts.append(Text(f"{open_orders} will be cancelled first."))
    parts.append(Text("Flatten works even when trading is HALTED.", style="dim"))
    return Group(*parts)


class FlattenScreen(ConfirmScreen):
    def __init__(self, requests: Sequence[OrderRequest], in_flight: int) -> None:
        n = len(requests)
        super().__init__(
            "Flatten — close every position",
            preview_body(requests, in_flight),
            yes=f"Send {n} order{'s' if n != 1 else ''}" if n else "Cancel open orders",
            no="Cancel",
            danger=True,
        )
        self.requests = list(requests)
