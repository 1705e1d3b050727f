"""The sandbox's one brokerage account: cash, long positions, orders and their fills.

A cash account (multiplier 1, no shorting): buys need cash not already promised to open buys,
sells need shares not already held for open sells, so one order can never flip a position
through zero. Orders are acknowledged ``accepted``; the server then calls ``activate``, ``fill``
(once per part: ``partial_fill`` events, then ``fill``) and ``expire`` on its loop, and every
change is announced as a trade_updates event via ``emit``. Fractional orders pass ``refuse``
first: the account or the asset may not allow them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal

from tapewatch.sandbox.market import Market
from tapewatch.sandbox.order_rules import OrderRequest
from tapewatch.sandbox.orders import ZERO, IdSource, Order, asset_id
from tapewatch.sandbox.wire import ApiError, decimal_text, money, timestamp

CENT = Decimal("0.01")
QTY_STEP = Decimal("0.000000001")
_EXCHANGES = {"SPY": "ARCA", "AAPL": "NASDAQ"}

Emit = Callable[[dict[str, object]], None]
Refusal = Callable[[str], str | None]  # symbol -> why a fractional order is refused, or None


@dataclass
class Holding:
    qty: Decimal
    cost: Decimal  # cost basis of the shares still held


def _position_missing() -> ApiError:
    return ApiError(404, 40410000, "position does not exist")


class Account:
    def __init__(
        self,
        *,
        account_id: str,
        starting_cash: Decimal,
        market: Market,
        ids: IdSource,
        now: Callable[[], datetime],
        emit: Emit,
        on_accepted: Callable[[Order], None],
        refuse_fraction: Refusal = lambda symbol: None,
    ) -> None:
        self.id = account_id
        self.starting_cash = starting_cash
        self.cash = starting_cash
        self._market = market
        self._ids = ids
        self._now = now
        self._emit = emit
        self._on_accepted = on_accepted
        self._refuse_fraction = refuse_fraction
        self.holdings: dict[str, Holding] = {}
        self.orders: dict[str, Order] = {}
        self.max_exposure_ratio = 0.0  # largest exposure seen at a buy, in entries (see below)
        self._by_client_id: dict[str, Order] = {}
        self._created = now()

    # -- prices and reservations -----------------------------------------------------------

    def _price(self, symbol: str) -> Decimal:
        return Decimal(str(self._market.price(symbol)))

    def _estimate_qty(self, order: Order) -> Decimal:
        if order.qty is not None:
            return order.qty
        assert order.notional is not None
        return (order.notional / self._price(order.symbol)).quantize(QTY_STEP, ROUND_DOWN)

    def _open(self, side: str, symbol: str | None = None) -> Iterable[Order]:
        for order in self.orders.values():
            if order.is_open and order.side == side and symbol in (None, order.symbol):
                yield order

    def _unfilled_cost(self, order: Order) -> Decimal:
        if order.notional is not None:
            return max(order.notional - order.gross, ZERO)
        return ((order.qty or ZERO) - order.filled_qty) * self._price(order.symbol)

    def buying_power(self) -> Decimal:
        promised = sum((self._unfilled_cost(o) for o in self._open("buy")), ZERO)
        return self.cash - promised

    def held_for_orders(self, symbol: str) -> Decimal:
        return sum(
            (max(self._estimate_qty(o) - o.filled_qty, ZERO) for o in self._open("sell", symbol)),
            ZERO,
        )

    # -- orders ----------------------------------------------------------------------------

    def submit(self, request: OrderRequest, *, closing: bool = False) -> Order:
        """Accept an order or raise the ApiError Alpaca would answer.

        ``closing``: liquidating a whole position, which fractional rules never block.
        """
        if not self._market.knows(request.symbol):
            raise ApiError(422, 40010001, f"asset {request.symbol!r} not found")
        if request.fractional and not closing:
            reason = self._refuse_fraction(request.symbol)
            if reason is not None:
                raise ApiError(422, 40310000, reason)
        if request.client_order_id is not None and request.client_order_id in self._by_client_id:
            raise ApiError(422, 40010001, "client_order_id must be unique")
        now = self._now()
        order = Order(
            id=self._ids.new(),
            client_order_id=request.client_order_id or self._ids.new(),
            symbol=request.symbol,
            side=request.side,
            qty=request.qty,
            notional=request.notional,
            time_in_force=request.time_in_force,
            extended_hours=request.extended_hours,
            submitted_at=now,
            seq=len(self.orders),
        )
        if order.side == "buy":
            cost = order.notional or (order.qty or ZERO) * self._price(order.symbol)
            if cost > self.buying_power():
                raise ApiError(403, 40310000, "insufficient buying power")
        else:
            self._check_available(order.symbol, self._estimate_qty(order))
        self.orders[order.id] = order
        self._by_client_id[order.client_order_id] = order
        if order.side == "buy":
            self._note_exposure(order)
        self._on_accepted(order)
        return order

    def _note_exposure(self, entry: Order) -> None:
        """How many entries' worth the account is exposed to once this buy is accepted:
        position plus every open buy's remainder, over this buy's size. A client that stacks
        entries while one waits for its fill shows up here as more than 1."""
        size = self._estimate_qty(entry)
        if size <= 0:
            return
        holding = self.holdings.get(entry.symbol)
        exposure = (holding.qty if holding else ZERO) + sum(
            (
                max(self._estimate_qty(o) - o.filled_qty, ZERO)
                for o in self._open("buy", entry.symbol)
            ),
            ZERO,
        )
        self.max_exposure_ratio = max(self.max_exposure_ratio, float(exposure / size))

    def _check_available(self, symbol: str, wanted: Decimal) -> None:
        holding = self.holdings.get(symbol)
        existing = holding.qty if holding else ZERO
        held = self.held_for_orders(symbol)
        available = existing - held
        if wanted > available:
            raise ApiError(
                403,
                40310000,
                f"insufficient qty available for order (requested: {decimal_text(wanted)}, "
                f"available: {decimal_text(available)})",
                available=decimal_text(available),
                existing_qty=decimal_text(existing),
                held_for_orders=decimal_text(held),
                symbol=symbol,
            )

    def _event(self, event: str, order: Order, **extra: object) -> None:
        self._emit(
            {
                "event": event,
                "timestamp": timestamp(order.updated_at),
                "order": order.to_wire(),
                **extra,
            }
        )

    def activate(self, order: Order) -> None:
        """The venue has the order: accepted -> new."""
        if order.status == "accepted":
            order.touch("new", self._now())
            self._event("new", order)

    def _part_qty(self, order: Order, price: Decimal) -> Decimal:
        """What the next fill executes: an equal share of what is left (all of it, last)."""
        parts_left = max(order.parts - order.fills, 1)
        if order.qty is not None:
            left = order.qty - order.filled_qty
            if parts_left == 1:
                return left
            if order.whole_shares:  # whole-share orders fill in whole shares
                return max((left / parts_left).to_integral_value(ROUND_DOWN), min(left, Decimal(1)))
            part = (left / parts_left).quantize(QTY_STEP, ROUND_DOWN)
            return part if part > 0 else left
        assert order.notional is not None
        budget = order.notional - order.gross
        if parts_left > 1:
            budget = (budget / parts_left).quantize(CENT, ROUND_DOWN)
        return (budget / price).quantize(QTY_STEP, ROUND_DOWN)

    def _complete(self, order: Order) -> bool:
        if order.qty is not None:
            return order.filled_qty >= order.qty
        return order.fills >= order.parts

    def fill(self, order: Order, price: Decimal | None = None) -> None:
        """Execute the next part of an open market order at ``price`` (default: now).

        A part the account cannot settle (no cash, no shares) rejects the order, or cancels
        the rest of it if some already filled.
        """
        if not order.is_open:
            return
        now = self._now()
        price = self._price(order.symbol) if price is None else price
        holding = self.holdings.get(order.symbol)
        qty = self._part_qty(order, price)
        if order.notional is not None and order.side == "sell" and holding is not None:
            qty = min(qty, holding.qty)
        amount = (qty * price).quantize(CENT, ROUND_HALF_EVEN)
        short = order.side == "sell" and (holding is None or qty > holding.qty)
        if qty <= 0 or short or (order.side == "buy" and amount > self.cash):
            if order.filled_qty > 0:
                order.canceled_at = now
                order.touch("canceled", now)
                self._event("canceled", order)
            else:
                order.failed_at = now
                order.touch("rejected", now)
                self._event("rejected", order)
            return
        if order.side == "buy":
            holding = self.holdings.setdefault(order.symbol, Holding(ZERO, ZERO))
            holding.qty += qty
            holding.cost += amount
            self.cash -= amount
        else:
            assert holding is not None
            holding.cost -= (holding.cost * qty / holding.qty).quantize(CENT, ROUND_HALF_EVEN)
            holding.qty -= qty
            self.cash += amount
            if holding.qty == 0:
                del self.holdings[order.symbol]
        order.add_fill(qty, price)
        done = self._complete(order)
        if done:
            order.filled_at = now
        order.touch("filled" if done else "partially_filled", now)
        position = self.holdings.get(order.symbol)
        self._event(
            "fill" if done else "partial_fill",
            order,
            execution_id=self._ids.new(),
            price=decimal_text(price),
            qty=decimal_text(qty),
            position_qty=decimal_text(position.qty if position else ZERO),
        )

    def expire(self, order: Order, when: datetime) -> None:
        """The session closed with the order still open: it ends ``expired`` (fills kept)."""
        if not order.is_open:
            return
        order.expired_at = when
        order.touch("expired", when)
        self._event("expired", order)

    def find(self, order_id: str) -> Order:
        order = self.orders.get(order_id)
        if order is None:
            raise ApiError(404, 40410000, "order not found")
        return order

    def find_by_client_id(self, client_order_id: str) -> Order:
        order = self._by_client_id.get(client_order_id)
        if order is None:
            raise ApiError(404, 40410000, "order not found")
        return order

    def cancel(self, order_id: str) -> Order:
        order = self.find(order_id)
        if not order.is_open:
            raise ApiError(422, 42210000, f"order is not cancelable (status: {order.status})")
        now = self._now()
        order.canceled_at = now
        order.touch("canceled", now)
        self._event("canceled", order)
        return order

    def cancel_all(self) -> list[dict[str, object]]:
        """DELETE /v2/orders: one 207 entry per open order."""
        open_orders = sorted((o for o in self.orders.values() if o.is_open), key=lambda o: o.seq)
        return [
            {"id": o.id, "status": 200, "body": self.cancel(o.id).to_wire()} for o in open_orders
        ]

    def list_orders(
        self,
        *,
        status: str = "open",
        limit: int = 50,
        after: datetime | None = None,
        until: datetime | None = None,
        ascending: bool = False,
        symbols: set[str] | None = None,
        side: str | None = None,
    ) -> list[Order]:
        chosen = [
            o
            for o in self.orders.values()
            if (status == "all" or o.is_open == (status == "open"))
            and (after is None or o.submitted_at > after)
            and (until is None or o.submitted_at < until)
            and (symbols is None or o.symbol in symbols)
            and (side is None or o.side == side)
        ]
        chosen.sort(key=lambda o: (o.submitted_at, o.seq), reverse=not ascending)
        return chosen[:limit]

    # -- positions -------------------------------------------------------------------------

    def close_position(
        self, symbol: str, qty: Decimal | None = None, percentage: Decimal | None = None
    ) -> Order:
        """DELETE /v2/positions/{symbol}: a market sell for all, ``qty`` or ``percentage``."""
        holding = self.holdings.get(symbol)
        if holding is None:
            raise _position_missing()
        amount = holding.qty
        if qty is not None:
            amount = qty
        elif percentage is not None:
            amount = (holding.qty * percentage / 100).quantize(QTY_STEP, ROUND_DOWN)
        request = OrderRequest(symbol, "sell", amount, None, "day", None, False)
        return self.submit(request, closing=amount == holding.qty)

    def close_all(self, cancel_orders: bool) -> list[dict[str, object]]:
        """DELETE /v2/positions: one 207 entry per position, failures included."""
        if cancel_orders:
            self.cancel_all()
        results: list[dict[str, object]] = []
        for symbol in sorted(self.holdings):
            try:
                order = self.close_position(symbol)
            except ApiError as error:
                results.append({"symbol": symbol, "status": error.status, "body": error.body})
            else:
                results.append(
                    {"symbol": symbol, "status": 200, "order_id": order.id, "body": order.to_wire()}
                )
        return results

    def position(self, symbol: str) -> dict[str, object]:
        holding = self.holdings.get(symbol)
        if holding is None:
            raise _position_missing()
        price = self._price(symbol)
        lastday = Decimal(str(self._market.lastday_price(symbol)))
        value = holding.qty * price
        pnl = value - holding.cost
        intraday = (price - lastday) * holding.qty
        return {
            "asset_id": asset_id(symbol),
            "symbol": symbol,
            "exchange": _EXCHANGES.get(symbol, "NYSE"),
            "asset_class": "us_equity",
            "asset_marginable": True,
            "avg_entry_price": money(holding.cost / holding.qty),
            "qty": decimal_text(holding.qty),
            "qty_available": decimal_text(holding.qty - self.held_for_orders(symbol)),
            "side": "long",
            "market_value": money(value),
            "cost_basis": money(holding.cost),
            "unrealized_pl": money(pnl),
            "unrealized_plpc": money(pnl / holding.cost) if holding.cost else "0",
            "unrealized_intraday_pl": money(intraday),
            "unrealized_intraday_plpc": money(intraday / (lastday * holding.qty)),
            "current_price": decimal_text(price),
            "lastday_price": decimal_text(lastday),
            "change_today": money((price - lastday) / lastday),
        }

    def positions(self) -> list[dict[str, object]]:
        return [self.position(symbol) for symbol in sorted(self.holdings)]

    def account(self) -> dict[str, object]:
        long_value = sum((h.qty * self._price(s) for s, h in self.holdings.items()), ZERO).quantize(
            CENT
        )
        equity = self.cash + long_value
        power = money(self.buying_power())
        return {
            "id": self.id,
            "account_number": "SANDBOX" + self.id[:8].upper(),
            "status": "ACTIVE",
            "crypto_status": "INACTIVE",
            "currency": "USD",
            "buying_power": power,
            "regt_buying_power": power,
            "non_marginable_buying_power": power,
            "options_buying_power": power,
            "cash": money(self.cash),
            "accrued_fees": "0",
            "portfolio_value": money(equity),
            "equity": money(equity),
            "last_equity": money(self.starting_cash),
            "long_market_value": money(long_value),
            "short_market_value": "0",
            "initial_margin": "0",
            "maintenance_margin": "0",
            "last_maintenance_margin": "0",
            "multiplier": "1",
            "sma": "0",
            "shorting_enabled": False,
            "trading_blocked": False,
            "transfers_blocked": False,
            "account_blocked": False,
            "trade_suspended_by_user": False,
            "created_at": timestamp(self._created),
            "options_approved_level": 0,
            "options_trading_level": 0,
        }
