# mypy: disable-error-code="union-attr,index"
# (alpaca-py types every answer as "model | raw dict" for raw_data=True; these tests use models)
"""Rate limits and injected REST failures, as the real TradingClient experiences them."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
import requests
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, TimeInForce
from alpaca.trading.requests import MarketOrderRequest

from tapewatch.sandbox import SandboxThread
from tests.alpaca.conftest import KEY, SECRET, FakeTime, sandbox_state, trading_client

HEADERS = {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}


def test_rate_limit_headers_429_and_rolling_window(
    make_sandbox: Callable[..., SandboxThread],
) -> None:
    clock = FakeTime()
    sandbox = make_sandbox(rate_limit=3, time_source=clock)
    remaining = []
    for _ in range(3):
        response = requests.get(f"{sandbox.url}/v2/clock", headers=HEADERS, timeout=5)
        assert response.status_code == 200
        assert response.headers["X-RateLimit-Limit"] == "3"
        remaining.append(response.headers["X-RateLimit-Remaining"])
    assert remaining == ["2", "1", "0"]
    client = trading_client(sandbox)
    with pytest.raises(APIError) as caught:
        client.get_clock()  # the SDK retries 429 three times (no sleep here), then raises
    error = caught.value
    assert error.status_code == 429 and error.code == 42910000
    assert error.response.headers["X-RateLimit-Remaining"] == "0"
    assert error.response.headers["X-RateLimit-Reset"] == str(int(clock.now) + 60)
    assert sandbox_state(sandbox)["stats"]["rate_limited"] == 4  # 1 call + 3 SDK retries
    clock.advance(61)  # the window rolls on; refused calls never counted
    assert client.get_clock().is_open


def test_data_api_has_its_own_budget(make_sandbox: Callable[..., SandboxThread]) -> None:
    sandbox = make_sandbox(rate_limit=1, data_rate_limit=5, time_source=FakeTime())
    assert requests.get(f"{sandbox.url}/v2/account", headers=HEADERS, timeout=5).ok
    bars = requests.get(
        f"{sandbox.url}/v2/stocks/bars/latest",
        params={"symbols": "AAPL"},
        headers=HEADERS,
        timeout=5,
    )
    assert bars.ok and bars.headers["X-RateLimit-Limit"] == "5"
    assert requests.get(f"{sandbox.url}/v2/account", headers=HEADERS, timeout=5).status_code == 429


def test_injected_429s_are_absorbed_by_the_sdk_retries(
    sandbox: SandboxThread, trading: TradingClient
) -> None:
    sandbox.apply_faults(rest_error={"status": 429, "count": 2})
    assert trading.get_account().status.value == "ACTIVE"
    assert sandbox_state(sandbox)["stats"]["injected_429"] == 2


def test_502_html_body_status_code_works_but_code_raises(
    sandbox: SandboxThread, trading: TradingClient
) -> None:
    sandbox.apply_faults(rest_error={"status": 502})
    with pytest.raises(APIError) as caught:
        trading.get_account()
    assert caught.value.status_code == 502
    assert "<html>" in str(caught.value)
    with pytest.raises(json.JSONDecodeError):
        _ = caught.value.code  # the SDK trap: .code parses the body as JSON
    assert trading.get_account().currency == "USD"  # one error only


def test_500_and_503_are_raised_at_once_without_retry(
    sandbox: SandboxThread, trading: TradingClient
) -> None:
    sandbox.apply_faults(rest_error=[{"status": 503, "count": 5}])
    with pytest.raises(APIError) as caught:
        trading.get_clock()
    assert caught.value.status_code == 503 and caught.value.code == 50310000
    faults = sandbox_state(sandbox)["faults"]
    assert faults["rest_errors"][0]["count"] == 4  # exactly one call consumed
    sandbox.apply_faults(clear_rest_errors=True, rest_error={"status": 500, "path": "/v2/orders"})
    assert trading.get_clock().is_open  # the 500 only matches order calls
    with pytest.raises(APIError) as caught:
        trading.get_orders()
    assert caught.value.status_code == 500


def test_504_is_retried_by_the_sdk_then_raised(
    sandbox: SandboxThread, trading: TradingClient
) -> None:
    sandbox.apply_faults(rest_error={"status": 504, "count": 4})
    with pytest.raises(APIError) as caught:
        trading.get_all_positions()
    assert caught.value.status_code == 504
    assert sandbox_state(sandbox)["stats"]["injected_504"] == 4


def test_latency_and_auth_rejection_switches(
    sandbox: SandboxThread, trading: TradingClient
) -> None:
    sandbox.apply_faults(latency_ms=150)
    began = time.perf_counter()
    trading.get_clock()
    assert time.perf_counter() - began >= 0.15
    sandbox.apply_faults(latency_ms=0, reject_auth=True)
    with pytest.raises(APIError) as caught:
        trading.get_clock()
    assert caught.value.status_code == 401 and caught.value.code == 40110000
    sandbox.apply_faults(reject_auth=False)
    assert trading.get_clock().is_open


def test_control_endpoints_over_http(sandbox: SandboxThread, trading: TradingClient) -> None:
    bad = requests.post(f"{sandbox.url}/_sandbox/faults", json={"no_such": 1}, timeout=5)
    assert bad.status_code == 400
    armed = requests.post(
        f"{sandbox.url}/_sandbox/faults", json={"rest_error": {"status": 503}}, timeout=5
    )
    assert armed.json()["faults"]["rest_errors"][0]["status"] == 503
    with pytest.raises(APIError):
        trading.get_account()
    state = requests.get(f"{sandbox.url}/_sandbox/state", timeout=5).json()
    assert state["faults"]["rest_errors"] == [] and state["market"]["is_open"]
    trading.submit_order(
        MarketOrderRequest(symbol="SPY", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.DAY)
    )
    requests.post(f"{sandbox.url}/_sandbox/faults", json={"latency_ms": 5}, timeout=5)
    reset = requests.post(f"{sandbox.url}/_sandbox/reset", timeout=5).json()
    assert reset["faults"]["latency_ms"] == 0 and reset["account"]["orders"] == 0
    assert trading.get_orders() == [] and trading.get_account().cash == "100000"
