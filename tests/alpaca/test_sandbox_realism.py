# mypy: disable-error-code="union-attr,index,arg-type"
# (alpaca-py types every answer as "model | raw dict" for raw_data=True; these tests use models)
"""The sandbox is never kinder than Alpaca: closed markets, DAY expiry, partial fills,
non-fractionable assets, a POST answer that comes after the stream's fill, notional orders.

Every case drives the sandbox with the real alpaca-py TradingClient, and TradingStream where
the order of events is the point.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import requests
from alpaca.common.exceptions import APIError
from alpaca.data.requests import StockBarsRequest
from alpaca.data.timeframe import TimeFrame
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, OrderStatus, TimeInForce, TradeEvent
from alpaca.trading.models import Order, TradeUpdate
from alpaca.trading.requests import MarketOrderRequest
from alpaca.trading.stream import TradingStream

from tapewatch.sandbox import SandboxThread
from tests.alpaca.conftest import (
    KEY,
    SECRET,
    START,
    data_client,
    running_stream,
    sandbox_state,
    trading_client,
    wait_for,
)

CENT = Decimal("0.01")
CASH = Decimal("100000")
PRE_MARKET = datetime(2024, 3, 5, 13, 0, tzinfo=UTC)  # Tuesday 08:00 in New York
BEFORE_CLOSE = datetime(2024, 3, 5, 20, 55, tzinfo=UTC)  # Tuesday 15:55 in New York
CLOSE = datetime(2024, 3, 5, 21, 0, tzinfo=UTC)  # Tuesday 16:00 in New York


def _order(
    symbol: str = "AAPL",
    qty: float | None = None,
    notional: float | None = None,
    side: OrderSide = OrderSide.BUY,
    tif: TimeInForce = TimeInForce.DAY,
    cid: str | None = None,
) -> MarketOrderRequest:
    return MarketOrderRequest(
        symbol=symbol,
        qty=qty,
        notional=notional,
        side=side,
        time_in_force=tif,
        client_order_id=cid,
    )


class Updates:
    """Trade updates the SDK stream delivered, in arrival order."""

    def __init__(self) -> None:
        self._queue: queue.Queue[TradeUpdate] = queue.Queue()
        self.seen: list[TradeUpdate] = []

    async def handle(self, update: TradeUpdate) -> None:
        self._queue.put(update)

    def drain(self) -> list[TradeUpdate]:
        while True:
            try:
                self.seen.append(self._queue.get_nowait())
            except queue.Empty:
                return self.seen

    def of(self, order_id: object) -> list[TradeUpdate]:
        return [u for u in self.drain() if u.order.id == order_id]

    def wait_event(self, order_id: object, event: TradeEvent, timeout: float = 10.0) -> TradeUpdate:
        found: list[TradeUpdate] = []

        def arrived() -> bool:
            found[:] = [u for u in self.of(order_id) if u.event == event]
            return bool(found)

        wait_for(arrived, timeout=timeout, what=f"{event.value} for {order_id}")
        return found[0]


@contextmanager
def listening(sandbox: SandboxThread) -> Iterator[Updates]:
    """A real TradingStream on the sandbox, listening to trade_updates."""
    stream = TradingStream(KEY, SECRET, url_override=sandbox.trade_stream_url)
    updates = Updates()
    stream.subscribe_trade_updates(updates.handle)
    with running_stream(stream, sandbox):
        wait_for(lambda: sandbox_state(sandbox)["streams"]["trade_listeners"] == 1, what="listen")
        yield updates


def _status(client: TradingClient, order_id: object) -> OrderStatus:
    order = client.get_order_by_id(order_id)
    assert isinstance(order, Order)
    return order.status


def _wait_status(client: TradingClient, order_id: object, status: OrderStatus) -> Order:
    wait_for(lambda: _status(client, order_id) == status, what=f"{order_id} to be {status}")
    order = client.get_order_by_id(order_id)
    assert isinstance(order, Order)
    return order


def _cash(client: TradingClient) -> Decimal:
    return Decimal(str(client.get_account().cash))


def _spent(updates: list[TradeUpdate]) -> Decimal:
    """Cash the fills cost: each execution's qty x price, rounded to the cent as booked."""
    return sum(
        ((Decimal(str(u.qty)) * Decimal(str(u.price))).quantize(CENT) for u in updates),
        Decimal(0),
    )


# -- 1. fill delay ---------------------------------------------------------------------------


def test_fill_delay_holds_the_fill_back_then_fills(
    make_sandbox: Callable[..., SandboxThread],
) -> None:
    delay = 1.0
    sandbox = make_sandbox(bar_interval=0, fill_delay=delay)
    client = trading_client(sandbox)
    with listening(sandbox) as updates:
        sent = time.monotonic()
        order = client.submit_order(_order(qty=2, cid="delay-1"))
        assert order.status == OrderStatus.ACCEPTED and order.filled_qty == "0"
        assert _status(client, order.id) in (OrderStatus.ACCEPTED, OrderStatus.NEW)
        fill = updates.wait_event(order.id, TradeEvent.FILL)
        waited = time.monotonic() - sent
    assert [u.event for u in updates.of(order.id)] == [TradeEvent.NEW, TradeEvent.FILL]
    assert fill.order.filled_qty == "2"
    assert waited >= delay * 0.9  # a lower bound: the venue never fills before the delay


# -- 2. a closed market ----------------------------------------------------------------------


def test_order_sent_before_the_open_waits_accepted_and_fills_at_the_open_price(
    make_sandbox: Callable[..., SandboxThread],
) -> None:
    sandbox = make_sandbox(
        start=PRE_MARKET, fast_forward_closed=False, bar_interval=0, fill_delay=1.0
    )
    client = trading_client(sandbox)
    clock = client.get_clock()
    assert not clock.is_open
    assert clock.next_open.astimezone(UTC) == datetime(2024, 3, 5, 14, 30, tzinfo=UTC)
    with listening(sandbox) as updates:
        order = client.submit_order(_order(qty=3, cid="pre-1"))
        assert order.status == OrderStatus.ACCEPTED
        assert _status(client, order.id) == OrderStatus.ACCEPTED  # no venue, no "new"
        sandbox.apply_faults(advance_minutes=89)  # 09:29: still closed
        assert _status(client, order.id) == OrderStatus.ACCEPTED
        assert updates.of(order.id) == []
        sandbox.apply_faults(advance_minutes=1)  # 09:30: the open
        assert client.get_clock().is_open
        sandbox.apply_faults(advance_minutes=5)  # prices move on before the fill lands
        fill = updates.wait_event(order.id, TradeEvent.FILL)
    assert [u.event for u in updates.of(order.id)] == [TradeEvent.NEW, TradeEvent.FILL]
    bars = data_client(sandbox).get_stock_bars(
        StockBarsRequest(
            symbol_or_symbols="AAPL",
            timeframe=TimeFrame.Minute,
            start=datetime(2024, 3, 5, 14, 30, tzinfo=UTC),
            end=datetime(2024, 3, 5, 14, 31, tzinfo=UTC),
        )
    )
    opening_bar = bars.data["AAPL"][0]
    assert opening_bar.timestamp == datetime(2024, 3, 5, 14, 30, tzinfo=UTC)
    assert Decimal(str(fill.order.filled_avg_price)) == Decimal(str(opening_bar.open))
    assert fill.order.filled_qty == "3"


def test_market_closed_switch_expires_day_orders_queues_new_ones_and_reopens(
    make_sandbox: Callable[..., SandboxThread],
) -> None:
    sandbox = make_sandbox(bar_interval=0, fill_delay=0.05, faults={"hold_fills": True})
    client = trading_client(sandbox)
    with listening(sandbox) as updates:
        working = client.submit_order(_order(qty=1, cid="at-venue"))
        updates.wait_event(working.id, TradeEvent.NEW)
        sandbox.apply_faults(market_closed=True)  # the session closes under a working order
        expired = updates.wait_event(working.id, TradeEvent.EXPIRED)
        clock = client.get_clock()
        assert not clock.is_open
        assert clock.next_open.astimezone(UTC) == datetime(2024, 3, 6, 14, 30, tzinfo=UTC)
        assert clock.next_close > clock.next_open
        assert sandbox_state(sandbox)["market"]["is_open"] is False
        queued = client.submit_order(_order(qty=2, cid="queued"))
        sandbox.apply_faults(hold_fills=False)  # nothing to fill: the market is closed
        assert _status(client, queued.id) == OrderStatus.ACCEPTED
        assert updates.of(queued.id) == []
        sandbox.apply_faults(market_closed=False)
        assert client.get_clock().is_open
        updates.wait_event(queued.id, TradeEvent.FILL)
    assert expired.order.expired_at is not None and expired.order.filled_qty == "0"
    assert _status(client, working.id) == OrderStatus.EXPIRED
    assert [u.event for u in updates.of(queued.id)] == [TradeEvent.NEW, TradeEvent.FILL]
    assert client.get_open_position("AAPL").qty == "2"


# -- 3. DAY orders expire at the close --------------------------------------------------------


def test_open_day_order_expires_at_the_close_and_gtc_survives(
    make_sandbox: Callable[..., SandboxThread],
) -> None:
    sandbox = make_sandbox(start=BEFORE_CLOSE, bar_interval=0, faults={"hold_fills": True})
    client = trading_client(sandbox)
    with listening(sandbox) as updates:
        day = client.submit_order(_order(qty=1, cid="day-1"))
        gtc = client.submit_order(_order("SPY", qty=1, tif=TimeInForce.GTC, cid="gtc-1"))
        updates.wait_event(gtc.id, TradeEvent.NEW)
        sandbox.apply_faults(advance_minutes=4)  # 15:59: still open
        assert _status(client, day.id) == OrderStatus.NEW
        sandbox.apply_faults(advance_minutes=1)  # the close
        event = updates.wait_event(day.id, TradeEvent.EXPIRED)
        assert _status(client, gtc.id) == OrderStatus.NEW
        sandbox.apply_faults(hold_fills=False)
        updates.wait_event(gtc.id, TradeEvent.FILL)
    assert event.order.status == OrderStatus.EXPIRED
    assert event.order.expired_at == CLOSE
    assert event.timestamp == CLOSE
    expired = client.get_order_by_id(day.id)
    assert expired.status == OrderStatus.EXPIRED and expired.expired_at == CLOSE
    assert expired.filled_qty == "0"
    assert [p.symbol for p in client.get_all_positions()] == ["SPY"]


def test_partially_filled_day_order_expires_at_the_close_keeping_its_fill(
    make_sandbox: Callable[..., SandboxThread],
) -> None:
    # a late POST answer makes the first part immediate; the second one is 30 s away
    sandbox = make_sandbox(
        start=BEFORE_CLOSE,
        bar_interval=0,
        partial_fills=2,
        fill_delay=30.0,
        faults={"late_order_response_ms": 100},
    )
    client = trading_client(sandbox)
    with listening(sandbox) as updates:
        order = client.submit_order(_order(qty=4, cid="half-1"))
        part = updates.wait_event(order.id, TradeEvent.PARTIAL_FILL)
        sandbox.apply_faults(advance_minutes=5)
        expired = updates.wait_event(order.id, TradeEvent.EXPIRED)
    assert part.order.filled_qty == "2"
    assert expired.order.filled_qty == "2" and expired.order.expired_at == CLOSE
    assert client.get_open_position("AAPL").qty == "2"
    assert _cash(client) == CASH - _spent([part])


# -- 4. partial fills ------------------------------------------------------------------------


def test_partial_fills_are_cumulative_and_the_account_follows_each(
    make_sandbox: Callable[..., SandboxThread],
) -> None:
    delay, parts = 0.1, 3
    sandbox = make_sandbox(partial_fills=parts, fill_delay=delay, bar_interval=0.05)
    client = trading_client(sandbox)
    with listening(sandbox) as updates:
        sent = time.monotonic()
        order = client.submit_order(_order(qty=10, cid="parts-1"))
        updates.wait_event(order.id, TradeEvent.FILL)
        waited = time.monotonic() - sent
    events = updates.of(order.id)
    assert [u.event for u in events] == [
        TradeEvent.NEW,
        TradeEvent.PARTIAL_FILL,
        TradeEvent.PARTIAL_FILL,
        TradeEvent.FILL,
    ]
    fills = events[1:]
    assert [u.qty for u in fills] == [3, 3, 4]  # whole-share orders fill in whole shares
    assert [u.order.filled_qty for u in fills] == ["3", "6", "10"]
    assert [u.position_qty for u in fills] == [3, 6, 10]
    assert [u.order.status for u in fills] == [
        OrderStatus.PARTIALLY_FILLED,
        OrderStatus.PARTIALLY_FILLED,
        OrderStatus.FILLED,
    ]
    gross = Decimal(0)
    for seen, update in enumerate(fills, start=1):
        gross += Decimal(str(update.qty)) * Decimal(str(update.price))
        average = gross / Decimal(update.order.filled_qty)
        assert abs(Decimal(str(update.order.filled_avg_price)) - average) < Decimal("0.000001")
        assert (update.order.filled_at is None) == (seen < parts)
    assert _cash(client) == CASH - _spent(fills)
    position = client.get_open_position("AAPL")
    assert position.qty == "10" and Decimal(position.cost_basis) == _spent(fills)
    assert waited >= parts * delay * 0.9  # a lower bound: parts are fill_delay apart


def test_cancel_after_a_partial_fill_keeps_what_filled(
    make_sandbox: Callable[..., SandboxThread],
) -> None:
    # a late POST answer makes the first part immediate; the next one is 30 s away
    sandbox = make_sandbox(
        bar_interval=0,
        partial_fills=2,
        fill_delay=30.0,
        faults={"late_order_response_ms": 200},
    )
    client = trading_client(sandbox)
    with listening(sandbox) as updates:
        order = client.submit_order(_order(qty=0.5, cid="cut-1"))
        part = updates.wait_event(order.id, TradeEvent.PARTIAL_FILL)
        client.cancel_order_by_id(order.id)
        updates.wait_event(order.id, TradeEvent.CANCELED)
    assert part.qty == 0.25 and part.order.filled_qty == "0.25"
    canceled = client.get_order_by_id(order.id)
    assert canceled.status == OrderStatus.CANCELED and canceled.filled_qty == "0.25"
    assert client.get_open_position("AAPL").qty == "0.25"
    assert _cash(client) == CASH - _spent([part])
    assert client.get_account().buying_power == client.get_account().cash  # nothing promised


# -- 5. non-fractionable assets and accounts --------------------------------------------------


def _refusal(client: TradingClient, request: MarketOrderRequest) -> APIError:
    with pytest.raises(APIError) as caught:
        client.submit_order(request)
    return caught.value


def test_non_fractionable_asset_refuses_fractions_and_notional(
    make_sandbox: Callable[..., SandboxThread],
) -> None:
    sandbox = make_sandbox(bar_interval=0, non_fractionable=("spy",))
    client = trading_client(sandbox)
    assert client.get_asset("SPY").fractionable is False
    assert client.get_asset("AAPL").fractionable is True
    for request in (_order("SPY", qty=1.5), _order("SPY", notional=100)):
        error = _refusal(client, request)
        assert error.status_code == 422
        assert error.code == 40310000
        assert error.message == "requested asset is not fractionable"
    whole = client.submit_order(_order("SPY", qty=2, cid="whole-1"))
    assert _wait_status(client, whole.id, OrderStatus.FILLED).filled_qty == "2"
    client.submit_order(_order(qty=0.5))  # other assets still take fractions
    sandbox.apply_faults(non_fractionable=["AAPL"])  # the fault switch replaces the list
    assert client.get_asset("AAPL").fractionable is False
    assert client.get_asset("SPY").fractionable is True
    assert _refusal(client, _order(notional=50)).status_code == 422
    client.submit_order(_order("SPY", qty=0.5))


def test_account_without_fractional_trading_refuses_every_fraction(
    make_sandbox: Callable[..., SandboxThread],
) -> None:
    sandbox = make_sandbox(bar_interval=0, fractional_trading=False)
    client = trading_client(sandbox)
    assert client.get_account_configurations().fractional_trading is False
    assert client.get_asset("AAPL").fractionable is True  # the asset could; the account cannot
    for request in (_order(qty=0.1), _order("SPY", notional=25.5)):
        error = _refusal(client, request)
        assert error.status_code == 422 and error.code == 40310000
        assert "fractional" in error.message and "account" in error.message
    filled = client.submit_order(_order(qty=1, cid="acct-whole"))
    _wait_status(client, filled.id, OrderStatus.FILLED)
    sandbox.apply_faults(fractional_trading=True)
    assert client.get_account_configurations().fractional_trading is True
    client.submit_order(_order(qty=0.1))


def test_closing_a_whole_fractional_position_is_never_blocked(
    make_sandbox: Callable[..., SandboxThread],
) -> None:
    sandbox = make_sandbox(bar_interval=0)
    client = trading_client(sandbox)
    bought = client.submit_order(_order(qty=1.5))
    _wait_status(client, bought.id, OrderStatus.FILLED)
    sandbox.apply_faults(fractional_trading=False)
    assert _refusal(client, _order(qty=0.5, side=OrderSide.SELL)).status_code == 422
    closing = client.close_position("AAPL")
    _wait_status(client, closing.id, OrderStatus.FILLED)
    assert client.get_all_positions() == []


# -- 6. the POST answer arrives after the stream's fill ---------------------------------------


def test_late_post_answer_comes_after_the_fill_and_shows_the_order_as_accepted(
    make_sandbox: Callable[..., SandboxThread],
) -> None:
    sandbox = make_sandbox(bar_interval=0, fill_delay=5.0)
    sandbox.apply_faults(late_order_response_ms=1000)
    client = trading_client(sandbox)
    with listening(sandbox) as updates:
        answer = client.submit_order(_order(qty=2, cid="late-1"))
        events_before_answer = [u.event for u in updates.of(answer.id)]
    assert events_before_answer == [TradeEvent.NEW, TradeEvent.FILL]
    assert answer.status == OrderStatus.ACCEPTED
    assert answer.filled_qty == "0" and answer.filled_avg_price is None
    assert answer.filled_at is None
    truth = client.get_order_by_id(answer.id)
    assert truth.status == OrderStatus.FILLED and truth.filled_qty == "2"
    sandbox.apply_faults(late_order_response_ms=0)
    prompt = client.submit_order(_order(qty=1, cid="late-2"))
    assert prompt.status == OrderStatus.ACCEPTED
    assert _status(client, prompt.id) != OrderStatus.FILLED  # fill_delay applies again


# -- 7. notional orders ----------------------------------------------------------------------


def test_notional_order_has_null_qty_and_no_average_price_until_it_fills(
    make_sandbox: Callable[..., SandboxThread],
) -> None:
    sandbox = make_sandbox(bar_interval=0, partial_fills=2, faults={"hold_fills": True})
    client = trading_client(sandbox)
    with listening(sandbox) as updates:
        order = client.submit_order(_order(notional=250, cid="notional-1"))
        assert order.qty is None and order.notional == "250"
        assert order.filled_avg_price is None and order.filled_qty == "0"
        updates.wait_event(order.id, TradeEvent.NEW)
        held = client.get_order_by_id(order.id)
        assert held.qty is None and held.filled_avg_price is None
        raw = requests.get(
            f"{sandbox.trading_url}/v2/orders/{order.id}",
            headers={"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET},
            timeout=5,
        ).json()
        assert raw["qty"] is None and raw["filled_avg_price"] is None and "qty" in raw
        sandbox.apply_faults(hold_fills=False)
        fill = updates.wait_event(order.id, TradeEvent.FILL)
    kinds = [u.event for u in updates.of(order.id)]
    assert kinds == [TradeEvent.NEW, TradeEvent.PARTIAL_FILL, TradeEvent.FILL]
    fills = updates.of(order.id)[1:]
    spent = _spent(fills)
    assert abs(spent - Decimal("250")) <= Decimal("0.02")  # each part rounds to the cent
    assert fill.order.qty is None and fill.order.notional == "250"
    assert Decimal(fill.order.filled_qty) == sum(Decimal(str(u.qty)) for u in fills)
    assert fill.order.filled_avg_price is not None
    assert _cash(client) == CASH - spent


# -- the switches over HTTP -------------------------------------------------------------------


def test_trading_switches_over_http_apply_all_or_nothing(sandbox: SandboxThread) -> None:
    url = f"{sandbox.url}/_sandbox/faults"
    state = requests.post(
        url,
        json={"market_closed": True, "partial_fills": 4, "non_fractionable": ["aapl"]},
        timeout=5,
    ).json()
    faults = state["faults"]
    assert faults["market_closed"] and faults["partial_fills"] == 4
    assert faults["non_fractionable"] == ["AAPL"] and not state["market"]["is_open"]
    for bad in ({"partial_fills": 0}, {"partial_fills": 2.5}, {"late_order_response_ms": -1}):
        answer = requests.post(url, json={"market_closed": False, **bad}, timeout=5)
        assert answer.status_code == 400
    assert requests.get(f"{sandbox.url}/_sandbox/state", timeout=5).json()["faults"][
        "market_closed"
    ]
    reset = requests.post(f"{sandbox.url}/_sandbox/reset", timeout=5).json()
    assert reset["faults"]["partial_fills"] == 1 and reset["market"]["is_open"]
    assert datetime.fromisoformat(reset["market"]["now"]) == START
