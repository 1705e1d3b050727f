"""The exact bytes on the wire, checked with a plain aiohttp client (no SDK in between).

These run the async ``Sandbox`` on the test's own event loop, with a manual market clock
(``bar_interval=0``) so every frame is produced on request.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msgpack
import pytest

from tapewatch.sandbox import Sandbox
from tests.alpaca.conftest import KEY, SECRET, START, sandbox_config

HEADERS = {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}
MSGPACK = {"Content-Type": "application/msgpack"}


@pytest.fixture
async def manual() -> AsyncIterator[Sandbox]:
    async with Sandbox(sandbox_config(bar_interval=0, auth_timeout=0.2)) as sandbox:
        yield sandbox


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def _frames(ws: aiohttp.ClientWebSocketResponse) -> list[dict[str, Any]]:
    message = await ws.receive(timeout=5)
    assert message.type == aiohttp.WSMsgType.BINARY
    frames = msgpack.unpackb(message.data, timestamp=0)
    assert isinstance(frames, list)
    return frames


async def _send(ws: aiohttp.ClientWebSocketResponse, payload: dict[str, Any]) -> None:
    await ws.send_bytes(msgpack.packb(payload))


async def test_data_stream_handshake_and_bar_frames(
    manual: Sandbox, http: aiohttp.ClientSession
) -> None:
    async with http.ws_connect(manual.data_stream_url, headers=MSGPACK) as ws:
        assert await _frames(ws) == [{"T": "success", "msg": "connected"}]
        await _send(ws, {"action": "subscribe", "bars": ["AAPL"]})
        assert await _frames(ws) == [{"T": "error", "code": 401, "msg": "not authenticated"}]
        await _send(ws, {"action": "auth", "key": KEY, "secret": SECRET})
        assert await _frames(ws) == [{"T": "success", "msg": "authenticated"}]
        await _send(ws, {"action": "auth", "key": KEY, "secret": SECRET})
        assert (await _frames(ws))[0]["code"] == 403
        await _send(ws, {"action": "subscribe", "bars": ["AAPL", "spy"], "trades": ["AAPL"]})
        assert await _frames(ws) == [
            {
                "T": "subscription",
                "trades": ["AAPL"],
                "quotes": [],
                "bars": ["AAPL", "SPY"],
                "updatedBars": [],
                "dailyBars": [],
                "statuses": [],
                "lulds": [],
                "corrections": ["AAPL"],
                "cancelErrors": ["AAPL"],
            }
        ]
        await manual.apply_faults(advance_minutes=1)
        bars = await _frames(ws)
        assert [b["S"] for b in bars] == ["SPY", "AAPL"]
        bar = bars[1]
        assert set(bar) == {"T", "S", "o", "h", "l", "c", "v", "n", "vw", "t"}
        assert bar["T"] == "b"
        assert isinstance(bar["t"], msgpack.Timestamp)  # ext type -1, the bar's start
        assert bar["t"].to_datetime() == START
        await _send(ws, {"action": "unsubscribe", "bars": ["SPY"]})
        assert (await _frames(ws))[0]["bars"] == ["AAPL"]
        await ws.send_bytes(b"\xc1")  # not msgpack
        assert (await _frames(ws))[0]["code"] == 400


async def test_data_stream_auth_timeout_and_json_mode(
    manual: Sandbox, http: aiohttp.ClientSession
) -> None:
    async with http.ws_connect(manual.data_stream_url) as ws:  # no msgpack header: JSON
        assert json.loads(await ws.receive_str(timeout=5)) == [{"T": "success", "msg": "connected"}]
        error = json.loads(await ws.receive_str(timeout=5))  # said nothing for auth_timeout
        assert error == [{"T": "error", "code": 404, "msg": "auth timeout"}]
        assert (await ws.receive(timeout=5)).type == aiohttp.WSMsgType.CLOSE


async def test_trade_stream_handshake(manual: Sandbox, http: aiohttp.ClientSession) -> None:
    async with http.ws_connect(manual.trade_stream_url) as ws:
        await ws.send_str(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
        refused = json.loads((await ws.receive(timeout=5)).data)
        assert refused["data"]["status"] == "unauthorized"
        auth = {"action": "authenticate", "data": {"key_id": KEY, "secret_key": SECRET}}
        await ws.send_str(json.dumps(auth))
        message = await ws.receive(timeout=5)
        assert message.type == aiohttp.WSMsgType.BINARY  # like Alpaca paper
        assert json.loads(message.data) == {
            "stream": "authorization",
            "data": {"action": "authenticate", "status": "authorized"},
        }
        await ws.send_str(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
        listening = json.loads((await ws.receive(timeout=5)).data)
        assert listening == {"stream": "listening", "data": {"streams": ["trade_updates"]}}
        order = {"symbol": "SPY", "qty": 2, "side": "buy", "type": "market", "time_in_force": "day"}
        async with http.post(f"{manual.url}/v2/orders", json=order, headers=HEADERS) as response:
            assert response.status == 200
            assert (await response.json())["status"] == "accepted"
        events = [json.loads((await ws.receive(timeout=5)).data)["data"] for _ in range(2)]
        assert [e["event"] for e in events] == ["new", "fill"]
        fill = events[1]
        assert fill["qty"] == "2" and fill["position_qty"] == "2"
        assert fill["order"]["status"] == "filled"
        assert fill["price"] == fill["order"]["filled_avg_price"]
        await manual.apply_faults(hold_fills=True)
        async with http.post(f"{manual.url}/v2/orders", json=order, headers=HEADERS) as response:
            order_id = (await response.json())["id"]
        async with http.delete(f"{manual.url}/v2/orders/{order_id}", headers=HEADERS) as response:
            assert response.status == 204
        events = [json.loads((await ws.receive(timeout=5)).data)["data"] for _ in range(2)]
        assert [e["event"] for e in events] == ["new", "canceled"]
        assert events[1]["order"]["canceled_at"] is not None
        assert "execution_id" not in events[1]


async def test_rest_error_bodies_and_paging(manual: Sandbox, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{manual.url}/v2/account") as response:
        assert response.status == 401
        assert await response.json() == {"code": 40110000, "message": "request is not authorized"}
        assert "X-RateLimit-Limit" in response.headers
    async with http.get(f"{manual.url}/v2/nothing-here", headers=HEADERS) as response:
        assert response.status == 404 and (await response.json())["code"] == 40410000
    params = {"symbols": "AAPL,SPY", "timeframe": "1Min", "start": "2024-03-05T14:50:00Z"}
    params["limit"] = "15"
    url = f"{manual.url}/v2/stocks/bars"
    async with http.get(url, params=params, headers=HEADERS) as response:
        page = await response.json()
    assert len(page["bars"]["AAPL"]) == 10 and len(page["bars"]["SPY"]) == 5
    assert page["bars"]["AAPL"][0]["t"] == "2024-03-05T14:50:00Z"
    async with http.get(
        url, params={**params, "page_token": page["next_page_token"]}, headers=HEADERS
    ) as response:
        rest = await response.json()
    assert list(rest["bars"]) == ["SPY"] and len(rest["bars"]["SPY"]) == 5
    assert rest["next_page_token"] is None
    empty = {**params, "start": "2024-03-02T15:00:00Z", "end": "2024-03-02T18:00:00Z"}
    async with http.get(url, params=empty, headers=HEADERS) as response:
        assert await response.json() == {"bars": {}, "next_page_token": None}
    async with http.get(url, params={**params, "timeframe": "5Minutes"}, headers=HEADERS) as bad:
        assert bad.status == 400 and await bad.json() == {"message": "invalid timeframe"}
