"""Trading REST routes (``/v2/account``, ``/clock``, ``/positions``, ``/orders``).

Thin: parse the query or body, ask the account, shape the answer as Alpaca does (207 for the
bulk deletes, 204 for a single cancel). Errors are raised as ``ApiError`` for the gate. With
the ``late_order_response_ms`` fault, a POST's answer is the order as accepted, sent only after
the venue has filled it and the trade stream has said so (a response held up in the network).
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from decimal import Decimal, InvalidOperation

from aiohttp import web

from tapewatch.sandbox.order_rules import parse_order
from tapewatch.sandbox.orders import asset_id
from tapewatch.sandbox.state import STATE, SandboxState
from tapewatch.sandbox.wire import ApiError, json_response, parse_time

MAX_ORDERS = 500


def _state(request: web.Request) -> SandboxState:
    return request.app[STATE]


def _truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() in ("true", "1", "yes")


def _decimal(request: web.Request, name: str) -> Decimal | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation as exc:
        raise ApiError(422, 40010001, f"{name} is invalid") from exc
    if not value.is_finite() or value <= 0:
        raise ApiError(422, 40010001, f"{name} must be > 0")
    return value


def _time(request: web.Request, name: str) -> datetime | None:
    raw = request.query.get(name)
    if not raw:
        return None
    try:
        return parse_time(raw)
    except ValueError as exc:
        raise ApiError(422, 40010001, f"{name} is invalid") from exc


def _symbol(state: SandboxState, raw: str) -> str:
    """A path symbol or asset id (the SDK accepts either) to a symbol."""
    for symbol in state.market.symbols:
        if raw == asset_id(symbol):
            return symbol
    return raw.upper()


async def get_asset(request: web.Request) -> web.Response:
    """``GET /v2/assets/{symbol}``: tradable equities, fractionable unless configured not."""
    state = _state(request)
    symbol = _symbol(state, request.match_info["symbol"])
    if symbol not in state.market.symbols:
        raise ApiError(404, 40410000, "asset not found")
    return json_response(
        {
            "id": asset_id(symbol),
            "class": "us_equity",
            "exchange": "ARCA" if symbol == "SPY" else "NASDAQ",
            "symbol": symbol,
            "name": f"{symbol} (sandbox)",
            "status": "active",
            "tradable": True,
            "marginable": True,
            "shortable": True,
            "easy_to_borrow": True,
            "fractionable": symbol not in state.faults.non_fractionable,
            "attributes": [],
        }
    )


async def get_account(request: web.Request) -> web.Response:
    return json_response(_state(request).account.account())


async def get_account_configurations(request: web.Request) -> web.Response:
    """``GET /v2/account/configurations``: a cash account; fractional trading as configured.

    No PDT or DTBP checks: Alpaca stopped sending them (the SDK defaults them to None).
    """
    return json_response(
        {
            "trade_confirm_email": "all",
            "suspend_trade": False,
            "no_shorting": True,
            "fractional_trading": _state(request).faults.fractional_trading,
            "max_margin_multiplier": "1",
            "ptp_no_exception_entry": False,
        }
    )


async def get_clock(request: web.Request) -> web.Response:
    state = _state(request)
    return json_response(state.market.clock(state.now()))


async def get_positions(request: web.Request) -> web.Response:
    return json_response(_state(request).account.positions())


async def get_position(request: web.Request) -> web.Response:
    state = _state(request)
    return json_response(state.account.position(_symbol(state, request.match_info["symbol"])))


async def delete_positions(request: web.Request) -> web.Response:
    cancel = _truthy(request.query.get("cancel_orders"))
    return json_response(_state(request).account.close_all(cancel), 207)


async def delete_position(request: web.Request) -> web.Response:
    state = _state(request)
    qty, percentage = _decimal(request, "qty"), _decimal(request, "percentage")
    if qty is not None and percentage is not None:
        raise ApiError(422, 40010001, "only one of qty or percentage may be given")
    if percentage is not None and percentage > 100:
        raise ApiError(422, 40010001, "percentage must be <= 100")
    symbol = _symbol(state, request.match_info["symbol"])
    order = state.account.close_position(symbol, qty, percentage)
    return json_response(order.to_wire())


async def post_order(request: web.Request) -> web.Response:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, 40010001, "request body format is invalid") from exc
    state = _state(request)
    order = state.account.submit(parse_order(body))
    answer = json_response(order.to_wire())  # as accepted: execution starts on the next turn
    late = state.faults.late_order_response_ms
    if late > 0:
        await asyncio.sleep(late / 1000.0)
    return answer


async def get_orders(request: web.Request) -> web.Response:
    query = request.query
    status = query.get("status", "open")
    direction = query.get("direction", "desc")
    if status not in ("open", "closed", "all") or direction not in ("asc", "desc"):
        raise ApiError(422, 40010001, "status or direction is invalid")
    try:
        limit = min(int(query.get("limit", "50")), MAX_ORDERS)
    except ValueError as exc:
        raise ApiError(422, 40010001, "limit is invalid") from exc
    symbols = (
        {s.strip().upper() for s in query["symbols"].split(",")} if "symbols" in query else None
    )
    orders = _state(request).account.list_orders(
        status=status,
        limit=max(limit, 1),
        after=_time(request, "after"),
        until=_time(request, "until"),
        ascending=direction == "asc",
        symbols=symbols,
        side=query.get("side"),
    )
    return json_response([o.to_wire() for o in orders])


async def get_order(request: web.Request) -> web.Response:
    order = _state(request).account.find(request.match_info["order_id"])
    return json_response(order.to_wire())


async def get_order_by_client_id(request: web.Request) -> web.Response:
    client_id = request.query.get("client_order_id", "")
    return json_response(_state(request).account.find_by_client_id(client_id).to_wire())


async def delete_orders(request: web.Request) -> web.Response:
    return json_response(_state(request).account.cancel_all(), 207)


async def delete_order(request: web.Request) -> web.Response:
    _state(request).account.cancel(request.match_info["order_id"])
    return web.Response(status=204)


def add_trading_routes(app: web.Application) -> None:
    app.router.add_get("/v2/account", get_account)
    app.router.add_get("/v2/account/configurations", get_account_configurations)
    app.router.add_get("/v2/assets/{symbol}", get_asset)
    app.router.add_get("/v2/clock", get_clock)
    app.router.add_get("/v2/positions", get_positions)
    app.router.add_delete("/v2/positions", delete_positions)
    app.router.add_get("/v2/positions/{symbol}", get_position)
    app.router.add_delete("/v2/positions/{symbol}", delete_position)
    app.router.add_post("/v2/orders", post_order)
    app.router.add_get("/v2/orders", get_orders)
    app.router.add_delete("/v2/orders", delete_orders)
    app.router.add_get("/v2/orders:by_client_order_id", get_order_by_client_id)
    app.router.add_get("/v2/orders/{order_id}", get_order)
    app.router.add_delete("/v2/orders/{order_id}", delete_order)
