"""Frozen events the engine publishes and journals.

Every event has a ``ts`` (the engine clock's time when it happened) and a stable ``kind``
string used as the journal's record type. Subscribers (the console, metrics, the headless
logger) only ever read these; they never reach into the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from tapewatch.engine.model.types import Bar, Fill, Order, OrderRequest, Position, TradingState


@dataclass(frozen=True, slots=True)
class Event:
    kind: ClassVar[str] = "event"
    ts: datetime


@dataclass(frozen=True, slots=True)
class SessionStarted(Event):
    """The engine started: mode, account and (for simulated brokers) the starting cash."""

    kind: ClassVar[str] = "session_started"
    mode: str
    account: str
    starting_cash: float
    symbol: str
    timeframe: str


@dataclass(frozen=True, slots=True)
class SessionStopped(Event):
    kind: ClassVar[str] = "session_stopped"
    reason: str


@dataclass(frozen=True, slots=True)
class BarClosed(Event):
    """A closed bar the strategy used (``warmup`` bars only prime the indicators)."""

    kind: ClassVar[str] = "bar"
    bar: Bar
    warmup: bool = False


@dataclass(frozen=True, slots=True)
class SignalEvaluated(Event):
    """The strategy's reading of one closed bar, with every condition of the entry rule."""

    kind: ClassVar[str] = "signal"
    symbol: str
    bar_ts: datetime
    close: float
    rsi: float | None
    sma: float | None
    action: str  # "buy", "sell" or "hold"
    rsi_oversold: bool
    close_above_sma: bool
    flat: bool
    rsi_overbought: bool


@dataclass(frozen=True, slots=True)
class OrderIntended(Event):
    """Written to the journal before the order is sent: the write-ahead record."""

    kind: ClassVar[str] = "intent"
    request: OrderRequest


@dataclass(frozen=True, slots=True)
class RiskDenied(Event):
    kind: ClassVar[str] = "risk_denied"
    request: OrderRequest
    breaker: str
    reason: str


@dataclass(frozen=True, slots=True)
class OrderSubmitted(Event):
    """The broker acknowledged the order; ``latency`` is submit→acknowledged in seconds."""

    kind: ClassVar[str] = "order_submitted"
    order: Order
    latency: float = 0.0


@dataclass(frozen=True, slots=True)
class OrderUpdated(Event):
    """A status change that is not a fill: accepted, cancelled, rejected, expired."""

    kind: ClassVar[str] = "order_updated"
    order: Order


@dataclass(frozen=True, slots=True)
class OrderFilled(Event):
    kind: ClassVar[str] = "fill"
    fill: Fill
    order: Order


@dataclass(frozen=True, slots=True)
class BreakerChanged(Event):
    """A breaker tripped or was reset; ``state`` is the trading state it imposes while tripped."""

    kind: ClassVar[str] = "breaker"
    name: str
    tripped: bool
    state: TradingState
    reason: str
    tripped_at: datetime | None


@dataclass(frozen=True, slots=True)
class TradingStateChanged(Event):
    kind: ClassVar[str] = "trading_state"
    old: TradingState
    new: TradingState
    reason: str


@dataclass(frozen=True, slots=True)
class DayStarted(Event):
    """A new trading day: the drawdown breaker measures from ``starting_equity``."""

    kind: ClassVar[str] = "day_started"
    day: str
    starting_equity: float


@dataclass(frozen=True, slots=True)
class EquitySnapshot(Event):
    kind: ClassVar[str] = "equity"
    cash: float
    equity: float
    day_start_equity: float
    positions: tuple[Position, ...]


@dataclass(frozen=True, slots=True)
class OperatorAction(Event):
    """Something a person did (pause, flatten, reset, switch, quit): who, from where, what."""

    kind: ClassVar[str] = "operator"
    action: str
    who: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class AccountAdopted(Event):
    """The broker's cash and positions replace the journal's (reconciliation): rebuilds from
    the journal start again from here, so a difference is reported once, not every restart."""

    kind: ClassVar[str] = "account_adopted"
    cash: float
    positions: tuple[Position, ...]
    differences: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Notice(Event):
    """A message for the operator (warning, info) that is not itself a state change."""

    kind: ClassVar[str] = "notice"
    level: str
    message: str


@dataclass(frozen=True, slots=True)
class AuditAnchored(Event):
    """The operator audit file's head after an append (its record count and hash), kept in
    the append-only journal so a truncated, emptied or replaced audit file fails verify."""

    kind: ClassVar[str] = "audit_anchor"
    audit_seq: int
    audit_hash: str


EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (
        SessionStarted,
        SessionStopped,
        BarClosed,
        SignalEvaluated,
        OrderIntended,
        RiskDenied,
        OrderSubmitted,
        OrderUpdated,
        OrderFilled,
        BreakerChanged,
        TradingStateChanged,
        DayStarted,
        EquitySnapshot,
        OperatorAction,
        AccountAdopted,
        Notice,
        AuditAnchored,
    )
}
