"""Validation of a POST /v2/orders body with Alpaca's answers (the SDK checks none of this).

Only the stateless rules live here (shape, types, fractional-needs-DAY); the rules that need
the account (duplicate client id, buying power, qty available) are the account's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from tapewatch.sandbox.wire import ApiError

TIME_IN_FORCE = frozenset({"day", "gtc", "opg", "cls", "ioc", "fok"})
MAX_CLIENT_ID = 128
QTY_PLACES = 9
NOTIONAL_PLACES = 2


@dataclass(frozen=True)
class OrderRequest:
    symbol: str
    side: str
    qty: Decimal | None
    notional: Decimal | None
    time_in_force: str
    client_order_id: str | None
    extended_hours: bool

    @property
    def fractional(self) -> bool:
        """A notional order or a qty with a fraction: what fractional trading rules cover."""
        qty = self.qty
        return self.notional is not None or (qty is not None and qty != qty.to_integral_value())


def _invalid(message: str, status: int = 422) -> ApiError:
    return ApiError(status, 40010001, message)


def _amount(body: Mapping[str, object], name: str, places: int) -> Decimal | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _invalid(f"{name} is invalid")
    try:
        amount = Decimal(str(value))
    except InvalidOperation as exc:
        raise _invalid(f"{name} is invalid") from exc
    if not amount.is_finite() or amount <= 0:
        raise _invalid(f"{name} must be > 0")
    exponent = amount.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > places:
        raise _invalid(f"{name} is limited to {places} decimal places")
    return amount


def parse_order(body: object) -> OrderRequest:
    """Check an order body the way Alpaca does; raise ``ApiError`` with Alpaca's code."""
    if not isinstance(body, Mapping):
        raise _invalid("request body format is invalid", 400)
    symbol = body.get("symbol")
    if not isinstance(symbol, str) or not symbol:
        raise _invalid("symbol is required")
    side = body.get("side")
    if side not in ("buy", "sell"):
        raise _invalid("side must be buy or sell")
    order_type = body.get("type", body.get("order_type"))
    if order_type != "market":
        raise _invalid(f"order type {order_type!r} is not supported by the sandbox (market only)")
    if body.get("order_class") not in (None, "", "simple"):
        raise _invalid("order_class is not supported by the sandbox (simple only)")
    for price_field in ("limit_price", "stop_price", "trail_price", "trail_percent"):
        if body.get(price_field) is not None:
            raise _invalid(f"{price_field} is not allowed for market orders")
    tif = body.get("time_in_force")
    if tif not in TIME_IN_FORCE:
        raise _invalid("time_in_force is invalid")
    qty = _amount(body, "qty", QTY_PLACES)
    notional = _amount(body, "notional", NOTIONAL_PLACES)
    if qty is not None and notional is not None:
        raise _invalid("only one of qty or notional may be given", 400)
    if qty is None and notional is None:
        raise _invalid("qty or notional is required")
    client_id = body.get("client_order_id")
    if client_id is not None and (not isinstance(client_id, str) or not client_id):
        raise _invalid("client_order_id is invalid")
    if client_id is not None and len(client_id) > MAX_CLIENT_ID:
        raise _invalid(f"client_order_id must be no more than {MAX_CLIENT_ID} characters")
    request = OrderRequest(
        symbol=symbol.upper(),
        side=str(side),
        qty=qty,
        notional=notional,
        time_in_force=str(tif),
        client_order_id=client_id,
        extended_hours=bool(body.get("extended_hours", False)),
    )
    if request.fractional and tif != "day":
        raise ApiError(422, 42210000, "fractional orders must be DAY orders")
    return request
