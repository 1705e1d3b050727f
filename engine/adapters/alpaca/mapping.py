"""SDK models to engine models, at the boundary and nowhere else.

Alpaca sends money and quantities as strings ("0.123456789", "-5"): each goes string ->
``Decimal`` -> ``float`` exactly once, here, so no binary arithmetic ever touches a raw value
(``float(Decimal(s))`` is the float nearest the decimal, the best a float can hold). Order
bodies arrive as SDK models or, inside a 207 answer, as plain dicts; both are read alike.
Market-data models already carry floats. Timestamps become tz-aware UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any

from alpaca.data.enums import DataFeed
from alpaca.data.timeframe import TimeFrame, TimeFrameUnit
from alpaca.trading.enums import OrderSide, TimeInForce
from alpaca.trading.requests import MarketOrderRequest

from tapewatch.engine.model.types import (
    AccountSnapshot,
    Bar,
    Order,
    OrderRequest,
    OrderStatus,
    Position,
    Side,
    Timeframe,
    floor_qty,
)

_STATUS = {
    "new": OrderStatus.NEW,
    "partially_filled": OrderStatus.PARTIALLY_FILLED,
    "filled": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELLED,
    "cancelled": OrderStatus.CANCELLED,
    "replaced": OrderStatus.CANCELLED,
    "expired": OrderStatus.EXPIRED,
    "rejected": OrderStatus.REJECTED,
    # Still working at the venue: accepted, pending_new, pending_cancel, pending_replace,
    # accepted_for_bidding, pending_review, held, stopped, suspended, calculated, and any
    # status Alpaca adds later (treated as open, so the order keeps being watched).
    # done_for_day too: the order is done for today but Alpaca may resume it tomorrow (a DAY
    # order then ends as expired, which is final).
    "done_for_day": OrderStatus.ACCEPTED,
}


def _text(value: object) -> str:
    """An enum's wire value or the value as text."""
    if isinstance(value, Enum):
        return str(value.value)
    return "" if value is None else str(value)


def field_of(obj: object, name: str) -> Any:
    """A field of an SDK model or of its dict form."""
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def dec(value: object) -> Decimal | None:
    """Alpaca's string number as an exact Decimal (None for null or garbage)."""
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def num(value: object, default: float = 0.0) -> float:
    """String -> Decimal -> float, once; ``default`` for null."""
    number = dec(value)
    return default if number is None else float(number)


def utc(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and value:
        try:
            return utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            return None
    return None


def order_status(raw: object) -> OrderStatus:
    return _STATUS.get(_text(raw).lower(), OrderStatus.ACCEPTED)


def fill_price(obj: object) -> Decimal | None:
    """``filled_avg_price``; None before any fill (Alpaca sends null, "0" or 0 for that)."""
    avg = dec(field_of(obj, "filled_avg_price"))
    return avg if avg is not None and avg > 0 else None


def order_qty(obj: object) -> Decimal:
    """The order's quantity. A notional order ($ amount) has ``qty`` null: once it is done
    that is what filled; while it works, notional ÷ average fill price so far (never less
    than what filled), else what filled (0 before any fill: the shares are not known yet)."""
    qty = dec(field_of(obj, "qty"))
    if qty is not None:
        return qty
    filled = dec(field_of(obj, "filled_qty")) or Decimal(0)
    if not order_status(field_of(obj, "status")).is_open:
        return filled
    notional, avg = dec(field_of(obj, "notional")), fill_price(obj)
    if notional is not None and avg is not None:
        return max(filled, Decimal(str(floor_qty(float(notional / avg)))))
    return filled


def to_order(obj: object, *, reason: str = "") -> Order:
    """An SDK ``Order`` (or its dict form) as the engine's Order."""
    status = order_status(field_of(obj, "status"))
    filled = num(field_of(obj, "filled_qty"))
    if status.is_open and filled > 0:  # e.g. done_for_day or pending_cancel after a fill
        status = OrderStatus.PARTIALLY_FILLED
    avg = fill_price(obj)
    return Order(
        order_id=_text(field_of(obj, "id")),
        client_order_id=_text(field_of(obj, "client_order_id")),
        symbol=_text(field_of(obj, "symbol")),
        side=Side(_text(field_of(obj, "side")).lower() or "buy"),
        qty=float(order_qty(obj)),
        status=status,
        filled_qty=filled,
        filled_avg_price=None if avg is None else float(avg),
        submitted_at=utc(field_of(obj, "submitted_at")),
        reason=reason or (_rejection(obj) if status is OrderStatus.REJECTED else ""),
        filled_at=utc(field_of(obj, "filled_at")),
    )


def _rejection(obj: object) -> str:
    return f"Alpaca status {_text(field_of(obj, 'status'))}"


def filled_notional(obj: object) -> Decimal:
    """filled_qty × filled_avg_price, exactly (0 when nothing has filled)."""
    qty = dec(field_of(obj, "filled_qty")) or Decimal(0)
    price = fill_price(obj) or Decimal(0)
    return qty * price


def to_position(obj: object) -> Position:
    qty = num(field_of(obj, "qty"))  # negative when short
    return Position(
        symbol=_text(field_of(obj, "symbol")),
        qty=qty,
        avg_entry_price=num(field_of(obj, "avg_entry_price")),
        last_price=num(field_of(obj, "current_price")),
    )


def to_account(account: object, positions: tuple[Position, ...]) -> AccountSnapshot:
    cash = num(field_of(account, "cash"))
    equity = dec(field_of(account, "equity"))
    return AccountSnapshot(
        cash=cash,
        equity=cash if equity is None else float(equity),
        positions=positions,
        account_id=_text(field_of(account, "account_number")) or _text(field_of(account, "id")),
        status=_text(field_of(account, "status")) or "ACTIVE",
    )


@dataclass(frozen=True, slots=True)
class AssetInfo:
    """GET /v2/assets/{symbol}: whether Alpaca trades it, and in fractions."""

    symbol: str
    tradable: bool
    fractionable: bool


def to_asset(obj: object) -> AssetInfo:
    """A missing ``fractionable`` counts as False: whole shares are always accepted."""
    return AssetInfo(
        symbol=_text(field_of(obj, "symbol")),
        tradable=bool(field_of(obj, "tradable")),
        fractionable=bool(field_of(obj, "fractionable")),
    )


def fractional_trading(configuration: object) -> bool | None:
    """GET /v2/account/configurations' ``fractional_trading`` (None when it is not said)."""
    value = field_of(configuration, "fractional_trading")
    return None if value is None else bool(value)


def to_bar(obj: object, symbol: str | None = None) -> Bar:
    """An SDK market-data ``Bar`` (floats already) as the engine's start-labelled Bar."""
    ts = utc(field_of(obj, "timestamp"))
    if ts is None:
        raise ValueError("bar without a timestamp")
    return Bar(
        symbol=symbol or _text(field_of(obj, "symbol")),
        ts=ts,
        open=float(field_of(obj, "open")),
        high=float(field_of(obj, "high")),
        low=float(field_of(obj, "low")),
        close=float(field_of(obj, "close")),
        volume=float(field_of(obj, "volume") or 0.0),
    )


def sdk_timeframe(tf: Timeframe) -> TimeFrame:
    """The SDK wants TimeFrame objects: ``timeframe="5Min"`` fails its validation."""
    unit = TimeFrameUnit.Minute if tf.unit == "Min" else TimeFrameUnit.Hour
    return TimeFrame(tf.amount, unit)


def data_feed(name: str) -> DataFeed:
    """``DataFeed.IEX``, not "iex": the stream crashes on a plain string."""
    try:
        return DataFeed(name.lower())
    except ValueError:
        raise ValueError(f"unknown Alpaca data feed {name!r}; use iex or sip") from None


def market_order(request: OrderRequest) -> MarketOrderRequest:
    """A market order, always DAY: fractional quantities are refused with any other TIF."""
    return MarketOrderRequest(
        symbol=request.symbol,
        qty=floor_qty(request.qty),
        side=OrderSide.BUY if request.side is Side.BUY else OrderSide.SELL,
        time_in_force=TimeInForce.DAY,
        client_order_id=request.client_order_id,
    )


@dataclass(frozen=True, slots=True)
class ClockReading:
    """GET /v2/clock: broker time, whether the regular session is open, the next change."""

    timestamp: datetime
    is_open: bool
    next_open: datetime
    next_close: datetime


def to_clock(obj: object) -> ClockReading:
    stamps = [utc(field_of(obj, name)) for name in ("timestamp", "next_open", "next_close")]
    if any(s is None for s in stamps):
        raise ValueError("clock answer without timestamps")
    timestamp, next_open, next_close = stamps
    assert timestamp is not None and next_open is not None and next_close is not None
    return ClockReading(timestamp, bool(field_of(obj, "is_open")), next_open, next_close)
