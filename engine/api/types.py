"""The engine's data types and events, as the console may name them.

Re-exported, not copied: a command's ``Mode``, a snapshot's ``Bar`` or an event the console
toasts are the very classes the engine uses, so nothing is translated at the boundary.
"""

from __future__ import annotations

from tapewatch.engine.model.differences import (
    BROKER_ONLY_ORDER,
    JOURNAL_ONLY_ORDER,
    POSITION,
    Difference,
)
from tapewatch.engine.model.events import (
    AccountAdopted,
    BarClosed,
    BreakerChanged,
    DayStarted,
    EquitySnapshot,
    Event,
    Notice,
    OperatorAction,
    OrderFilled,
    OrderIntended,
    OrderSubmitted,
    OrderUpdated,
    RiskDenied,
    SessionStarted,
    SessionStopped,
    SignalEvaluated,
    TradingStateChanged,
)
from tapewatch.engine.model.types import (
    Bar,
    Fill,
    Intent,
    Mode,
    Order,
    OrderRequest,
    OrderStatus,
    Position,
    Side,
    TradingState,
)
from tapewatch.engine.observability.health import StreamHealth
from tapewatch.engine.observability.latency import LatencySummary
from tapewatch.engine.risk.base import BreakerStatus

__all__ = [
    "BROKER_ONLY_ORDER",
    "JOURNAL_ONLY_ORDER",
    "POSITION",
    "AccountAdopted",
    "Bar",
    "BarClosed",
    "BreakerChanged",
    "BreakerStatus",
    "DayStarted",
    "Difference",
    "EquitySnapshot",
    "Event",
    "Fill",
    "Intent",
    "LatencySummary",
    "Mode",
    "Notice",
    "OperatorAction",
    "Order",
    "OrderFilled",
    "OrderIntended",
    "OrderRequest",
    "OrderStatus",
    "OrderSubmitted",
    "OrderUpdated",
    "Position",
    "RiskDenied",
    "SessionStarted",
    "SessionStopped",
    "Side",
    "SignalEvaluated",
    "StreamHealth",
    "TradingState",
    "TradingStateChanged",
]
