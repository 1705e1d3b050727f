"""The sandbox's own control routes under ``/_sandbox`` (no keys, no rate limit).

``POST /_sandbox/faults`` takes the same JSON as ``SandboxConfig.faults``:
``rest_error`` ({status, count, path, method, html} or a list), ``clear_rest_errors``,
``latency_ms``, ``lose_order_responses``, ``reject_auth``, ``data_stream``
("normal" | "mute" | "refuse"), ``updated_bars``, ``hold_fills``, and the one-shot actions
``drop_data_stream``, ``advance_minutes`` and ``set_price`` ({symbol: price}).
The trading switches (``faults.TRADING_SWITCHES``: ``market_closed``, ``partial_fills``,
``non_fractionable``, ``fractional_trading``, ``late_order_response_ms``) are accepted too.
``GET /_sandbox/state`` shows the clock, account, faults and counters;
``POST /_sandbox/reset`` returns everything to the configured start.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from tapewatch.sandbox.state import STATE, SandboxState
from tapewatch.sandbox.wire import ApiError, error_response, json_response


async def apply_faults(state: SandboxState, spec: Mapping[str, Any]) -> dict[str, object]:
    """Apply a fault spec on the sandbox loop and return the new state snapshot."""
    if state.apply_faults(spec):
        await state.data_hub.drop()
    return state.snapshot()


async def post_faults(request: web.Request) -> web.Response:
    try:
        spec = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        spec = None
    if not isinstance(spec, dict):
        return json_response({"message": "send a JSON object of fault switches"}, 400)
    try:
        return json_response(await apply_faults(request.app[STATE], spec))
    except ApiError as error:
        return error_response(error)


async def get_state(request: web.Request) -> web.Response:
    return json_response(request.app[STATE].snapshot())


async def post_reset(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.reset()
    return json_response(state.snapshot())


def add_control_routes(app: web.Application) -> None:
    app.router.add_post("/_sandbox/faults", post_faults)
    app.router.add_get("/_sandbox/state", get_state)
    app.router.add_post("/_sandbox/reset", post_reset)
