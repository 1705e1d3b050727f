"""One immutable, versioned picture of everything the console draws.

Built from the engine by ``snapshot_of`` (the only code that reads the engine's state, gate,
latency recorder and config for a screen), out of frozen dataclasses and tuples, so it can be
shared without copying and sent across a process boundary (``snapshot_to_data`` /
``snapshot_from_data`` are exact inverses). ``version`` is the handle's counter, increased
whenever anything in the picture changed; ``state_version`` is the engine state's own counter,
which moves only on trading changes (the panes that draw clocks and timers redraw without it).
``SCHEMA`` changes when a field's meaning does, or a field is added (2: the orders' decision
and realized P&L, the last operator action; 3: confirm mode and the orders waiting for the
operator; 4: the trading REST endpoint's health and when the last bar closed, for the header's
connection line and the console's banner).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from tapewatch.engine.core.confirm import HeldOrder
from tapewatch.engine.model.differences import Difference
from tapewatch.engine.model.events import OperatorAction, SignalEvaluated
from tapewatch.engine.model.serde import from_data, to_data
from tapewatch.engine.model.types import Bar, Mode, Position, TradingState
from tapewatch.engine.observability.health import ReportsRestHealth, StreamHealth
from tapewatch.engine.observability.latency import STAGES, LatencySummary
from tapewatch.engine.risk.base import BreakerStatus

if TYPE_CHECKING:
    from tapewatch.engine.core.engine import Engine
SCHEMA = 4


class Hours(Protocol):
    """A market calendar as the host knows it (Alpaca's clock, or XNYS offline)."""

    def is_open(self, now: datetime) -> bool: ...

    def next_open(self, now: datetime) -> datetime: ...

    def next_close(self, now: datetime) -> datetime: ...


@dataclass(frozen=True, slots=True)
class OrderLine:
    """One line of the order log: an order's life or a risk-gate denial.

    ``reason`` is what happened to it (a denial, a rejection); ``why`` the decision that made
    it (the rule's values, or who flattened); ``realized_pnl`` what its closing fills made."""

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
    why: str = ""
    realized_pnl: float | None = None


@dataclass(frozen=True, slots=True)
class StrategyView:
    """The entry rule's parameters, for the Indicators pane's labels and bands."""

    rsi_period: int
    sma_period: int
    rsi_oversold: float
    rsi_overbought: float


@dataclass(frozen=True, slots=True)
class MarketHours:
    """Open now, and when that changes (the close if open, else the open); ``next_change`` is
    None when the calendar cannot say."""

    open: bool
    next_change: datetime | None


@dataclass(frozen=True, slots=True)
class Stream:
    name: str  # "data" or "trades"
    health: StreamHealth


@dataclass(frozen=True, slots=True)
class ActiveAlert:
    """A raised alert rule (``engine.observability.alerts``), its message as it was raised."""

    name: str
    message: str
    severity: str


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """Differences between the journal and the broker waiting for the operator.

    ``asks`` counts the times the host asked a person to decide: the console opens its modal
    when it grows while ``differences`` is not empty."""

    asks: int
    differences: tuple[Difference, ...]


@dataclass(frozen=True, slots=True)
class Snapshot:
    schema: int
    version: int
    state_version: int
    now: datetime  # the engine clock's (simulated in the demo); every reading is as of it
    operator: str  # who the engine acts for when nobody else is named
    mode: Mode
    account: str
    endpoint: str
    symbol: str
    timeframe: str
    running: bool
    bars: tuple[Bar, ...]
    rsi: tuple[float | None, ...]
    sma: tuple[float | None, ...]
    last_signal: SignalEvaluated | None
    strategy: StrategyView
    positions: tuple[Position, ...]
    cash: float
    equity: float
    day_start_equity: float
    orders: tuple[OrderLine, ...]  # newest first
    trading_state: TradingState
    paused: bool
    in_flight: int
    breakers: tuple[BreakerStatus, ...]
    latency: tuple[LatencySummary, ...]  # per stage, without buckets
    market: MarketHours | None  # None: no calendar, or now is beyond its range
    streams: tuple[Stream, ...]
    speed: float | None  # the demo's pacing
    confirm_mode: str = "off"  # which strategy orders wait for the operator: off, entries, all
    held: tuple[HeldOrder, ...] = ()  # orders waiting for the operator's answer, oldest first
    alerts: tuple[ActiveAlert, ...] = ()
    reconciliation: Reconciliation | None = None  # None: this session has no reconciler
    last_action: OperatorAction | None = None  # the newest operator action but a quit
    rest: StreamHealth | None = None  # the trading REST endpoint; None: a simulated broker
    last_bar_at: datetime | None = None  # when the newest bar closed (engine clock)

    def stream(self, name: str) -> StreamHealth | None:
        """One connection's health by name: "rest", "trades" or "data"; None: not watched."""
        if name == "rest":
            return self.rest
        return next((s.health for s in self.streams if s.name == name), None)

    @property
    def day_pnl(self) -> float:
        return self.equity - self.day_start_equity if self.day_start_equity else 0.0

    @property
    def open_positions(self) -> tuple[Position, ...]:
        return tuple(p for p in self.positions if abs(p.qty) > 1e-12)

    @property
    def has_exposure(self) -> bool:
        """A position is open or an order is in flight (quitting then needs confirmation)."""
        return self.in_flight > 0 or bool(self.open_positions)

    def position(self, symbol: str) -> Position | None:
        return next((p for p in self.positions if p.symbol == symbol), None)

    def order(self, client_order_id: str) -> OrderLine | None:
        return next((r for r in self.orders if r.client_order_id == client_order_id), None)

    def latency_of(self, stage: str) -> LatencySummary:
        found = next((s for s in self.latency if s.stage == stage), None)
        return found or LatencySummary(stage, 0, 0.0, 0.0, 0.0, 0.0)


def market_hours(hours: Hours | None, now: datetime) -> MarketHours | None:
    if hours is None:
        return None
    try:
        is_open = hours.is_open(now)
    except ValueError:  # beyond the calendar's range
        return None
    try:
        change: datetime | None = hours.next_close(now) if is_open else hours.next_open(now)
    except ValueError:
        change = None
    return MarketHours(is_open, change)


def _latency(engine: Engine, previous: Sequence[LatencySummary]) -> tuple[LatencySummary, ...]:
    """Each stage's summary; a stage whose count did not move keeps its previous summary
    (percentiles walk the histogram)."""
    recorder = engine.latency
    known = {s.stage: s for s in previous}
    out = []
    for stage in STAGES:
        count = recorder.count(stage)
        old = known.get(stage)
        out.append(old if old is not None and old.count == count else recorder.summary(stage))
    return tuple(out)


def snapshot_of(
    engine: Engine,
    *,
    version: int = 0,
    hours: Hours | None = None,
    alerts: Sequence[ActiveAlert] = (),
    reconciliation: Reconciliation | None = None,
    previous: Snapshot | None = None,
) -> Snapshot:
    """The picture of ``engine`` now; ``previous`` lets unchanged latency summaries be reused."""
    state = engine.state
    now = engine.clock.now()
    strategy = engine.config.strategy
    health: Mapping[str, StreamHealth] = engine.connection_health()
    return Snapshot(
        schema=SCHEMA,
        version=version,
        state_version=state.version,
        now=now,
        operator=engine.who,
        mode=state.mode,
        account=state.account,
        endpoint=state.endpoint,
        symbol=state.symbol,
        timeframe=state.timeframe,
        running=state.running,
        bars=tuple(state.bars),
        rsi=tuple(state.rsi),
        sma=tuple(state.sma),
        last_signal=state.last_signal,
        strategy=StrategyView(
            strategy.rsi_period,
            strategy.sma_period,
            strategy.rsi_oversold,
            strategy.rsi_overbought,
        ),
        positions=tuple(state.positions.values()),
        cash=state.cash,
        equity=state.equity,
        day_start_equity=state.day_start_equity,
        orders=tuple(
            OrderLine(
                r.time,
                r.client_order_id,
                r.side,
                r.qty,
                r.symbol,
                r.status,
                r.fill_price,
                r.latency,
                r.reason,
                r.intent,
                r.why,
                r.realized_pnl,
            )
            for r in state.orders
        ),
        trading_state=state.trading_state,
        paused=state.paused,
        in_flight=state.in_flight,
        breakers=tuple(engine.breaker_statuses(now)),
        latency=_latency(engine, previous.latency if previous is not None else ()),
        market=market_hours(hours, now),
        streams=tuple(Stream(name, h) for name, h in health.items()),
        speed=state.speed,
        confirm_mode=engine.hold.mode,
        held=engine.hold.pending,
        alerts=tuple(alerts),
        reconciliation=reconciliation,
        last_action=engine.last_action,
        rest=engine.broker.rest_health() if isinstance(engine.broker, ReportsRestHealth) else None,
        last_bar_at=engine.gate.stale.last_bar_at,
    )


def snapshot_to_data(snapshot: Snapshot) -> dict[str, Any]:
    """JSON-compatible data (``json.dumps`` it as is)."""
    data: dict[str, Any] = to_data(snapshot)
    return data


def snapshot_from_data(raw: dict[str, Any]) -> Snapshot:
    """The inverse of ``snapshot_to_data``; ValueError for another schema."""
    if raw.get("schema") != SCHEMA:
        raise ValueError(f"snapshot schema {raw.get('schema')!r}: this version reads {SCHEMA}")
    return from_data(Snapshot, raw)
