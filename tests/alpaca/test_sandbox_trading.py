# mypy: disable-error-code="union-attr,index"
# (alpaca-py types every answer as "model | raw dict" for raw_data=True; these tests use models)
"""Trading REST against the sandbox, with the real alpaca-py 0.44 TradingClient."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from uuid import UUID

import pytest
from alpaca.common.enums import Sort
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, OrderStatus, QueryOrderStatus, TimeInForce
from alpaca.trading.models import FailedClosePositionDetails, Order
from alpaca.trading.requests import ClosePositionRequest, GetOrdersRequest, MarketOrderRequest

from tapewatch.sandbox import SandboxKey, SandboxThread
from tests.alpaca.conftest import START, trading_client, wait_for


def _buy(qty: float | None = None, cid: str | None = None, **kw: object) -> MarketOrderRequest:
    return MarketOrderRequest(
        symbol=kw.pop("symbol", "AAPL"),
        qty=qty,
        side=kw.pop("side", OrderSide.BUY),
        time_in_force=kw.pop("tif", TimeInForce.DAY),
        client_order_id=cid,
        **kw,
    )


def _filled(client: TradingClient, cid: str) -> Order:
    order: list[Order] = []

    def done() -> bool:
        found = client.get_order_by_client_id(cid)
        assert isinstance(found, Order)
        order[:] = [found]
        return found.status == OrderStatus.FILLED

    wait_for(done, what=f"order {cid} to fill")
    return order[0]


def test_account_clock_and_empty_positions_parse(trading: TradingClient) -> None:
    account = trading.get_account()
    assert account.cash == "100000"
    assert account.pattern_day_trader is None  # Alpaca dropped the PDT fields
    clock = trading.get_clock()
    assert clock.is_open
    assert clock.timestamp.utcoffset() == timedelta(hours=-5)  # New York time, like Alpaca
    assert clock.next_close.hour == 16 and clock.next_close.date() == START.date()
    assert clock.next_open.hour == 9 and clock.next_open.minute == 30
    assert clock.next_open.date() == START.date() + timedelta(days=1)
    assert trading.get_all_positions() == []


def test_fractional_market_order_is_accepted_then_fills_into_a_position(
    trading: TradingClient,
) -> None:
    order = trading.submit_order(_buy(0.5, "frac-1"))
    assert order.status == OrderStatus.ACCEPTED
    assert order.filled_qty == "0" and order.filled_avg_price is None
    filled = _filled(trading, "frac-1")
    assert filled.id == order.id
    assert filled.filled_qty == "0.5"
    price = Decimal(str(filled.filled_avg_price))
    position = trading.get_open_position("AAPL")
    assert position.qty == "0.5"
    assert Decimal(position.avg_entry_price) == price
    cash = Decimal(str(trading.get_account().cash))
    assert cash == Decimal("100000") - (price / 2).quantize(Decimal("0.01"))
    assert trading.get_order_by_id(order.id).status == OrderStatus.FILLED


def test_notional_order_fills_a_fractional_quantity(trading: TradingClient) -> None:
    order = trading.submit_order(
        MarketOrderRequest(
            symbol="SPY", notional=100.25, side=OrderSide.BUY, time_in_force=TimeInForce.DAY
        )
    )
    assert order.notional == "100.25" and order.qty is None
    filled = _filled(trading, order.client_order_id)
    qty = Decimal(str(filled.filled_qty))
    assert 0 < qty * Decimal(str(filled.filled_avg_price)) <= Decimal("100.25")


def test_fractional_gtc_order_is_refused_with_42210000(trading: TradingClient) -> None:
    with pytest.raises(APIError) as caught:
        trading.submit_order(_buy(0.5, tif=TimeInForce.GTC))
    assert caught.value.status_code == 422
    assert caught.value.code == 42210000
    assert caught.value.message == "fractional orders must be DAY orders"


def test_duplicate_client_order_id_is_422_40010001(trading: TradingClient) -> None:
    trading.submit_order(_buy(1, "dup-1"))
    with pytest.raises(APIError) as caught:
        trading.submit_order(_buy(1, "dup-1"))
    assert caught.value.status_code == 422
    assert caught.value.code == 40010001
    assert caught.value.message == "client_order_id must be unique"


def test_open_position_without_one_is_404_40410000(trading: TradingClient) -> None:
    with pytest.raises(APIError) as caught:
        trading.get_open_position("AAPL")
    assert caught.value.status_code == 404
    assert caught.value.code == 40410000


def test_selling_more_than_held_and_overspending_are_403(trading: TradingClient) -> None:
    trading.submit_order(_buy(2, "own-2"))
    _filled(trading, "own-2")
    with pytest.raises(APIError) as caught:
        trading.submit_order(_buy(3, side=OrderSide.SELL))  # would flip 2 long to 1 short
    assert caught.value.status_code == 403 and caught.value.code == 40310000
    assert "insufficient qty available" in caught.value.message
    with pytest.raises(APIError) as caught:
        trading.submit_order(_buy(10_000))
    assert caught.value.status_code == 403 and caught.value.message == "insufficient buying power"


def test_orders_listing_filters_and_orders(trading: TradingClient) -> None:
    for cid, symbol in (("l-1", "AAPL"), ("l-2", "SPY"), ("l-3", "AAPL")):
        trading.submit_order(_buy(1, cid, symbol=symbol))
        _filled(trading, cid)
    assert trading.get_orders() == []  # the default is open orders only
    every = trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL))
    assert [o.client_order_id for o in every] == ["l-3", "l-2", "l-1"]  # newest first
    aapl = trading.get_orders(
        GetOrdersRequest(status=QueryOrderStatus.ALL, symbols=["AAPL"], direction=Sort.ASC, limit=1)
    )
    assert [o.client_order_id for o in aapl] == ["l-1"]
    later = trading.get_orders(
        GetOrdersRequest(status=QueryOrderStatus.CLOSED, after=every[-1].submitted_at)
    )
    assert {o.client_order_id for o in later} == {"l-2", "l-3"}
    with pytest.raises(APIError) as caught:
        trading.get_order_by_client_id("never-sent")
    assert caught.value.status_code == 404


def test_cancels_answer_207_204_422_and_404(sandbox: SandboxThread, trading: TradingClient) -> None:
    sandbox.apply_faults(hold_fills=True)
    first = trading.submit_order(_buy(1, "c-1"))
    trading.submit_order(_buy(1, "c-2"))
    trading.cancel_order_by_id(first.id)  # 204: the SDK returns None
    assert trading.get_order_by_id(first.id).status == OrderStatus.CANCELED
    with pytest.raises(APIError) as caught:
        trading.cancel_order_by_id(first.id)
    assert caught.value.status_code == 422
    with pytest.raises(APIError) as caught:
        trading.cancel_order_by_id(UUID(int=1))
    assert caught.value.status_code == 404
    responses = trading.cancel_orders()
    assert [r.status for r in responses] == [200]
    assert trading.get_orders() == []


def test_close_all_positions_parses_207_including_failures(
    sandbox: SandboxThread, trading: TradingClient
) -> None:
    for cid, symbol in (("p-1", "AAPL"), ("p-2", "SPY")):
        trading.submit_order(_buy(2, cid, symbol=symbol))
        _filled(trading, cid)
    sandbox.apply_faults(hold_fills=True)
    trading.submit_order(_buy(2, "hold-sell", side=OrderSide.SELL))  # holds all AAPL
    results = {r.symbol: r for r in trading.close_all_positions()}
    assert results["AAPL"].status == 403
    assert isinstance(results["AAPL"].body, FailedClosePositionDetails)
    assert results["AAPL"].body.code == 40310000 and results["AAPL"].body.held_for_orders == 2
    assert results["SPY"].status == 200 and isinstance(results["SPY"].body, Order)
    trading.cancel_orders()
    results = {r.symbol: r for r in trading.close_all_positions(cancel_orders=True)}
    assert results["AAPL"].status == 200
    sandbox.apply_faults(hold_fills=False)
    wait_for(lambda: trading.get_all_positions() == [], what="positions to close")


def test_a_fill_the_cash_no_longer_covers_is_rejected(
    make_sandbox: Callable[..., SandboxThread],
) -> None:
    sandbox = make_sandbox(bar_interval=0, faults={"hold_fills": True})
    client = trading_client(sandbox)
    client.submit_order(_buy(400, "big-1"))  # about 75,000 of 100,000 at submit time
    sandbox.apply_faults(set_price={"AAPL": 300.0})  # now 120,000
    sandbox.apply_faults(hold_fills=False)
    wait_for(lambda: client.get_order_by_client_id("big-1").status == OrderStatus.REJECTED)
    rejected = client.get_order_by_client_id("big-1")
    assert rejected.failed_at is not None and rejected.filled_qty == "0"
    assert client.get_account().cash == "100000"


def test_close_position_with_a_quantity(trading: TradingClient) -> None:
    trading.submit_order(_buy(3, "cp-1"))
    _filled(trading, "cp-1")
    order = trading.close_position("AAPL", ClosePositionRequest(qty="1"))
    assert order.side == OrderSide.SELL and order.qty == "1"
    wait_for(lambda: trading.get_open_position("AAPL").qty == "2", what="partial close")


def test_lost_order_response_ends_in_422_and_exactly_one_order(
    sandbox: SandboxThread, trading: TradingClient
) -> None:
    sandbox.apply_faults(lose_order_responses=1)
    with pytest.raises(APIError) as caught:
        trading.submit_order(_buy(1, "lost-1"))  # 504, retried by the SDK, then duplicate
    assert caught.value.status_code == 422
    assert caught.value.code == 40010001
    orders = trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL))
    assert [o.client_order_id for o in orders] == ["lost-1"]
    assert trading.get_order_by_client_id("lost-1").id == orders[0].id
    assert sandbox.snapshot()["stats"]["lost_order_responses"] == 1


def test_set_price_makes_the_next_fill_price(make_sandbox: Callable[..., SandboxThread]) -> None:
    sandbox = make_sandbox(bar_interval=0)  # no ticks between setting and filling
    client = trading_client(sandbox)
    sandbox.apply_faults(set_price={"AAPL": 123.45})
    client.submit_order(_buy(1, "px-1"))
    assert _filled(client, "px-1").filled_avg_price == "123.45"


def test_manual_clock_advances_only_on_request(make_sandbox: Callable[..., SandboxThread]) -> None:
    sandbox = make_sandbox(bar_interval=0)
    client = trading_client(sandbox)
    assert client.get_clock().timestamp == START
    sandbox.apply_faults(advance_minutes=30)
    assert client.get_clock().timestamp == START + timedelta(minutes=30)
    sandbox.apply_faults(advance_minutes=360)  # 330 to the close, then on from the next open
    assert client.get_clock().timestamp == START + timedelta(days=1)


def test_bad_and_wrong_environment_keys_are_401(make_sandbox: Callable[..., SandboxThread]) -> None:
    live = make_sandbox(live=True)
    with pytest.raises(APIError) as caught:
        trading_client(live, key="PKPAPERKEY").get_account()  # a paper key on a live endpoint
    assert caught.value.status_code == 401 and caught.value.code == 40110000
    assert trading_client(live, key="AKLIVEKEY").get_account().status.value == "ACTIVE"
    keyed = make_sandbox(keys={"K1": SandboxKey("right")})
    with pytest.raises(APIError) as caught:
        trading_client(keyed, key="K1", secret="wrong").get_account()
    assert caught.value.status_code == 401
    assert trading_client(keyed, key="K1", secret="right").get_account().currency == "USD"
