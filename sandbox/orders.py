"""The sandbox's order record and how it looks on the wire (every field the SDK's Order needs).

Quantities and money are Decimals: Alpaca sends them as strings and tapewatch converts them at
its broker boundary, so the sandbox must never print binary float noise such as "0.30000000004".
A notional order keeps ``qty`` null on the wire (Alpaca omits it; ``filled_qty`` says what
filled), and ``filled_avg_price`` stays null until the first fill.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from tapewatch.sandbox.wire import decimal_text, timestamp

OPEN_STATUSES = frozenset({"pending_new", "accepted", "new", "partially_filled"})
AT_VENUE = frozenset({"new", "partially_filled"})  # the venue has it: a close expires it
ZERO = Decimal(0)
AVG_PRICE_STEP = Decimal("0.000001")


class IdSource:
    """UUID4-shaped ids from a seeded generator: the same run gives the same ids."""

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)

    def new(self) -> str:
        return str(uuid.UUID(int=self._random.getrandbits(128), version=4))


def asset_id(symbol: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"tapewatch-sandbox/asset/{symbol}"))


@dataclass
class Order:
    id: str
    client_order_id: str
    symbol: str
    side: str  # "buy" | "sell"
    qty: Decimal | None
    notional: Decimal | None
    time_in_force: str
    extended_hours: bool
    submitted_at: datetime
    seq: int
    status: str = "accepted"
    updated_at: datetime | None = None
    filled_qty: Decimal = ZERO
    filled_avg_price: Decimal | None = None
    filled_at: datetime | None = None
    canceled_at: datetime | None = None
    failed_at: datetime | None = None
    expired_at: datetime | None = None
    asset: str = field(default="")
    parts: int = 1  # how many fills the venue splits it into (the last one is "fill")
    fills: int = 0  # fills so far
    gross: Decimal = ZERO  # sum of qty * price over its fills (for the average and notional)

    def __post_init__(self) -> None:
        self.updated_at = self.updated_at or self.submitted_at
        self.asset = self.asset or asset_id(self.symbol)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def whole_shares(self) -> bool:
        return self.qty is not None and self.qty == self.qty.to_integral_value()

    def add_fill(self, qty: Decimal, price: Decimal) -> None:
        """Count one execution: cumulative quantity and volume-weighted average price."""
        self.fills += 1
        self.gross += qty * price
        self.filled_qty += qty
        self.filled_avg_price = (self.gross / self.filled_qty).quantize(AVG_PRICE_STEP)

    def touch(self, status: str, when: datetime) -> None:
        self.status = status
        self.updated_at = when

    def to_wire(self) -> dict[str, object]:
        return {
            "id": self.id,
            "client_order_id": self.client_order_id,
            "created_at": timestamp(self.submitted_at),
            "updated_at": timestamp(self.updated_at),
            "submitted_at": timestamp(self.submitted_at),
            "filled_at": timestamp(self.filled_at),
            "expired_at": timestamp(self.expired_at),
            "expires_at": None,
            "canceled_at": timestamp(self.canceled_at),
            "failed_at": timestamp(self.failed_at),
            "replaced_at": None,
            "replaced_by": None,
            "replaces": None,
            "asset_id": self.asset,
            "symbol": self.symbol,
            "asset_class": "us_equity",
            "notional": decimal_text(self.notional),
            "qty": decimal_text(self.qty),
            "filled_qty": decimal_text(self.filled_qty),
            "filled_avg_price": decimal_text(self.filled_avg_price),
            "order_class": "simple",
            "order_type": "market",
            "type": "market",
            "side": self.side,
            "time_in_force": self.time_in_force,
            "limit_price": None,
            "stop_price": None,
            "status": self.status,
            "extended_hours": self.extended_hours,
            "legs": None,
            "trail_percent": None,
            "trail_price": None,
            "hwm": None,
            "position_intent": "buy_to_open" if self.side == "buy" else "sell_to_close",
        }
