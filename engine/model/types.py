"""Typed, frozen domain models shared by every engine component.

Prices, quantities and cash are floats inside the engine (indicators and the simulated broker
are on the hot path of the backtester); brokers that speak strings or Decimals convert at their
boundary. Quantities are floored to 9 decimals, Alpaca's fractional-share precision.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

QTY_DECIMALS = 9
_QTY_SCALE = 10**QTY_DECIMALS


def floor_qty(qty: float) -> float:
    """Round a share quantity down to 9 decimals (never up: an order must stay affordable)."""
    # The small epsilon absorbs binary noise such as 0.3/0.1 = 2.9999999999999996.
    return math.floor(qty * _QTY_SCALE + 1e-6) / _QTY_SCALE


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


class OrderStatus(StrEnum):
    NEW = "new"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def is_open(self) -> bool:
        return self in (OrderStatus.NEW, OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED)


class TradingState(StrEnum):
    """What the risk gate lets through: everything, only position-reducing orders, or nothing."""

    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    HALTED = "HALTED"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]


_SEVERITY = {TradingState.ACTIVE: 0, TradingState.REDUCING: 1, TradingState.HALTED: 2}


class Mode(StrEnum):
    BACKTEST = "BACKTEST"
    DEMO = "DEMO"
    PAPER = "PAPER"
    LIVE = "LIVE"


class Intent(StrEnum):
    """Why an order exists; part of the deterministic client order id."""

    ENTRY = "entry"
    EXIT = "exit"
    FLATTEN = "flatten"


_TIMEFRAME_RE = re.compile(r"^(\d+)\s*(Min|Minute|Hour|Day)$", re.IGNORECASE)
_UNIT_SECONDS = {"Min": 60, "Hour": 3600, "Day": 86400}
_UNIT_LIMIT = {"Min": 59, "Hour": 23, "Day": 1}


@dataclass(frozen=True, slots=True)
class Timeframe:
    """A bar length such as 5Min, 1Hour or 1Day (Alpaca's spelling)."""

    amount: int
    unit: str  # "Min", "Hour" or "Day"

    @classmethod
    def parse(cls, text: str) -> Timeframe:
        match = _TIMEFRAME_RE.match(text.strip())
        if not match:
            raise ValueError(
                f"timeframe {text!r} is not understood; use e.g. 1Min, 5Min, 15Min, 1Hour or 1Day"
            )
        amount = int(match.group(1))
        word = match.group(2).lower()
        unit = "Min" if word.startswith("min") else "Hour" if word == "hour" else "Day"
        limit = _UNIT_LIMIT[unit]
        if not 1 <= amount <= limit:
            raise ValueError(f"timeframe {text!r} is out of range; use 1-{limit}{unit}")
        return cls(amount, unit)

    @classmethod
    def from_seconds(cls, seconds: float) -> Timeframe | None:
        """The timeframe exactly ``seconds`` long (60 → 1Min, 86400 → 1Day), else None."""
        for unit in ("Day", "Hour", "Min"):
            size = _UNIT_SECONDS[unit]
            amount, rest = divmod(seconds, size)
            if not rest and 1 <= amount <= _UNIT_LIMIT[unit]:
                return cls(int(amount), unit)
        return None

    @property
    def seconds(self) -> int:
        return self.amount * _UNIT_SECONDS[self.unit]

    @property
    def delta(self) -> timedelta:
        return timedelta(seconds=self.seconds)

    @property
    def label(self) -> str:
        return f"{self.amount}{self.unit}"

    def __str__(self) -> str:
        return self.label


@dataclass(frozen=True, slots=True)
class Bar:
    """One OHLCV bar, start-labelled: ``ts`` 09:30 on a 5Min bar covers [09:30, 09:35)."""

    symbol: str
    ts: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """A market order the engine wants; ``client_order_id`` is deterministic and journaled first."""

    client_order_id: str
    symbol: str
    side: Side
    qty: float
    intent: Intent
    bar_ts: datetime | None = None
    estimated_price: float | None = None


@dataclass(frozen=True, slots=True)
class Order:
    """A broker's view of an order at one moment."""

    order_id: str
    client_order_id: str
    symbol: str
    side: Side
    qty: float
    status: OrderStatus
    filled_qty: float = 0.0
    filled_avg_price: float | None = None
    submitted_at: datetime | None = None
    reason: str = ""
    filled_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Fill:
    """An execution: ``fee`` is the commission charged on it."""

    order_id: str
    client_order_id: str
    symbol: str
    side: Side
    qty: float
    price: float
    fee: float
    ts: datetime


@dataclass(frozen=True, slots=True)
class Position:
    symbol: str
    qty: float
    avg_entry_price: float
    last_price: float = 0.0

    @property
    def market_value(self) -> float:
        return self.qty * self.last_price

    @property
    def unrealized_pnl(self) -> float:
        return (self.last_price - self.avg_entry_price) * self.qty


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    """Cash, equity and positions as a broker reports them."""

    cash: float
    equity: float
    positions: tuple[Position, ...] = field(default_factory=tuple)
    account_id: str = ""
    status: str = "ACTIVE"


def client_order_id(strategy: str, symbol: str, bar_ts: datetime, intent: Intent) -> str:
    """Deterministic id from (strategy, symbol, bar time, intent): a retry can never duplicate."""
    stamp = bar_ts.strftime("%Y%m%dT%H%M%SZ")
    return f"tw-{strategy}-{symbol}-{stamp}-{intent.value}"[:128]
