"""The contract every ``Broker`` honours, written once and run against each implementation.

The engine treats brokers as interchangeable, so the behaviours it relies on (acknowledge
before fill, rejections as orders rather than exceptions, a duplicate client order id raising
``DuplicateClientOrderId``, cancel-all, exact fractional quantities) are checked here against a
small ``BrokerHarness`` that knows how to move the market and let orders fill on its venue.

A test module supplies a harness fixture and parametrizes over ``CONTRACT``::

    @pytest.mark.parametrize("check", CONTRACT, ids=lambda c: c.__name__)
    async def test_contract(check, harness):
        await check(harness)

Each check expects a fresh harness with no position, no open orders and enough cash for a few
thousand dollars of stock.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Protocol

import pytest

from tapewatch.engine.core.broker import Broker, DuplicateClientOrderId
from tapewatch.engine.model.events import Event, OrderFilled, OrderUpdated
from tapewatch.engine.model.types import Fill, Intent, Order, OrderRequest, OrderStatus, Side


class BrokerHarness(Protocol):
    """What a conformance run needs from a venue besides the broker itself."""

    events: list[Event]
    """Every event the broker's listener received, in order."""

    @property
    def broker(self) -> Broker: ...

    @property
    def symbol(self) -> str: ...

    @property
    def fills_immediately(self) -> bool:
        """True when market orders may fill before the next call returns (a live-like server)."""
        ...

    async def set_price(self, price: float) -> None:
        """Make ``price`` the current market price."""
        ...

    async def settle(self) -> None:
        """Let pending market orders fill at the current price."""
        ...


Check = Callable[[BrokerHarness], Awaitable[None]]


def _money_close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)


def _request(
    h: BrokerHarness, cid: str, side: Side, qty: float, price: float | None = None
) -> OrderRequest:
    intent = Intent.ENTRY if side is Side.BUY else Intent.EXIT
    return OrderRequest(
        client_order_id=cid,
        symbol=h.symbol,
        side=side,
        qty=qty,
        intent=intent,
        estimated_price=price,
    )


def _fills(h: BrokerHarness, cid: str) -> list[Fill]:
    return [
        e.fill for e in h.events if isinstance(e, OrderFilled) and e.fill.client_order_id == cid
    ]


async def _position_qty(h: BrokerHarness) -> float:
    position = (await h.broker.get_positions()).get(h.symbol)
    return 0.0 if position is None else position.qty


async def _order(h: BrokerHarness, cid: str) -> Order:
    order = await h.broker.get_order_by_client_id(cid)
    assert order is not None, f"broker lost order {cid}"
    return order


async def _buy_and_settle(h: BrokerHarness, cid: str, qty: float, price: float) -> Fill:
    order = await h.broker.submit_order(_request(h, cid, Side.BUY, qty, price))
    assert order.status is not OrderStatus.REJECTED, order.reason
    await h.settle()
    fills = _fills(h, cid)
    assert len(fills) == 1, f"expected one fill for {cid}, got {fills}"
    return fills[0]


def _acknowledged(h: BrokerHarness, order: Order) -> None:
    """An order straight from ``submit_order``: open and unfilled (or filled on instant venues)."""
    if h.fills_immediately and order.status is OrderStatus.FILLED:
        return
    assert order.status.is_open, f"expected an open order, got {order.status}: {order.reason}"
    assert order.filled_qty == 0


async def check_buy_is_acknowledged_then_fills(h: BrokerHarness) -> None:
    await h.set_price(100.0)
    before = await h.broker.get_account()
    order = await h.broker.submit_order(_request(h, "ct-buy-1", Side.BUY, 10, 100.0))

    _acknowledged(h, order)
    assert order.order_id
    assert (order.client_order_id, order.symbol, order.side, order.qty) == (
        "ct-buy-1",
        h.symbol,
        Side.BUY,
        10,
    )
    if not h.fills_immediately:
        assert _fills(h, "ct-buy-1") == []
        assert await _position_qty(h) == 0
        assert [o.client_order_id for o in await h.broker.open_orders()] == ["ct-buy-1"]

    await h.settle()

    filled = await _order(h, "ct-buy-1")
    assert filled.order_id == order.order_id
    assert filled.status is OrderStatus.FILLED
    assert filled.filled_qty == 10
    assert filled.filled_avg_price == pytest.approx(100.0)
    assert await h.broker.open_orders() == []

    (fill,) = _fills(h, "ct-buy-1")
    assert (fill.order_id, fill.symbol, fill.side, fill.qty) == (
        order.order_id,
        h.symbol,
        Side.BUY,
        10,
    )
    assert fill.price == pytest.approx(100.0)
    assert fill.fee >= 0
    event = next(e for e in h.events if isinstance(e, OrderFilled) and e.fill == fill)
    assert event.order.status is OrderStatus.FILLED

    position = (await h.broker.get_positions())[h.symbol]
    assert position.qty == 10
    assert position.avg_entry_price == pytest.approx(100.0)
    after = await h.broker.get_account()
    assert _money_close(after.cash, before.cash - 10 * fill.price - fill.fee)


async def check_sell_whole_position_goes_flat(h: BrokerHarness) -> None:
    await h.set_price(50.0)
    await _buy_and_settle(h, "ct-flat-buy", 4, 50.0)
    cash_held = (await h.broker.get_account()).cash

    order = await h.broker.submit_order(_request(h, "ct-flat-sell", Side.SELL, 4, 50.0))
    _acknowledged(h, order)
    await h.settle()

    assert (await _order(h, "ct-flat-sell")).status is OrderStatus.FILLED
    (fill,) = _fills(h, "ct-flat-sell")
    assert fill.side is Side.SELL
    assert fill.qty == 4
    assert h.symbol not in await h.broker.get_positions()
    account = await h.broker.get_account()
    assert account.positions == ()
    assert _money_close(account.cash, cash_held + 4 * fill.price - fill.fee)
    assert _money_close(account.equity, account.cash)


async def check_selling_more_than_held_is_rejected(h: BrokerHarness) -> None:
    await h.set_price(20.0)
    await _buy_and_settle(h, "ct-over-buy", 2, 20.0)
    cash_held = (await h.broker.get_account()).cash

    order = await h.broker.submit_order(_request(h, "ct-over-sell", Side.SELL, 3, 20.0))

    assert order.status is OrderStatus.REJECTED
    assert order.reason
    assert order.filled_qty == 0
    await h.settle()
    assert _fills(h, "ct-over-sell") == []
    assert await _position_qty(h) == 2
    assert _money_close((await h.broker.get_account()).cash, cash_held)
    assert await h.broker.open_orders() == []


async def check_zero_quantity_is_rejected(h: BrokerHarness) -> None:
    await h.set_price(20.0)
    order = await h.broker.submit_order(_request(h, "ct-zero", Side.BUY, 0, 20.0))

    assert order.status is OrderStatus.REJECTED
    assert order.reason
    await h.settle()
    assert _fills(h, "ct-zero") == []
    assert await h.broker.get_positions() == {}
    assert await h.broker.open_orders() == []


async def check_duplicate_client_order_id_raises_and_keeps_the_original(h: BrokerHarness) -> None:
    await h.set_price(30.0)
    first = await h.broker.submit_order(_request(h, "ct-dup", Side.BUY, 3, 30.0))
    assert first.status is not OrderStatus.REJECTED, first.reason

    with pytest.raises(DuplicateClientOrderId) as raised:
        await h.broker.submit_order(_request(h, "ct-dup", Side.BUY, 3, 30.0))
    assert raised.value.client_order_id == "ct-dup"

    found = await _order(h, "ct-dup")
    assert found.order_id == first.order_id
    if not h.fills_immediately:
        assert [o.order_id for o in await h.broker.open_orders()] == [first.order_id]
    await h.settle()
    assert len(_fills(h, "ct-dup")) == 1
    assert await _position_qty(h) == 3


async def check_unknown_client_order_id_is_none(h: BrokerHarness) -> None:
    await h.set_price(30.0)
    assert await h.broker.get_order_by_client_id("ct-never-sent") is None


async def check_cancel_all_orders_cancels_pending_orders(h: BrokerHarness) -> None:
    await h.set_price(40.0)
    order = await h.broker.submit_order(_request(h, "ct-cancel", Side.BUY, 5, 40.0))
    assert order.status is not OrderStatus.REJECTED, order.reason

    cancelled = await h.broker.cancel_all_orders()
    await h.settle()

    final = await _order(h, "ct-cancel")
    assert await h.broker.open_orders() == []
    if final.status is OrderStatus.FILLED:
        # Only a venue that fills at once may beat the cancel; then the fill must be real.
        assert h.fills_immediately, "order filled although it was cancelled before settling"
        assert await _position_qty(h) == 5
        assert len(_fills(h, "ct-cancel")) == 1
        return
    assert final.status is OrderStatus.CANCELLED
    assert final.order_id in {o.order_id for o in cancelled}
    assert all(o.status is OrderStatus.CANCELLED for o in cancelled)
    assert _fills(h, "ct-cancel") == []
    assert await _position_qty(h) == 0
    assert any(
        isinstance(e, OrderUpdated)
        and e.order.client_order_id == "ct-cancel"
        and e.order.status is OrderStatus.CANCELLED
        for e in h.events
    )


async def check_account_equity_is_cash_plus_market_value(h: BrokerHarness) -> None:
    await h.set_price(100.0)
    start = await h.broker.get_account()
    fill = await _buy_and_settle(h, "ct-equity", 10, 100.0)
    await h.set_price(110.0)

    account = await h.broker.get_account()
    (position,) = account.positions
    assert position.symbol == h.symbol
    assert position.last_price == pytest.approx(110.0)
    assert _money_close(account.equity, account.cash + position.qty * position.last_price)
    assert _money_close(account.equity, start.equity - fill.fee + 10 * (110.0 - fill.price))
    assert (await h.broker.get_positions())[h.symbol].last_price == pytest.approx(110.0)


async def check_fractional_quantities_round_trip_exactly(h: BrokerHarness) -> None:
    qty = 0.123456789
    await h.set_price(400.0)
    order = await h.broker.submit_order(_request(h, "ct-frac-buy", Side.BUY, qty, 400.0))
    assert order.qty == qty
    await h.settle()

    (fill,) = _fills(h, "ct-frac-buy")
    assert fill.qty == qty
    assert (await _order(h, "ct-frac-buy")).filled_qty == qty
    assert await _position_qty(h) == qty

    await h.broker.submit_order(_request(h, "ct-frac-sell", Side.SELL, qty, 400.0))
    await h.settle()
    assert _fills(h, "ct-frac-sell")[0].qty == qty
    assert await h.broker.get_positions() == {}


CONTRACT: list[Check] = [
    check_buy_is_acknowledged_then_fills,
    check_sell_whole_position_goes_flat,
    check_selling_more_than_held_is_rejected,
    check_zero_quantity_is_rejected,
    check_duplicate_client_order_id_raises_and_keeps_the_original,
    check_unknown_client_order_id_is_none,
    check_cancel_all_orders_cancels_pending_orders,
    check_account_equity_is_cash_plus_market_value,
    check_fractional_quantities_round_trip_exactly,
]
