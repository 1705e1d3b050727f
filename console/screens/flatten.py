"""The flatten preview: the exact orders that will be sent, then one explicit choice.

"Flatten and pause" (y, the default) also stops new entries until the operator resumes, so the
strategy cannot buy straight back on its next signal; "Flatten only" (o) leaves entries allowed;
Cancel (n, Esc) sends nothing. While the dialog is open its orders and estimated prices follow
the engine's newer snapshots, so what it shows is what would be sent now.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import ClassVar, Literal

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from tapewatch.console.format import et, money, price, qty
from tapewatch.engine.api.commands import PreviewFlatten
from tapewatch.engine.api.handle import EngineHandle
from tapewatch.engine.api.replies import Accepted, FlattenPreview
from tapewatch.engine.api.types import OrderRequest

FlattenChoice = Literal["flatten_and_pause", "flatten"]
FOLLOW_EVERY = 0.5  # seconds between looks for a newer snapshot while the dialog is open


def preview_body(
    requests: Sequence[OrderRequest], in_flight: int, as_of: datetime | None = None
) -> RenderableType:
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
        when = f" as of {et(as_of)} ET" if as_of is not None else ""
        parts.append(
            Text(
                f"Estimated total notional {money(total)}{when}; prices follow the market "
                "while this is open (fills at the next price).",
                style="dim",
            )
        )
    else:
        parts.append(Text("No open positions: nothing to sell or buy back."))
    if in_flight:
        open_orders = "1 open order" if in_flight == 1 else f"{in_flight} open orders"
        parts.append(Text(f"{open_orders} will be cancelled first."))
    parts.append(
        Text(
            "Flatten and pause also stops new entries until you resume (p); flatten only "
            "lets the strategy buy again on its next signal. Both work even when HALTED.",
            style="dim",
        )
    )
    return Group(*parts)


class FlattenScreen(ModalScreen[FlattenChoice | None]):
    """Dismisses with "flatten_and_pause", "flatten", or None (cancelled)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "choose('flatten_and_pause')", "Flatten and pause", show=False),
        Binding("o", "choose('flatten')", "Flatten only", show=False),
        Binding("n,escape", "cancel", "Cancel", show=False),
    ]

    def __init__(
        self,
        requests: Sequence[OrderRequest],
        in_flight: int,
        *,
        handle: EngineHandle | None = None,
        who: str = "",
        seen: int | None = None,
        as_of: datetime | None = None,
    ) -> None:
        """With ``handle``, snapshots newer than version ``seen`` re-ask the engine for the
        preview (as ``who``), so orders and prices stay current."""
        super().__init__(classes="-danger")
        self.requests = list(requests)
        self.in_flight = in_flight
        self._handle = handle
        self._who = who
        self._seen = seen
        self._as_of = as_of

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="dialog") as box:
            box.border_title = "Flatten — close every position"
            yield Static(self._body(), id="body")
            with Horizontal(classes="buttons"):
                yield Button("Flatten and pause (y)", id="flatten_and_pause", variant="error")
                yield Button("Flatten only (o)", id="flatten", variant="warning")
                yield Button("Cancel (Esc)", id="cancel")

    def _body(self) -> RenderableType:
        return preview_body(self.requests, self.in_flight, self._as_of)

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()  # Enter on the focused button never sends
        if self._handle is not None:
            self.set_interval(FOLLOW_EVERY, self._follow)

    def _follow(self) -> None:
        handle = self._handle
        if handle is None:
            return
        snap = handle.snapshot(newer_than=self._seen)
        if snap is None:
            return
        self._seen = snap.version
        self.run_worker(self._refresh(handle, snap.now), exclusive=True, group="flatten-preview")

    async def _refresh(self, handle: EngineHandle, now: datetime) -> None:
        """Ask for the preview again; redraw only when an order or a price moved."""
        reply = await handle.send(PreviewFlatten(who=self._who))
        if not isinstance(reply, Accepted) or not isinstance(reply.payload, FlattenPreview):
            return
        fresh = list(reply.payload.orders)
        in_flight = reply.payload.in_flight
        if self._same(fresh) and in_flight == self.in_flight:
            return
        self.requests, self.in_flight, self._as_of = fresh, in_flight, now
        self.query_one("#body", Static).update(self._body())

    def _same(self, fresh: Sequence[OrderRequest]) -> bool:
        """The same orders at the same prices (client ids carry a stamp that may move)."""

        def key(r: OrderRequest) -> tuple[object, ...]:
            return (r.symbol, r.side, r.qty, r.estimated_price)

        return [key(r) for r in fresh] == [key(r) for r in self.requests]

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "flatten_and_pause":
            self.dismiss("flatten_and_pause")
        elif event.button.id == "flatten":
            self.dismiss("flatten")
        else:
            self.dismiss(None)

    def action_choose(self, choice: FlattenChoice) -> None:
        self.dismiss(choice)

    def action_cancel(self) -> None:
        self.dismiss(None)
