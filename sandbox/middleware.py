"""What stands in front of every trading and market-data REST call, in Alpaca's order.

Latency fault -> key check (401) -> rate limit (429) -> injected errors (429/5xx) -> the
handler (its ApiError becomes Alpaca's JSON body) -> "lost order response" (504 after the order
was created). Every answer carries X-RateLimit-* headers. Websocket and ``/_sandbox`` control
routes pass straight through: they need no keys and are not rate limited.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

from tapewatch.sandbox.faults import InjectedError
from tapewatch.sandbox.state import STATE
from tapewatch.sandbox.wire import (
    RATE_LIMITED,
    UNAUTHORIZED,
    ApiError,
    error_response,
    html_response,
    json_response,
)

STREAM_ROUTES = frozenset({"data_stream", "trade_stream"})
_REASONS = {
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Temporarily Unavailable",
    504: "Gateway Time-out",
}
_JSON_BODIES = {
    429: RATE_LIMITED,
    500: {"code": 50010000, "message": "internal server error occurred"},
    502: {"code": 50210000, "message": "bad gateway"},
    503: {"code": 50310000, "message": "service unavailable"},
    504: {"code": 50410000, "message": "gateway timeout"},
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _injected(error: InjectedError) -> web.Response:
    if error.as_html:
        return html_response(error.status, _REASONS[error.status])
    return json_response(_JSON_BODIES[error.status], error.status)


async def _serve(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as error:
        return error_response(error)
    except web.HTTPMethodNotAllowed:
        return json_response({"code": 40510000, "message": "method not allowed"}, 405)
    except web.HTTPNotFound:
        return json_response({"code": 40410000, "message": "endpoint not found"}, 404)


@web.middleware
async def alpaca_gate(request: web.Request, handler: Handler) -> web.StreamResponse:
    route_name = request.match_info.route.name
    if route_name in STREAM_ROUTES or request.path.startswith("/_sandbox"):
        return await handler(request)
    state = request.app[STATE]
    faults = state.faults
    state.stats["rest_requests"] += 1
    if faults.latency_ms > 0:
        await asyncio.sleep(faults.latency_ms / 1000.0)
    key = request.headers.get("APCA-API-KEY-ID")
    secret = request.headers.get("APCA-API-SECRET-KEY")
    limiter = state.data_limiter if request.path.startswith("/v2/stocks") else state.trading_limiter
    if faults.reject_auth or not state.keys.accepts(key, secret):
        response: web.StreamResponse = json_response(UNAUTHORIZED, 401)
        response.headers.update(limiter.peek(key or "").headers())
        return response
    decision = limiter.hit(key)
    if not decision.allowed:
        state.stats["rate_limited"] += 1
        response = json_response(RATE_LIMITED, 429)
    elif (injected := faults.take_rest_error(request.method, request.path)) is not None:
        state.stats[f"injected_{injected.status}"] += 1
        response = _injected(injected)
    else:
        response = await _serve(request, handler)
        lost = request.method == "POST" and request.path == "/v2/orders"
        if lost and response.status == 200 and faults.take_lost_order_response():
            state.stats["lost_order_responses"] += 1
            response = html_response(504, _REASONS[504])
    response.headers.update(decision.headers())
    return response
