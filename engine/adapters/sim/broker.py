"""The simulated broker used by backtests and the offline demo.

Execution convention (the one thing a backtest's honesty rests on): the strategy signals on a
closed bar, and a market order submitted after it fills at the *next* bar's open for its
symbol, moved against the trader by the configured slippage, and charged
``commission_per_order + commission_per_share * qty``. An order never fills on the bar it was
submitted after, so look-ahead is impossible by construction.

Cash and positions change only through ``engine.core.portfolio.apply_fill``, the same function the
journal replays, so a rebuilt portfolio equals the live one by construction.
"""

from __future__ import annotations

import math
from collections.abc import Container
from dataclasses import dataclass, replace
from datetime import datetime

from tapewatch.engine.core.broker import BrokerError, BrokerListener, DuplicateClientOrderId
from tapewatch.engine.core.clock import Clock
from tapewatch.engine.core.portfolio import PortfolioState, apply_fill
from tapewatch.engine.model.events import Event, OrderFilled, OrderUpdated
from tapewatch.engine.model.types import (
    AccountSnapshot,
    Bar,
    Fill,
    Order,
    OrderRequest,
    OrderStatus,
    Position,
    Side,
)
from tapewatch.engine.settings.config import ExecutionConfig

QTY_EPS = 1e-9
"""Quantities closer than this are equal (the portfolio drops positions below it too)."""
CASH_EPS = 1e-9


def _ignore(_event: Event) -> None:
    """Listener used until the engine registers one."""


def _fmt_qty(qty: float) -> str:
    """A share quantity as a person reads it: 10, 0.5, 0.123456789."""
    text = f"{qty:.9f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


@dataclass(slots=True)
class _Pending:
    """An accepted order waiting for its symbol's next bar, with the cash it reserves."""

    seq: int
    order: Order
    reserved: float


class SimBroker:
    """An in-process broker that fills market orders at the next bar's open."""

    name = "sim"

    def __init__(
        self,
        starting_cash: float,
        execution: ExecutionConfig,
        *,
        clock: Clock,
        id_prefix: str = "sim",
    ) -> None:
        self._clock = clock
        self._slip = execution.slippage_bps / 10_000.0
        self._fee_per_order = execution.commission_per_order
        self._fee_per_share = execution.commission_per_share
        self._id_prefix = id_prefix
        self._state = PortfolioState(cash=float(starting_cash), positions={})
        self._listener: BrokerListener = _ignore
        self._seq = 0
        self._orders: dict[str, Order] = {}  # order_id -> latest view
        self._by_client: dict[str, str] = {}  # client_order_id -> order_id
        self._pending: dict[str, list[_Pending]] = {}  # symbol -> in submission order
        self._reserved_cash = 0.0
        self._last: dict[str, float] = {}  # symbol -> last close seen
        self._closed = False

    # -- synchronous read accessors (cheap, for the backtester) ---------------------------

    @property
    def portfolio(self) -> PortfolioState:
        return self._state

    @property
    def cash(self) -> float:
        return self._state.cash

    @property
    def equity(self) -> float:
        """Cash plus every position marked at its symbol's last close."""
        return self._state.equity

    def position_qty(self, symbol: str) -> float:
        position = self._state.positions.get(symbol)
        return 0.0 if position is None else position.qty

    def position_after_next_bar(self, symbol: str) -> float:
        """The position once the symbol's pending orders fill at its next bar's open (what the
        strategy will see on that bar; a look-ahead for the demo's next-signal key)."""
        qty = self.position_qty(symbol)
        for item in self._pending.get(symbol, ()):
            order = item.order
            qty += order.qty if order.side is Side.BUY else -order.qty
        return qty

    def last_price(self, symbol: str) -> float | None:
        return self._last.get(symbol)

    @property
    def slippage(self) -> float:
        """How far a fill moves against the trader, as a fraction of the open."""
        return self._slip

    @property
    def id_prefix(self) -> str:
        return self._id_prefix

    @property
    def orders_submitted(self) -> int:
        """Orders taken so far (the next order id's number is one more)."""
        return self._seq

    @property
    def pending_symbols(self) -> Container[str]:
        """Symbols with orders waiting for their next bar (a live, read-only view)."""
        return self._pending.keys()

    # -- Broker protocol -------------------------------------------------------------------

    def set_listener(self, listener: BrokerListener) -> None:
        self._listener = listener

    async def on_bar(self, bar: Bar) -> None:
        """Fill the symbol's pending orders at this bar's open, then mark to its close."""
        symbol = bar.symbol
        pending = self._pending.pop(symbol, None)
        if pending is not None:
            for item in pending:
                self._execute(item, bar.open, bar.ts)
        close = bar.close
        self._last[symbol] = close
        positions = self._state.positions
        position = positions.get(symbol)
        if position is not None and position.last_price != close:
            positions[symbol] = Position(symbol, position.qty, position.avg_entry_price, close)

    async def submit_order(self, request: OrderRequest) -> Order:
        """Accept the order for the next bar, or return it REJECTED with the reason."""
        if self._closed:
            raise BrokerError("the simulated broker is closed")
        cid = request.client_order_id
        if cid in self._by_client:
            raise DuplicateClientOrderId(cid)
        self._seq += 1
        order = Order(
            order_id=f"{self._id_prefix}-{self._seq:08d}",
            client_order_id=cid,
            symbol=request.symbol,
            side=request.side,
            qty=request.qty,
            status=OrderStatus.ACCEPTED,
            submitted_at=self._clock.now(),
        )
        reserved = 0.0
        reason = self._check_quantity(request)
        if not reason and request.side is Side.SELL:
            reason = self._check_sell(request)
        elif not reason:
            reserved, reason = self._check_buy(request)
        if reason:
            order = replace(order, status=OrderStatus.REJECTED, reason=reason)
        else:
            self._pending.setdefault(request.symbol, []).append(
                _Pending(self._seq, order, reserved)
            )
            self._reserved_cash += reserved
        self._orders[order.order_id] = order
        self._by_client[cid] = order.order_id
        return order

    async def get_order_by_client_id(self, client_order_id: str) -> Order | None:
        order_id = self._by_client.get(client_order_id)
        return None if order_id is None else self._orders[order_id]

    async def open_orders(self) -> list[Order]:
        return [item.order for item in self._pending_in_submission_order()]

    async def cancel_order(self, client_order_id: str) -> Order | None:
        """Cancel one pending order (emitting its update); a finished one is returned as is."""
        order_id = self._by_client.get(client_order_id)
        if order_id is None:
            return None
        order = self._orders[order_id]
        queue = self._pending.get(order.symbol, [])
        for item in queue:
            if item.order.order_id == order_id:
                queue.remove(item)
                if not queue:
                    self._pending.pop(order.symbol, None)
                self._reserved_cash = max(0.0, self._reserved_cash - item.reserved)
                order = replace(order, status=OrderStatus.CANCELLED, reason="cancelled")
                self._orders[order_id] = order
                self._listener(OrderUpdated(ts=self._clock.now(), order=order))
                break
        return order

    async def cancel_all_orders(self) -> list[Order]:
        """Cancel every pending order (emitting an update for each); returns them cancelled."""
        cancelled = []
        for item in self._pending_in_submission_order():
            order = replace(item.order, status=OrderStatus.CANCELLED, reason="cancelled")
            self._orders[order.order_id] = order
            cancelled.append(order)
        self._pending.clear()
        self._reserved_cash = 0.0
        for order in cancelled:
            self._listener(OrderUpdated(ts=self._clock.now(), order=order))
        return cancelled

    async def get_positions(self) -> dict[str, Position]:
        return dict(self._state.positions)

    async def get_account(self) -> AccountSnapshot:
        return AccountSnapshot(
            cash=self._state.cash,
            equity=self.equity,
            positions=tuple(self._state.positions.values()),
            account_id="SIM",
            status="ACTIVE",
        )

    async def close(self) -> None:
        """Refuse further orders; state stays readable for the final report."""
        self._closed = True

    # -- internals -------------------------------------------------------------------------

    def _pending_in_submission_order(self) -> list[_Pending]:
        items = [item for queue in self._pending.values() for item in queue]
        items.sort(key=lambda item: item.seq)
        return items

    def fee(self, qty: float) -> float:
        """The commission on an order of ``qty`` shares."""
        return self._fee_per_order + self._fee_per_share * qty

    @staticmethod
    def _check_quantity(request: OrderRequest) -> str:
        qty = request.qty
        if not math.isfinite(qty) or qty <= 0:
            return "quantity must be positive"
        return ""

    def _check_sell(self, request: OrderRequest) -> str:
        symbol = request.symbol
        pending_sells = sum(
            item.order.qty for item in self._pending.get(symbol, ()) if item.order.side is Side.SELL
        )
        available = self.position_qty(symbol) - pending_sells
        if request.qty > available + QTY_EPS:
            return (
                f"cannot sell {_fmt_qty(request.qty)} {symbol}: "
                f"only {_fmt_qty(max(available, 0.0))} held"
            )
        return ""

    def _check_buy(self, request: OrderRequest) -> tuple[float, str]:
        """Estimate the buy's cost (slippage and fee included) against cash not yet reserved.

        With no price known at all the order is accepted and judged at fill time.
        """
        price = self._last.get(request.symbol, request.estimated_price)
        if price is None or not math.isfinite(price) or price <= 0:
            return 0.0, ""
        need = request.qty * price * (1.0 + self._slip) + self.fee(request.qty)
        have = self._state.cash - self._reserved_cash
        if need > have + CASH_EPS:
            return 0.0, f"insufficient cash: need ${need:,.2f}, have ${max(have, 0.0):,.2f}"
        return need, ""

    def _execute(self, item: _Pending, open_price: float, priced_at: datetime) -> None:
        """Fill one pending order at ``open_price`` or reject it if it no longer fits. The
        fill's time is ``priced_at``, the open the price comes from (the events carry the
        clock's now: when the engine learns of it, at the bar's close)."""
        order = item.order
        self._reserved_cash = max(0.0, self._reserved_cash - item.reserved)
        qty = order.qty
        fee = self.fee(qty)
        now = self._clock.now()
        if order.side is Side.BUY:
            price = open_price * (1.0 + self._slip)
            need = qty * price + fee
            have = self._state.cash
            reason = (
                f"insufficient cash: need ${need:,.2f}, have ${have:,.2f}"
                if need > have + CASH_EPS
                else ""
            )
        else:
            price = open_price * (1.0 - self._slip)
            held = self.position_qty(order.symbol)
            reason = (
                f"cannot sell {_fmt_qty(qty)} {order.symbol}: only {_fmt_qty(held)} held"
                if qty > held + QTY_EPS
                else ""
            )
        if reason:
            rejected = replace(order, status=OrderStatus.REJECTED, reason=reason)
            self._orders[order.order_id] = rejected
            self._listener(OrderUpdated(ts=now, order=rejected))
            return
        fill = Fill(
            order_id=order.order_id,
            client_order_id=order.client_order_id,
            symbol=order.symbol,
            side=order.side,
            qty=qty,
            price=price,
            fee=fee,
            ts=priced_at,
        )
        filled = Order(  # spelled out, not dataclasses.replace: a backtest's hottest object
            order_id=order.order_id,
            client_order_id=order.client_order_id,
            symbol=order.symbol,
            side=order.side,
            qty=order.qty,
            status=OrderStatus.FILLED,
            filled_qty=qty,
            filled_avg_price=price,
            submitted_at=order.submitted_at,
            reason=order.reason,
            filled_at=order.filled_at,
        )
        apply_fill(self._state, fill)
        self._orders[order.order_id] = filled
        self._listener(OrderFilled(ts=now, fill=fill, order=filled))
