"""The REST layer against the sandbox: one retry policy (the SDK's hidden retries are off),
timeouts, connection errors, HTML bodies, the request budget, endpoints and string numbers."""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import alpaca.common.exceptions as sdk_exceptions
import pydantic
import pytest
import requests
from alpaca.common.exceptions import APIError
from alpaca.data.enums import DataFeed
from alpaca.data.live import StockDataStream
from alpaca.data.requests import StockBarsRequest
from alpaca.data.timeframe import TimeFrame, TimeFrameUnit
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import TimeInForce
from alpaca.trading.stream import TradingStream

from tapewatch.engine.adapters.alpaca.endpoints import default_endpoints, resolve_endpoints
from tapewatch.engine.adapters.alpaca.errors import AlpacaApiError, api_code, api_message, classify
from tapewatch.engine.adapters.alpaca.mapping import (
    data_feed,
    market_order,
    order_status,
    sdk_timeframe,
    to_account,
    to_order,
    to_position,
)
from tapewatch.engine.adapters.alpaca.rate import RequestBudget
from tapewatch.engine.adapters.alpaca.rest import RestCaller, RetryPolicy, harden
from tapewatch.engine.core.broker import BrokerError
from tapewatch.engine.model.types import Intent, Mode, OrderRequest, OrderStatus, Side, Timeframe
from tapewatch.engine.settings.config import ConfigError
from tapewatch.sandbox import SandboxThread
from tests.alpaca.adapter_helpers import sandbox_env, stat
from tests.alpaca.conftest import KEY, SECRET


class Sleeps(list[float]):
    """Records the backoff waits instead of sleeping them."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def caller(sandbox: SandboxThread, **options: Any) -> RestCaller[TradingClient]:
    settings: dict[str, Any] = {"budget": RequestBudget(), "timeout": 2.0}
    settings.update(options)
    url = sandbox.trading_url
    return RestCaller("trading", lambda: TradingClient(KEY, SECRET, url_override=url), **settings)


def hardened(sandbox: SandboxThread) -> TradingClient:
    client = TradingClient(KEY, SECRET, url_override=sandbox.trading_url)
    return harden(client, timeout=2.0, budget=RequestBudget())


# -- 429: no RateLimitError, one policy -------------------------------------------------------


async def test_a_429_is_an_api_error_retried_by_our_backoff_with_the_budget_from_headers(
    sandbox: SandboxThread,
) -> None:
    assert not hasattr(sdk_exceptions, "RateLimitError")  # APIError with status 429 only
    sandbox.apply_faults(rest_error={"status": 429, "count": 2, "path": "/v2/account"})
    sleeps = Sleeps()
    budget = RequestBudget()
    rest = caller(sandbox, budget=budget, sleep=sleeps, rng=random.Random(3))
    try:
        account: Any = await rest.call("GET /v2/account", lambda c: c.get_account())
    finally:
        rest.close()
    assert account.cash == "100000"
    assert len(sleeps) == 2
    assert 1.0 <= sleeps[0] <= 1.25 and 2.0 <= sleeps[1] <= 2.5  # 1, 2, 4 … with jitter
    assert stat(sandbox, "rest_requests") == 3  # the SDK added no hidden attempts
    assert rest.errors == {"429": 2}
    assert budget.total == 3 and budget.used_in_window() == 3
    assert budget.server_view() == (200, 197)  # X-RateLimit-Limit / -Remaining
    assert budget.used_ratio() == pytest.approx(3 / 200)


def test_backoff_doubles_with_jitter_and_stops_at_the_cap() -> None:
    policy = RetryPolicy()
    rng = random.Random(7)
    waits = [policy.wait(429, n, rng) for n in range(1, 10)]
    for n, wait in enumerate(waits[:6], start=1):
        assert 2 ** (n - 1) <= wait <= 1.25 * 2 ** (n - 1)
    assert waits[-1] == 60.0 and max(waits) <= 60.0
    assert policy.attempts(429) == 6 and policy.attempts(503) == 3


def test_the_sdk_own_blocking_retries_are_switched_off(sandbox: SandboxThread) -> None:
    plain = TradingClient(KEY, SECRET, url_override=sandbox.trading_url)
    plain._retry_wait = 0
    sandbox.apply_faults(rest_error={"status": 504, "count": 10, "path": "/v2/clock"})
    with pytest.raises(APIError):
        plain.get_clock()
    assert stat(sandbox, "rest_requests") == 4  # the SDK's default: 1 + 3 hidden retries
    client = hardened(sandbox)
    assert (client._retry, client._retry_codes) == (0, [])
    started = time.monotonic()
    with pytest.raises(APIError):
        client.get_clock()
    assert stat(sandbox, "rest_requests") == 5  # exactly one more request
    assert time.monotonic() - started < 1.0


# -- timeouts, connection errors, odd bodies --------------------------------------------------


async def test_a_hung_server_hits_our_timeout(sandbox: SandboxThread) -> None:
    sandbox.apply_faults(latency_ms=1500)
    sleeps = Sleeps()
    policy = RetryPolicy(server_error_attempts=2)
    rest = caller(sandbox, timeout=0.2, policy=policy, sleep=sleeps)
    started = time.monotonic()
    try:
        with pytest.raises(BrokerError) as raised:
            await rest.call("GET /v2/clock", lambda c: c.get_clock())
    finally:
        rest.close()
    assert time.monotonic() - started < 1.2
    assert raised.value.retryable and "timed out" in str(raised.value)
    assert rest.errors == {"timeout": 2} and len(sleeps) == 1


async def test_a_stopped_server_is_a_retryable_connection_error(
    make_sandbox: Any,
) -> None:
    sandbox = make_sandbox()
    rest = caller(sandbox, sleep=Sleeps())
    sandbox.stop()
    try:
        with pytest.raises(BrokerError) as raised:
            await rest.call("GET /v2/account", lambda c: c.get_account())
    finally:
        rest.close()
    assert raised.value.retryable and raised.value.status is None
    assert "cannot connect" in str(raised.value)
    assert rest.errors == {"connection": 3}


def test_an_html_502_is_classified_by_status_without_touching_the_body(
    sandbox: SandboxThread,
) -> None:
    sandbox.apply_faults(rest_error={"status": 502, "path": "/v2/account"})
    with pytest.raises(APIError) as raised:
        hardened(sandbox).get_account()
    error = raised.value
    with pytest.raises(json.JSONDecodeError):
        _ = error.code  # the trap: the SDK's property parses the HTML page
    assert (api_code(error), api_message(error)) == (None, "")
    broker_error = classify(error, "GET /v2/account")
    assert isinstance(broker_error, AlpacaApiError)
    assert broker_error.status == 502 and broker_error.retryable
    assert str(broker_error) == "Alpaca answered HTTP 502 bad gateway to GET /v2/account"


def test_a_json_body_without_code_is_read_safely() -> None:
    response = requests.Response()
    response.status_code = 403
    body = '{"message":"subscription does not permit querying recent SIP data"}'
    error = APIError(body, requests.HTTPError(response=response))
    with pytest.raises(KeyError):
        _ = error.code
    classified = classify(error, "GET bars")
    assert isinstance(classified, AlpacaApiError) and classified.code is None
    assert classified.status == 403 and not classified.retryable
    assert "subscription does not permit" in str(classified)


async def test_safe_reads_retry_5xx_but_a_client_error_is_final(sandbox: SandboxThread) -> None:
    sandbox.apply_faults(rest_error={"status": 503, "count": 2, "path": "/v2/positions"})
    sleeps = Sleeps()
    rest = caller(sandbox, sleep=sleeps)
    try:
        assert await rest.call("GET /v2/positions", lambda c: c.get_all_positions()) == []
        with pytest.raises(AlpacaApiError) as raised:
            await rest.call("GET order", lambda c: c.get_order_by_client_id("nope"))
    finally:
        rest.close()
    assert len(sleeps) == 2 and rest.errors == {"503": 2, "404": 1}
    assert raised.value.status == 404 and raised.value.code == 40410000


def test_error_text_never_carries_the_keys() -> None:
    error = classify(RuntimeError(f"boom with {SECRET} and {KEY}"), "x", secrets=(KEY, SECRET))
    assert SECRET not in str(error) and KEY not in str(error)
    assert "***" in str(error)


def test_the_budget_rolls_over_a_minute_and_takes_the_stricter_view() -> None:
    now = [100.0]
    budget = RequestBudget(10, monotonic=lambda: now[0])
    for _ in range(3):
        budget.record()
    assert budget.used_ratio() == pytest.approx(0.3) and budget.remaining() == 7
    budget.observe_headers({"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "2"})
    assert budget.used_ratio() == pytest.approx(0.8) and budget.remaining() == 2
    budget.observe_headers({"X-RateLimit-Limit": "junk"})  # ignored
    now[0] += 61
    assert budget.used_in_window() == 0 and budget.used_ratio() == 0.0
    assert budget.total == 3


# -- endpoints ---------------------------------------------------------------------------------


def test_default_endpoints_follow_the_mode() -> None:
    paper, live = default_endpoints(Mode.PAPER), default_endpoints(Mode.LIVE)
    assert paper.trading == "https://paper-api.alpaca.markets" and paper.paper
    assert live.trading == "https://api.alpaca.markets" and not live.paper
    assert paper.data == live.data == "https://data.alpaca.markets"
    assert paper.data_stream == "wss://stream.data.alpaca.markets/v2/iex"
    assert paper.trade_stream == "wss://paper-api.alpaca.markets/stream"
    assert live.trade_stream == "wss://api.alpaca.markets/stream"
    assert resolve_endpoints("paper", env={}) == paper and paper.is_default
    with pytest.raises(ConfigError):
        default_endpoints(Mode.DEMO)


def test_url_overrides_in_the_forms_each_sdk_client_wants(sandbox: SandboxThread) -> None:
    env = sandbox_env(sandbox)
    env["TAPEWATCH_ALPACA_TRADING_URL"] += "/v2/"  # a common slip: the SDK adds /v2 itself
    ep = resolve_endpoints(Mode.PAPER, env=env)
    assert ep.trading == sandbox.trading_url and ep.data == sandbox.data_url
    assert ep.data_stream.endswith("/v2/iex") and ep.trade_stream.endswith("/stream")
    client = TradingClient(KEY, SECRET, url_override=ep.trading)
    assert client.get_clock() is not None  # base without /v2 reaches /v2/clock
    assert StockDataStream(KEY, SECRET, url_override=ep.data_stream)._endpoint == ep.data_stream
    assert TradingStream(KEY, SECRET, url_override=ep.trade_stream)._endpoint == ep.trade_stream
    from_file = resolve_endpoints(Mode.LIVE, env={}, config={"trading_url": "http://127.0.0.1:9/"})
    assert from_file.trading == "http://127.0.0.1:9" and from_file.mode is Mode.LIVE
    both = resolve_endpoints(Mode.LIVE, env=env, config={"trading_url": "http://127.0.0.1:9"})
    assert both.trading == sandbox.trading_url  # the environment wins
    with pytest.raises(ConfigError, match="TAPEWATCH_ALPACA_STREAM_URL"):
        resolve_endpoints(Mode.PAPER, env={"TAPEWATCH_ALPACA_STREAM_URL": "http://x/v2/iex"})
    with pytest.raises(ConfigError, match="unknown"):
        resolve_endpoints(Mode.PAPER, env={}, config={"trade_url": "https://x"})


# -- models at the boundary --------------------------------------------------------------------


def test_string_numbers_become_exact_floats() -> None:
    position = to_position(
        {"symbol": "AAPL", "qty": "-5", "avg_entry_price": "100.1", "current_price": "120.07"}
    )
    assert (position.qty, position.avg_entry_price, position.last_price) == (-5.0, 100.1, 120.07)
    order = to_order(
        {
            "id": "61e69015-8549-4bfd-b9c3-01e75843f47d",
            "client_order_id": "c-1",
            "symbol": "SPY",
            "side": "buy",
            "qty": "0.123456789",
            "filled_qty": "0.123456789",
            "filled_avg_price": "178.01",
            "status": "filled",
            "submitted_at": "2026-11-23T19:40:01.123456Z",
        }
    )
    assert order.qty == 0.123456789 == float(Decimal("0.123456789"))
    assert (order.filled_qty, order.filled_avg_price) == (0.123456789, 178.01)
    assert order.status is OrderStatus.FILLED
    assert order.submitted_at == datetime(2026, 11, 23, 19, 40, 1, 123456, tzinfo=UTC)
    account = to_account(
        {
            "account_number": "PA1",
            "status": "ACTIVE",
            "cash": "-23140.2",
            "equity": "103820.56",
            "pattern_day_trader": None,
            "daytrade_count": None,
        },
        (),
    )
    assert (account.cash, account.equity, account.account_id) == (-23140.2, 103820.56, "PA1")


def test_every_alpaca_order_status_maps_to_an_engine_status() -> None:
    assert order_status("partially_filled") is OrderStatus.PARTIALLY_FILLED
    assert order_status("canceled") is OrderStatus.CANCELLED
    assert order_status("expired") is OrderStatus.EXPIRED
    assert order_status("rejected") is OrderStatus.REJECTED
    working_states = ("pending_new", "accepted", "pending_cancel", "held", "done_for_day")
    for working in (*working_states, "something_new"):
        assert order_status(working).is_open
    rejected = to_order({"status": "rejected", "side": "sell", "qty": "1"})
    assert rejected.reason == "Alpaca status rejected"


def test_timeframes_go_to_the_sdk_as_objects_not_strings() -> None:
    assert sdk_timeframe(Timeframe(5, "Min")).value == "5Min"
    assert sdk_timeframe(Timeframe(1, "Hour")).value == "1Hour"
    with pytest.raises(pydantic.ValidationError):
        StockBarsRequest(symbol_or_symbols="SPY", timeframe="5Min")  # type: ignore[arg-type]
    ok = StockBarsRequest(symbol_or_symbols="SPY", timeframe=TimeFrame(5, TimeFrameUnit.Minute))
    assert ok.timeframe.value == "5Min"


def test_the_data_feed_is_an_enum_not_a_string() -> None:
    assert data_feed("iex") is DataFeed.IEX
    with pytest.raises(AttributeError):
        StockDataStream(KEY, SECRET, feed="iex")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown Alpaca data feed"):
        data_feed("nasdaq")


def test_market_orders_are_day_orders_with_our_client_id() -> None:
    request = OrderRequest("tw-x", "SPY", Side.BUY, 0.1234567891, Intent.ENTRY)
    body = market_order(request)
    assert body.time_in_force is TimeInForce.DAY
    assert body.qty == 0.123456789  # floored to Alpaca's 9 decimals, never up
    assert body.client_order_id == "tw-x"
    assert body.to_request_fields()["side"] == "buy"
