# mypy: disable-error-code="union-attr,index"
# (alpaca-py types every answer as "model | raw dict" for raw_data=True; these tests use models)
"""Both websockets against the sandbox, with the real StockDataStream and TradingStream.

Each SDK stream runs its blocking ``run()`` in a thread (the pattern tapewatch uses) and is
stopped from the test thread; ``running_stream`` makes sure no thread outlives its test.
"""

from __future__ import annotations

import itertools
import queue
from collections.abc import Callable
from datetime import UTC, timedelta
from typing import Any

import pytest
from alpaca.data.live import StockDataStream
from alpaca.data.models import Bar
from alpaca.data.requests import StockBarsRequest
from alpaca.data.timeframe import TimeFrame, TimeFrameUnit
from alpaca.trading.enums import OrderSide, TimeInForce, TradeEvent
from alpaca.trading.models import TradeUpdate
from alpaca.trading.requests import MarketOrderRequest
from alpaca.trading.stream import TradingStream

from tapewatch.sandbox import SandboxKey, SandboxThread
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


def _bar_stream(
    sandbox: SandboxThread, *symbols: str, secret: str = SECRET
) -> tuple[StockDataStream, queue.Queue[Bar]]:
    stream = StockDataStream(KEY, secret, url_override=sandbox.data_stream_url)
    received: queue.Queue[Bar] = queue.Queue()

    async def on_bar(bar: Bar | dict[str, Any]) -> None:
        assert isinstance(bar, Bar)
        received.put(bar)

    stream.subscribe_bars(on_bar, *symbols)
    return stream, received


def _take(received: queue.Queue[Bar], count: int, timeout: float = 5.0) -> list[Bar]:
    return [received.get(timeout=timeout) for _ in range(count)]


def _drain(received: queue.Queue[Bar]) -> list[Bar]:
    items = []
    while not received.empty():
        items.append(received.get())
    return items


def _stat(sandbox: SandboxThread, name: str) -> int:
    return int(sandbox_state(sandbox)["stats"].get(name, 0))


def test_stream_delivers_one_minute_bars_matching_rest(sandbox: SandboxThread) -> None:
    stream, received = _bar_stream(sandbox, "AAPL", "SPY")
    with running_stream(stream, sandbox):
        bars = _take(received, 6)
    assert all(isinstance(b, Bar) for b in bars)
    aapl = [b for b in bars if b.symbol == "AAPL"]
    assert len(aapl) >= 2 and {b.symbol for b in bars} == {"AAPL", "SPY"}
    for earlier, later in itertools.pairwise(aapl):
        assert later.timestamp - earlier.timestamp == timedelta(minutes=1)
    first = aapl[0]
    assert first.timestamp.tzinfo is not None and first.timestamp.utcoffset() == timedelta(0)
    assert first.timestamp >= START and first.timestamp.second == 0
    assert isinstance(first.volume, float) and isinstance(first.vwap, float)
    rest = data_client(sandbox).get_stock_bars(
        StockBarsRequest(
            symbol_or_symbols="AAPL",
            timeframe=TimeFrame(1, TimeFrameUnit.Minute),
            start=first.timestamp,
            end=first.timestamp,
        )
    )
    assert rest.data["AAPL"][0].close == first.close  # the stream and REST agree


def test_second_connection_gets_406_and_the_first_keeps_streaming(
    sandbox: SandboxThread, caplog: pytest.LogCaptureFixture
) -> None:
    first, first_bars = _bar_stream(sandbox, "AAPL")
    second, second_bars = _bar_stream(sandbox, "AAPL")
    with running_stream(first, sandbox):
        _take(first_bars, 1)
        with running_stream(second, sandbox):
            wait_for(lambda: _stat(sandbox, "data_error_406") >= 1, what="a 406")
            _take(first_bars, 2)
        assert second_bars.empty()
    assert "connection limit exceeded" in caplog.text  # the SDK only logs it


@pytest.mark.parametrize(
    "settings",
    [{"keys": {KEY: SandboxKey("right")}}, {"faults": {"reject_auth": True}}],
    ids=["wrong-secret", "reject-auth-fault"],
)
def test_stream_auth_failure_is_402(
    make_sandbox: Callable[..., SandboxThread], settings: dict[str, Any]
) -> None:
    sandbox = make_sandbox(**settings)
    stream, received = _bar_stream(sandbox, "AAPL", secret="wrong")
    with running_stream(stream, sandbox):
        wait_for(lambda: _stat(sandbox, "data_error_402") >= 1, what="a 402")
    assert received.empty()


def test_refused_muted_and_dropped_streams(sandbox: SandboxThread) -> None:
    sandbox.apply_faults(data_stream="refuse")
    stream, received = _bar_stream(sandbox, "SPY")
    with running_stream(stream, sandbox):
        wait_for(lambda: _stat(sandbox, "data_error_406") >= 1, what="a refusal")
        sandbox.apply_faults(data_stream="mute")  # the SDK reconnects after its backoff
        wait_for(lambda: sandbox_state(sandbox)["streams"]["data_subscribers"] == 1, 5, "resub")
        assert received.empty()
        sandbox.apply_faults(data_stream="normal")
        _take(received, 2)
        connections = _stat(sandbox, "data_connections")
        sandbox.apply_faults(drop_data_stream=True)
        wait_for(lambda: _stat(sandbox, "data_connections") > connections, 5, "a reconnect")
        _drain(received)
        assert _take(received, 1)[0].symbol == "SPY"


def test_updated_bars_arrive_on_their_own_channel(sandbox: SandboxThread) -> None:
    sandbox.apply_faults(updated_bars=True)
    stream = StockDataStream(KEY, SECRET, url_override=sandbox.data_stream_url)
    bars: queue.Queue[Bar] = queue.Queue()
    updates: queue.Queue[Bar] = queue.Queue()

    async def on_bar(bar: Bar | dict[str, Any]) -> None:
        assert isinstance(bar, Bar)
        bars.put(bar)

    async def on_update(bar: Bar | dict[str, Any]) -> None:
        assert isinstance(bar, Bar)
        updates.put(bar)

    stream.subscribe_bars(on_bar, "AAPL")
    stream.subscribe_updated_bars(on_update, "AAPL")
    with running_stream(stream, sandbox):
        fixed = _take(updates, 1)[0]
    originals = [b for b in _drain(bars) if b.timestamp == fixed.timestamp]
    assert len(originals) == 1  # the bar came first, its correction one minute later
    original = originals[0]
    assert fixed.volume == original.volume + 100 and fixed.close == original.close


def test_trading_stream_receives_new_and_fill(sandbox: SandboxThread) -> None:
    stream = TradingStream(KEY, SECRET, url_override=sandbox.trade_stream_url)
    updates: queue.Queue[TradeUpdate] = queue.Queue()

    async def on_update(update: TradeUpdate) -> None:
        updates.put(update)

    stream.subscribe_trade_updates(on_update)
    with running_stream(stream, sandbox):
        wait_for(lambda: sandbox_state(sandbox)["streams"]["trade_listeners"] == 1, what="listen")
        order = trading_client(sandbox).submit_order(
            MarketOrderRequest(
                symbol="AAPL",
                qty=1.5,
                side=OrderSide.BUY,
                time_in_force=TimeInForce.DAY,
                client_order_id="stream-1",
            )
        )
        new, fill = updates.get(timeout=5), updates.get(timeout=5)
    assert new.event == TradeEvent.NEW and new.order.id == order.id
    assert fill.event == TradeEvent.FILL
    assert fill.order.client_order_id == "stream-1" and fill.order.filled_qty == "1.5"
    assert fill.qty == 1.5 and fill.position_qty == 1.5
    assert fill.price == float(str(fill.order.filled_avg_price))
    assert fill.execution_id is not None
    assert fill.timestamp.tzinfo is not None and fill.timestamp.astimezone(UTC) >= START


def test_trading_stream_rejects_bad_keys(make_sandbox: Callable[..., SandboxThread]) -> None:
    sandbox = make_sandbox(live=True)
    stream = TradingStream("PKPAPER", SECRET, url_override=sandbox.trade_stream_url)

    async def on_update(update: TradeUpdate) -> None:
        raise AssertionError("no update expected")

    stream.subscribe_trade_updates(on_update)
    with running_stream(stream, sandbox):
        wait_for(lambda: _stat(sandbox, "trade_unauthorized") >= 1, what="unauthorized")
