"""The engine's read model: the latest picture of everything a screen shows.

The engine updates it synchronously as events happen; the console redraws from it on a timer
(a few Hz), so a burst of a thousand events costs one repaint. ``version`` increases on every
change so a reader can skip redraws when nothing moved. Readers must treat it as read-only.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

from tapewatch.engine.model.events import SignalEvaluated
from tapewatch.engine.model.types import Bar, Mode, Position, TradingState

HISTORY = 240
ORDER_ROWS = 500


@dataclass(slots=True)
class OrderRow:
    """One line of the order log: an order's life or a risk-gate denial."""

    time: datetime
    client_order_id: str
    side: str
    qty: float
    symbol: str
    status: str
    fill_price: float | None = None
    latency: float | None = None  # submit→ack seconds
    reason: str = ""
    intent: str = ""
    why: str = ""  # the decision behind the order: the rule's values, or the operator's flatten
    realized_pnl: float | None = None  # what its fills closed made, fees included


@dataclass(slots=True)
class EngineState:
    mode: Mode
    account: str
    endpoint: str
    symbol: str
    timeframe: str
    bars: deque[Bar] = field(default_factory=lambda: deque(maxlen=HISTORY))
    rsi: deque[float | None] = field(default_factory=lambda: deque(maxlen=HISTORY))
    sma: deque[float | None] = field(default_factory=lambda: deque(maxlen=HISTORY))
    last_signal: SignalEvaluated | None = None
    positions: dict[str, Position] = field(default_factory=dict)
    cash: float = 0.0
    equity: float = 0.0
    day_start_equity: float = 0.0
    orders: deque[OrderRow] = field(default_factory=lambda: deque(maxlen=ORDER_ROWS))
    trading_state: TradingState = TradingState.ACTIVE
    paused: bool = False
    in_flight: int = 0
    speed: float | None = None
    running: bool = False
    version: int = 0

    def touch(self) -> None:
        self.version += 1

    @property
    def day_pnl(self) -> float:
        return self.equity - self.day_start_equity if self.day_start_equity else 0.0

    @property
    def has_exposure(self) -> bool:
        """A position is open or an order is in flight (quitting then needs confirmation)."""
        return self.in_flight > 0 or any(abs(p.qty) > 1e-12 for p in self.positions.values())

    def order_row(self, client_order_id: str) -> OrderRow | None:
        for row in self.orders:
            if row.client_order_id == client_order_id:
                return row
        return None
