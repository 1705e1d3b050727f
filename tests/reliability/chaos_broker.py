"""A broker whose answers arrive late, twice, out of order or never — Alpaca on a bad day.

It keeps the truth (orders, fills, the position) itself and speaks to the engine the way
AlpacaBroker does: order snapshots in Alpaca's wire shape (strings for numbers) go through the
real ``OrderTracker``, which turns them into the engine's events. What the test controls:

- each submit's fate, from a script: answered, answer lost after the order landed, never
  landed, hung past the engine's deadline (landed or not), or answered with a stale ``accepted``
  snapshot after the fill was already streamed;
- when queued stream snapshots are delivered, duplicated, dropped or reordered, and when the
  venue fills (all or part of) an open order;
- which look-ups fail.

It records what a real broker would make the trader pay for: a buy accepted while the account
already had exposure, a sell larger than the position less open sells, an order sent twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from tapewatch.engine.adapters.alpaca.mapping import to_order
from tapewatch.engine.adapters.alpaca.orders import OrderTracker
from tapewatch.engine.core.broker import BrokerError, BrokerListener, DuplicateClientOrderId
from tapewatch.engine.core.clock import Clock
from tapewatch.engine.model.events import Event
from tapewatch.engine.model.types import AccountSnapshot, Bar, Order, OrderRequest, Position, Side

EPS = 1e-9
SUBMIT_FATES = ("ok", "lost", "never", "hang_landed", "hang_never", "stale")


def _text(value: float) -> str:
    return repr(round(value, 9))


@dataclass
class VenueOrder:
    order_id: str
    client_order_id: str
    symbol: str
    side: Side
    qty: float
    submitted_at: datetime
    status: str = "accepted"
    filled_qty: float = 0.0
    notional: float = 0.0
    filled_at: datetime | None = None

    @property
    def is_open(self) -> bool:
        return self.status in ("accepted", "new", "partially_filled")

    @property
    def remaining(self) -> float:
        return self.qty - self.filled_qty if self.is_open else 0.0

    def snapshot(self) -> dict[str, object]:
        avg = self.notional / self.filled_qty if self.filled_qty > 0 else None
        return {
            "id": self.order_id,
            "client_order_id": self.client_order_id,
            "symbol": self.symbol,
            "side": self.side.value,
            "qty": _text(self.qty),
            "status": self.status,
            "filled_qty": _text(self.filled_qty),
            "filled_avg_price": None if avg is None else repr(avg),
            "submitted_at": self.submitted_at.isoformat(),
            "filled_at": None if self.filled_at is None else self.filled_at.isoformat(),
        }


@dataclass
class Violations:
    stacked_buys: list[str] = field(default_factory=list)
    oversized_sells: list[str] = field(default_factory=list)
    resent: list[str] = field(default_factory=list)
    max_exposure_ratio: float = 0.0  # position + open buys, over the entry that opened it


class ChaosBroker:
    name = "chaos"

    def __init__(
        self,
        clock: Clock,
        *,
        cash: float,
        fates: Sequence[str],
        lookup_failures: Sequence[bool],
    ) -> None:
        self._clock = clock
        self.cash = cash
        self.position = 0.0
        self.price = 100.0
        self.orders: dict[str, VenueOrder] = {}  # by client order id
        self.outbox: list[dict[str, object]] = []  # stream snapshots not yet delivered
        self.violations = Violations()
        self._fates = list(fates) or ["ok"]
        self._lookup_failures = list(lookup_failures) or [False]
        self._submits = 0
        self._lookups = 0
        self.reliable = False  # the test's final settlement: every look-up answers
        self._listener: BrokerListener = lambda _event: None
        self._tracker = OrderTracker(self._deliver, clock.now, poll_after=1e9)
        self._entry_qty = 0.0

    # -- the venue ---------------------------------------------------------------------------

    def _deliver(self, event: Event) -> None:
        self._listener(event)

    def _open_qty(self, side: Side) -> float:
        return sum(o.remaining for o in self.orders.values() if o.side is side)

    def _accept(self, request: OrderRequest) -> VenueOrder:
        cid = request.client_order_id
        if request.side is Side.BUY:
            exposure = self.position + self._open_qty(Side.BUY)
            if exposure > EPS:
                self.violations.stacked_buys.append(f"{cid} with {exposure} already exposed")
            self._entry_qty = request.qty
        else:
            available = self.position - self._open_qty(Side.SELL)
            if request.qty > available + EPS:
                self.violations.oversized_sells.append(f"{cid}: {request.qty} > {available}")
        order = VenueOrder(
            order_id=f"00000000-0000-4000-8000-{len(self.orders):012d}",
            client_order_id=cid,
            symbol=request.symbol,
            side=request.side,
            qty=request.qty,
            submitted_at=self._clock.now(),
        )
        self.orders[cid] = order
        self._note_exposure()
        return order

    def _note_exposure(self) -> None:
        if self._entry_qty > 0:
            exposure = self.position + self._open_qty(Side.BUY)
            ratio = exposure / self._entry_qty
            self.violations.max_exposure_ratio = max(self.violations.max_exposure_ratio, ratio)

    def fill(self, index: int, fraction: float) -> None:
        """The venue executes ``fraction`` of what is left of an open order (picked by index)."""
        working = [o for o in self.orders.values() if o.is_open]
        if not working:
            return
        order = working[index % len(working)]
        qty = order.remaining if fraction >= 1 else round(order.remaining * fraction, 9)
        if order.side is Side.SELL:
            qty = min(qty, self.position)
        if qty <= EPS:
            return
        order.filled_qty += qty
        order.notional += qty * self.price
        order.filled_at = self._clock.now()
        if order.side is Side.BUY:
            self.position += qty
            self.cash -= qty * self.price
        else:
            self.position -= qty
            self.cash += qty * self.price
        done = order.qty - order.filled_qty <= EPS
        order.status = "filled" if done else "partially_filled"
        self.outbox.append(order.snapshot())
        self._note_exposure()

    # -- the stream --------------------------------------------------------------------------

    def deliver(self, index: int, *, duplicate: bool = False, drop: bool = False) -> None:
        """Hand one queued snapshot (picked by index: any order) to the tracker, or lose it."""
        if not self.outbox:
            return
        snapshot = self.outbox[index % len(self.outbox)]
        if not duplicate:
            self.outbox.remove(snapshot)
        if not drop:
            self._tracker.observe(dict(snapshot))

    # -- Broker protocol ---------------------------------------------------------------------

    def set_listener(self, listener: BrokerListener) -> None:
        self._listener = listener

    async def on_bar(self, bar: Bar) -> None:
        self.price = bar.close

    async def submit_order(self, request: OrderRequest) -> Order:
        cid = request.client_order_id
        if cid in self.orders:
            self.violations.resent.append(cid)
            raise DuplicateClientOrderId(cid)
        fate = self._fates[self._submits % len(self._fates)]
        self._submits += 1
        self._tracker.begin_submit(cid)
        try:
            if fate in ("never", "hang_never"):
                if fate == "hang_never":
                    await asyncio.Event().wait()
                raise BrokerError("connection reset", retryable=True)
            order = self._accept(request)
            answer = order.snapshot()
            if fate == "stale":  # the venue fills and streams before the POST answer arrives
                self.fill(0, 1.0)
                self._tracker.end_submit(cid)
                self.deliver(len(self.outbox) - 1)
                await asyncio.sleep(0)
                self._tracker.begin_submit(cid)
            elif fate == "lost":
                raise BrokerError("read timed out", retryable=True)
            elif fate == "hang_landed":
                await asyncio.Event().wait()
            self._tracker.observe(answer)
            return to_order(answer)
        finally:
            self._tracker.end_submit(cid)

    async def get_order_by_client_id(self, client_order_id: str) -> Order | None:
        failing = self._lookup_failures[self._lookups % len(self._lookup_failures)]
        self._lookups += 1
        if failing and not self.reliable:
            raise BrokerError("HTTP 503 from GET order", status=503, retryable=True)
        order = self.orders.get(client_order_id)
        if order is None:
            self._tracker.missed(client_order_id)
            return None
        snapshot = order.snapshot()
        self._tracker.observe(snapshot, baseline=True)
        return to_order(snapshot)

    async def cancel_order(self, client_order_id: str) -> Order | None:
        order = self.orders.get(client_order_id)
        if order is not None and order.is_open:
            order.status = "canceled"
            self.outbox.append(order.snapshot())
        return await self.get_order_by_client_id(client_order_id)

    async def open_orders(self) -> list[Order]:
        return [to_order(o.snapshot()) for o in self.orders.values() if o.is_open]

    async def cancel_all_orders(self) -> list[Order]:
        cancelled = []
        for order in self.orders.values():
            if order.is_open:
                order.status = "canceled"
                self.outbox.append(order.snapshot())
                cancelled.append(to_order(order.snapshot()))
        return cancelled

    async def get_positions(self) -> dict[str, Position]:
        if self.position <= EPS:
            return {}
        return {"SPY": Position("SPY", self.position, self.price, self.price)}

    async def get_account(self) -> AccountSnapshot:
        positions = tuple((await self.get_positions()).values())
        equity = self.cash + self.position * self.price
        return AccountSnapshot(cash=self.cash, equity=equity, positions=positions)

    async def close(self) -> None:
        return None
