"""The engine's own book of its orders: what it intended, what the broker said, what filled.

Exposure is position *plus* open orders, so the engine must know which of its orders are still
working — including those whose outcome is unknown (a submit that timed out, a look-up that
failed): they count as open until the broker says otherwise. Broker answers arrive in any order
(the POST answer, a poll, the trade stream, a cancel-all answer, a start-up look-up), so every
view is merged by ``merge``: an order's status only moves forward by rank and its filled
quantity only grows, whichever answer comes first. The book also keeps how much of each order
the journal has recorded as fills, so a settlement can journal exactly what is missing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime

from tapewatch.engine.model.events import (
    Event,
    OrderFilled,
    OrderIntended,
    OrderSubmitted,
    OrderUpdated,
)
from tapewatch.engine.model.types import Fill, Intent, Order, OrderRequest, OrderStatus, Side

QTY_EPS = 1e-9
KEEP_CLOSED = 1000  # closed orders remembered, so a late answer about them is recognised

_RANK = {
    OrderStatus.NEW: 0,
    OrderStatus.ACCEPTED: 0,
    OrderStatus.PARTIALLY_FILLED: 1,
    OrderStatus.FILLED: 2,
    OrderStatus.CANCELLED: 2,
    OrderStatus.REJECTED: 2,
    OrderStatus.EXPIRED: 2,
}


def rank(status: OrderStatus) -> int:
    """0 working, 1 partly filled, 2 final."""
    return _RANK[status]


def merge(current: Order | None, incoming: Order) -> Order:
    """The newer of two views of one order: status never goes back, filled quantity never
    shrinks. A stale POST answer (``accepted``) after the stream's fill changes nothing."""
    if current is None:
        return incoming
    status = incoming.status if rank(incoming.status) >= rank(current.status) else current.status
    if rank(current.status) == 2 and incoming.filled_qty <= current.filled_qty + QTY_EPS:
        status = current.status  # final is final unless more filled than we knew
    if incoming.filled_qty > current.filled_qty + QTY_EPS:
        filled_qty, avg = incoming.filled_qty, incoming.filled_avg_price
    else:
        filled_qty, avg = current.filled_qty, current.filled_avg_price or incoming.filled_avg_price
    if status is OrderStatus.PARTIALLY_FILLED and filled_qty >= current.qty - QTY_EPS > 0:
        status = OrderStatus.FILLED
    return replace(
        current,
        order_id=current.order_id or incoming.order_id,
        status=status,
        filled_qty=filled_qty,
        filled_avg_price=avg,
        submitted_at=current.submitted_at or incoming.submitted_at,
        filled_at=incoming.filled_at or current.filled_at,
        reason=incoming.reason or current.reason,
    )


@dataclass(slots=True)
class Tracked:
    """One of our orders: the request (when we sent it), the merged broker view (None while
    the outcome is unknown) and what the journal holds as fills."""

    client_order_id: str
    symbol: str
    side: Side
    qty: float
    intent: Intent
    intended_at: datetime | None
    order: Order | None = None
    journaled_qty: float = 0.0
    journaled_notional: float = 0.0
    misses: int = 0  # look-ups that found no such order

    @property
    def is_open(self) -> bool:
        """Working at the broker, or not known to have ended (unknown counts as open)."""
        return self.order is None or self.order.status.is_open

    @property
    def unresolved(self) -> bool:
        return self.order is None

    @property
    def remaining(self) -> float:
        """Quantity that may still fill (all of it while the outcome is unknown)."""
        if not self.is_open:
            return 0.0
        filled = max(self.journaled_qty, self.order.filled_qty if self.order else 0.0)
        return max(0.0, self.qty - filled)


class OrderBook:
    """Our orders by client order id, fed by intents, broker views and journaled fills."""

    def __init__(self) -> None:
        self._orders: dict[str, Tracked] = {}

    def __contains__(self, client_order_id: object) -> bool:
        return client_order_id in self._orders

    def get(self, client_order_id: str) -> Tracked | None:
        return self._orders.get(client_order_id)

    def intend(self, request: OrderRequest, ts: datetime | None) -> Tracked:
        tracked = self._orders.get(request.client_order_id)
        if tracked is None:
            tracked = Tracked(
                client_order_id=request.client_order_id,
                symbol=request.symbol,
                side=request.side,
                qty=request.qty,
                intent=request.intent,
                intended_at=ts,
            )
            self._orders[request.client_order_id] = tracked
        return tracked

    def observe(self, order: Order) -> Order:
        """Merge a broker view; returns the merged view. Orders we never intended (found by a
        reconciliation) are tracked too, so their fills count."""
        tracked = self._orders.get(order.client_order_id)
        if tracked is None:
            tracked = Tracked(
                client_order_id=order.client_order_id,
                symbol=order.symbol,
                side=order.side,
                qty=order.qty,
                intent=Intent.EXIT if order.side is Side.SELL else Intent.ENTRY,
                intended_at=order.submitted_at,
            )
            self._orders[order.client_order_id] = tracked
        was_open = tracked.is_open
        tracked.order = merge(tracked.order, order)
        tracked.misses = 0
        if was_open and not tracked.is_open:
            self._forget_old()
        return tracked.order

    def record_fill(self, fill: Fill) -> None:
        """A fill the journal now holds."""
        tracked = self._orders.get(fill.client_order_id)
        if tracked is None:
            return
        tracked.journaled_qty += fill.qty
        tracked.journaled_notional += fill.qty * fill.price

    def unjournaled_fill(self, order: Order, ts: datetime) -> Fill | None:
        """What the broker says filled beyond what the journal holds, as one fill priced so the
        journal's average equals the broker's (None when nothing is missing)."""
        tracked = self._orders.get(order.client_order_id)
        journaled_qty = tracked.journaled_qty if tracked is not None else 0.0
        journaled_notional = tracked.journaled_notional if tracked is not None else 0.0
        missing = order.filled_qty - journaled_qty
        if missing <= QTY_EPS or order.filled_avg_price is None:
            return None
        price = (order.filled_qty * order.filled_avg_price - journaled_notional) / missing
        return Fill(
            order_id=order.order_id,
            client_order_id=order.client_order_id,
            symbol=order.symbol,
            side=order.side,
            qty=missing,
            price=price,
            fee=0.0,
            ts=order.filled_at or ts,
        )

    def missed(self, client_order_id: str) -> int:
        tracked = self._orders.get(client_order_id)
        if tracked is None:
            return 0
        tracked.misses += 1
        return tracked.misses

    # -- questions the engine asks ----------------------------------------------------------

    def open_orders(self, symbol: str | None = None) -> list[Tracked]:
        return [t for t in self._orders.values() if t.is_open and symbol in (None, t.symbol)]

    def open_count(self) -> int:
        return sum(1 for t in self._orders.values() if t.is_open)

    def open_buy_qty(self, symbol: str) -> float:
        return sum(t.remaining for t in self.open_orders(symbol) if t.side is Side.BUY)

    def open_sell_qty(self, symbol: str) -> float:
        return sum(t.remaining for t in self.open_orders(symbol) if t.side is Side.SELL)

    def __iter__(self) -> Iterator[Tracked]:
        return iter(list(self._orders.values()))

    # -- housekeeping -----------------------------------------------------------------------

    def _forget_old(self) -> None:
        closed = [cid for cid, t in self._orders.items() if not t.is_open]
        for cid in closed[: max(0, len(closed) - KEEP_CLOSED)]:
            del self._orders[cid]

    @classmethod
    def from_events(cls, events: Iterable[Event]) -> OrderBook:
        """The book as the journal left it (intents, broker views and fills, in order)."""
        book = cls()
        for event in events:
            if isinstance(event, OrderIntended):
                book.intend(event.request, event.ts)
            elif isinstance(event, OrderFilled):
                if event.fill.client_order_id not in book:
                    book.observe(replace(event.order, filled_qty=0.0, filled_avg_price=None))
                book.record_fill(event.fill)
                book.observe(event.order)
            elif isinstance(event, OrderSubmitted | OrderUpdated):
                book.observe(event.order)
        return book
