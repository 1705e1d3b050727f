"""AlpacaBroker against the sandbox, beyond the shared contract: how each failure of an order
submit is resolved without a second order, fills from trade_updates or look-ups exactly once,
the 207 cancel-all answer, the account book, and the numbers the metrics module reads."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, TimeInForce
from alpaca.trading.requests import MarketOrderRequest

from tapewatch.engine.adapters.alpaca.broker import AlpacaBroker
from tapewatch.engine.adapters.alpaca.clock import BrokerClock
from tapewatch.engine.core.broker import BrokerError, DuplicateClientOrderId
from tapewatch.engine.core.engine import Engine
from tapewatch.engine.model.events import (
    Event,
    OrderFilled,
    OrderIntended,
    OrderSubmitted,
    OrderUpdated,
)
from tapewatch.engine.model.types import Intent, Mode, OrderRequest, OrderStatus, Side
from tapewatch.engine.storage.journal import MemoryJournal
from tapewatch.sandbox import SandboxThread
from tests.alpaca.adapter_helpers import eventually, in_thread, make_broker, stat
from tests.alpaca.conftest import KEY, SECRET
from tests.helpers import STEP, bars_from_closes, small_config


class Sleeps(list[float]):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def quiet_sandbox(make_sandbox: Callable[..., SandboxThread]) -> SandboxThread:
    """A market that stands still (prices fixed), orders filling 10 ms after acceptance."""
    return make_sandbox(bar_interval=0, fill_delay=0.01)


@pytest.fixture
async def broker(quiet_sandbox: SandboxThread) -> AsyncIterator[AlpacaBroker]:
    b = make_broker(quiet_sandbox)
    await b.start()
    await eventually(b.websocket_connected, what="trade_updates")
    yield b
    await b.close()


def fills(events: list[Event], cid: str) -> list[OrderFilled]:
    return [e for e in events if isinstance(e, OrderFilled) and e.fill.client_order_id == cid]


def buy(cid: str, qty: float = 1.0) -> OrderRequest:
    return OrderRequest(cid, "SPY", Side.BUY, qty, Intent.ENTRY)


def sandbox_orders(sandbox: SandboxThread) -> int:
    return int(sandbox.snapshot()["account"]["orders"])  # type: ignore[index]


async def test_submit_returns_before_the_fill_which_comes_from_trade_updates(
    quiet_sandbox: SandboxThread, broker: AlpacaBroker
) -> None:
    events: list[Event] = []
    broker.set_listener(events.append)
    await in_thread(lambda: quiet_sandbox.apply_faults(hold_fills=True))
    order = await broker.submit_order(buy("hold-1", 2))
    assert order.status.is_open and order.filled_qty == 0 and order.filled_avg_price is None
    await asyncio.sleep(0.1)
    assert fills(events, "hold-1") == []
    requests_before = broker.api_request_count()
    await in_thread(lambda: quiet_sandbox.apply_faults(hold_fills=False))
    await eventually(lambda: bool(fills(events, "hold-1")), what="the fill")
    (filled,) = fills(events, "hold-1")
    assert filled.order.status is OrderStatus.FILLED and filled.fill.qty == 2
    assert broker.api_request_count() == requests_before  # it came over the socket


async def test_fractional_orders_go_out_as_day_orders(
    quiet_sandbox: SandboxThread, broker: AlpacaBroker
) -> None:
    gtc = MarketOrderRequest(
        symbol="SPY", qty=0.5, side=OrderSide.BUY, time_in_force=TimeInForce.GTC
    )
    with pytest.raises(APIError) as raised:  # the SDK lets this through; Alpaca refuses it
        TradingClient(KEY, SECRET, url_override=quiet_sandbox.trading_url).submit_order(gtc)
    assert raised.value.status_code == 422 and "DAY" in str(raised.value)
    events: list[Event] = []
    broker.set_listener(events.append)
    order = await broker.submit_order(buy("frac-1", 0.5))
    assert order.status is not OrderStatus.REJECTED, order.reason
    await eventually(lambda: bool(fills(events, "frac-1")), what="the fractional fill")
    assert fills(events, "frac-1")[0].fill.qty == 0.5


async def test_a_lost_order_response_is_found_by_client_id_never_sent_twice(
    quiet_sandbox: SandboxThread, broker: AlpacaBroker
) -> None:
    # The trap: the SDK's own retry of a 504 POST turns a lost response into a 422 duplicate.
    await in_thread(lambda: quiet_sandbox.apply_faults(lose_order_responses=1))
    plain = TradingClient(KEY, SECRET, url_override=quiet_sandbox.trading_url)
    plain._retry_wait = 0
    body = MarketOrderRequest(
        symbol="SPY",
        qty=1,
        side=OrderSide.BUY,
        time_in_force=TimeInForce.DAY,
        client_order_id="trap-1",
    )
    with pytest.raises(APIError) as raised:
        await in_thread(lambda: plain.submit_order(body))
    assert raised.value.status_code == 422 and "client_order_id must be unique" in str(raised.value)
    assert sandbox_orders(quiet_sandbox) == 1
    # Ours: one POST, a 504, a look-up by client order id, the order.
    events: list[Event] = []
    broker.set_listener(events.append)
    await in_thread(lambda: quiet_sandbox.apply_faults(lose_order_responses=1))
    order = await broker.submit_order(buy("lost-1"))
    assert order.client_order_id == "lost-1" and order.order_id
    assert order.status is not OrderStatus.REJECTED
    assert sandbox_orders(quiet_sandbox) == 2  # exactly one more order
    await eventually(lambda: bool(fills(events, "lost-1")), what="the fill")
    await asyncio.sleep(0.1)
    assert len(fills(events, "lost-1")) == 1


async def test_the_engine_sees_an_order_whose_response_was_lost(
    quiet_sandbox: SandboxThread, broker: AlpacaBroker
) -> None:
    journal = MemoryJournal()
    config = small_config(rsi_period=3, sma_period=5)
    bars = bars_from_closes([100, 110, 120, 130, 140, 139.9, 139.8, 139.7])
    clock = BrokerClock(bars[0].ts)  # bars arrive as they close: none is late
    engine = Engine(config, clock=clock, broker=broker, journal=journal, mode=Mode.PAPER)
    await engine.start()
    await in_thread(lambda: quiet_sandbox.apply_faults(lose_order_responses=1))
    for bar in bars:
        clock.observe(bar.ts + STEP)
        await engine.on_bar(bar)
    kinds = [(type(e).__name__) for _, e in journal.events()]
    assert kinds.index("OrderIntended") < kinds.index("OrderSubmitted")
    submitted = next(e for _, e in journal.events() if isinstance(e, OrderSubmitted))
    intent = next(e for _, e in journal.events() if isinstance(e, OrderIntended))
    assert submitted.order.client_order_id == intent.request.client_order_id
    assert submitted.order.order_id  # found by look-up after the 504
    await eventually(lambda: "SPY" in engine.portfolio.positions, what="the fill to land")
    assert sandbox_orders(quiet_sandbox) == 1
    assert stat(quiet_sandbox, "lost_order_responses") == 1
    await engine.stop()


async def test_a_5xx_on_submit_is_looked_up_and_not_resent(
    quiet_sandbox: SandboxThread, broker: AlpacaBroker
) -> None:
    await in_thread(
        lambda: quiet_sandbox.apply_faults(
            rest_error={"status": 500, "path": "/v2/orders", "method": "POST"}
        )
    )
    with pytest.raises(BrokerError) as raised:
        await broker.submit_order(buy("five-1"))
    assert raised.value.retryable and "not resent" in str(raised.value)
    assert sandbox_orders(quiet_sandbox) == 0
    assert stat(quiet_sandbox, "injected_500") == 1


async def test_a_429_on_submit_backs_off_checks_and_sends_once_more(
    quiet_sandbox: SandboxThread,
) -> None:
    sleeps = Sleeps()
    broker = make_broker(quiet_sandbox, sleep=sleeps)
    try:
        await in_thread(
            lambda: quiet_sandbox.apply_faults(
                rest_error={"status": 429, "path": "/v2/orders", "method": "POST"}
            )
        )
        order = await broker.submit_order(buy("busy-1"))
    finally:
        await broker.close()
    assert order.status is not OrderStatus.REJECTED and order.order_id
    assert len(sleeps) == 1 and sandbox_orders(quiet_sandbox) == 1
    assert broker.api_error_counts() == {"429": 1, "404": 1}  # the look-up found nothing


async def test_fills_come_from_look_ups_when_trade_updates_are_silent(
    quiet_sandbox: SandboxThread,
) -> None:
    broker = make_broker(quiet_sandbox, trade_stream=False, poll_after=0.1)
    events: list[Event] = []
    broker.set_listener(events.append)
    await broker.start()
    try:
        await broker.submit_order(buy("poll-1", 3))
        await eventually(lambda: bool(fills(events, "poll-1")), what="a polled fill")
        await asyncio.sleep(0.3)  # later polls must not repeat it
    finally:
        await broker.close()
    (filled,) = fills(events, "poll-1")
    assert filled.fill.qty == 3 and not broker.websocket_connected()


async def test_stream_and_look_ups_together_report_a_fill_once(
    quiet_sandbox: SandboxThread,
) -> None:
    broker = make_broker(quiet_sandbox, poll_after=0.05)
    events: list[Event] = []
    broker.set_listener(events.append)
    await broker.start()
    try:
        await eventually(broker.websocket_connected)
        await in_thread(lambda: quiet_sandbox.apply_faults(hold_fills=True))
        await broker.submit_order(buy("both-1", 2))
        await asyncio.sleep(0.3)  # several look-ups see it open
        await in_thread(lambda: quiet_sandbox.apply_faults(hold_fills=False))
        await eventually(lambda: bool(fills(events, "both-1")))
        await asyncio.sleep(0.3)
    finally:
        await broker.close()
    assert len(fills(events, "both-1")) == 1
    assert broker.api_request_count() >= 3  # the POST and look-ups that saw it open


async def test_cancel_all_parses_the_207_and_reports_each_cancel_once(
    quiet_sandbox: SandboxThread, broker: AlpacaBroker
) -> None:
    events: list[Event] = []
    broker.set_listener(events.append)
    await in_thread(lambda: quiet_sandbox.apply_faults(hold_fills=True))
    for cid in ("cx-1", "cx-2"):
        await broker.submit_order(buy(cid))
    assert [o.client_order_id for o in await broker.open_orders()] == ["cx-1", "cx-2"]
    cancelled = await broker.cancel_all_orders()
    assert sorted(o.client_order_id for o in cancelled) == ["cx-1", "cx-2"]
    assert all(o.status is OrderStatus.CANCELLED for o in cancelled)
    await asyncio.sleep(0.2)  # trade_updates also announces both cancels
    updates = [e for e in events if isinstance(e, OrderUpdated)]
    assert sorted(e.order.client_order_id for e in updates) == ["cx-1", "cx-2"]
    assert await broker.open_orders() == []


async def test_the_account_book_answers_without_rest_and_follows_fills(
    quiet_sandbox: SandboxThread, broker: AlpacaBroker
) -> None:
    first = await broker.get_account()
    count = broker.api_request_count()
    events: list[Event] = []
    broker.set_listener(events.append)
    await broker.submit_order(buy("book-1", 4))
    await eventually(lambda: bool(fills(events, "book-1")))
    price = fills(events, "book-1")[0].fill.price
    account = await broker.get_account()
    assert broker.api_request_count() == count + 1  # the POST only
    assert account.cash == pytest.approx(first.cash - 4 * price, abs=1e-9)
    (position,) = account.positions
    assert (position.symbol, position.qty) == ("SPY", 4)
    fresh = await broker.fetch_account()
    assert fresh.cash == pytest.approx(account.cash, abs=1e-9)
    assert fresh.equity == pytest.approx(account.equity, abs=0.01)


async def test_get_open_position_404_means_no_position(broker: AlpacaBroker) -> None:
    assert await broker.get_position("SPY") is None
    assert broker.api_error_counts() == {"404": 1}


async def test_metrics_read_the_budget_errors_and_socket(
    quiet_sandbox: SandboxThread, broker: AlpacaBroker
) -> None:
    await broker.get_clock()
    await broker.get_positions()
    assert broker.api_request_count() == 2
    assert broker.rate_limit_used_ratio() == pytest.approx(2 / 200)
    assert broker.websocket_connected()
    assert broker.websocket_last_message_age() is None  # no order event yet
    await broker.submit_order(buy("m-1"))
    await eventually(lambda: broker.websocket_last_message_age() is not None)
    age: Any = broker.websocket_last_message_age()
    assert 0 <= age < 1.0
    await in_thread(quiet_sandbox.close_streams)
    await eventually(lambda: not broker.websocket_connected(), what="the drop to show")
    await eventually(broker.websocket_connected, what="the SDK to reconnect")


async def test_a_duplicate_from_an_earlier_run_is_adopted_without_a_phantom_fill(
    quiet_sandbox: SandboxThread, broker: AlpacaBroker
) -> None:
    # Whether this broker's trade stream hears the earlier run's fill depends on when its
    # socket connected; either way the fill must reach the engine at most once, and the
    # duplicate must be adopted by look-up, never sent again.
    events: list[Event] = []
    broker.set_listener(events.append)
    earlier = make_broker(quiet_sandbox)  # the previous process
    await earlier.submit_order(buy("again-1", 2))
    await earlier.close()
    await eventually(lambda: quiet_sandbox.snapshot()["account"]["open_orders"] == 0)  # type: ignore[index]
    with pytest.raises(DuplicateClientOrderId):
        await broker.submit_order(buy("again-1", 2))
    found = await broker.get_order_by_client_id("again-1")
    assert found is not None and found.status is OrderStatus.FILLED
    await asyncio.sleep(0.3)
    assert len(fills(events, "again-1")) <= 1  # never applied twice
    assert sum(f.fill.qty for f in fills(events, "again-1")) in (0.0, 2.0)
