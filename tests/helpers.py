"""Small builders shared by the tests: bars from a list of closes, engines on a SimClock."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from tapewatch.engine.adapters.sim.broker import SimBroker
from tapewatch.engine.core.clock import SimClock
from tapewatch.engine.core.engine import Engine
from tapewatch.engine.model.types import Bar, Mode
from tapewatch.engine.settings.config import (
    EngineConfig,
    ExecutionConfig,
    RiskConfig,
    StrategyConfig,
)
from tapewatch.engine.storage.journal import EventJournal

T0 = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)  # a Monday, 09:30 New York
STEP = timedelta(minutes=5)


def bars_from_closes(
    closes: Sequence[float],
    *,
    symbol: str = "SPY",
    start: datetime = T0,
    step: timedelta = STEP,
    gap: float = 0.0,
) -> list[Bar]:
    """Bars opening at the previous close plus ``gap`` (the first opens at its own close)."""
    bars = []
    prev = closes[0]
    for i, close in enumerate(closes):
        open_ = prev + gap if i else prev
        high = max(open_, close) + 0.05
        low = min(open_, close) - 0.05
        bars.append(Bar(symbol, start + i * step, open_, high, low, close, 1000.0))
        prev = close
    return bars


def small_config(**strategy: object) -> EngineConfig:
    params: dict[str, object] = {"rsi_period": 3, "sma_period": 5}
    params.update(strategy)
    return EngineConfig(
        strategy=StrategyConfig(**params),  # type: ignore[arg-type]
        execution=ExecutionConfig(),
        risk=RiskConfig(),
    ).validate()


def make_engine(
    config: EngineConfig | None = None,
    *,
    journal: EventJournal | None = None,
    start: datetime = T0,
    mode: Mode = Mode.DEMO,
    in_session: Callable[[datetime], bool] | None = None,
    attended: bool = True,
) -> tuple[Engine, SimBroker, SimClock]:
    """An engine on a SimClock against the SimBroker. ``attended``: a console is attached
    (a paper/live engine nobody watches pauses entries after 15 minutes)."""
    config = config or small_config()
    clock = SimClock(start)
    broker = SimBroker(config.starting_cash, config.execution, clock=clock)
    extra = {"in_session": in_session} if in_session is not None else {}
    engine = Engine(
        config,
        clock=clock,
        broker=broker,
        journal=journal,
        mode=mode,
        who="tester@local",
        **extra,  # type: ignore[arg-type]
    )
    if attended:
        engine.set_attached(1)
    return engine, broker, clock


async def feed_bars(
    engine: Engine, clock: SimClock, bars: Sequence[Bar], step: timedelta = STEP
) -> None:
    """Deliver closed bars the way ReplayFeed does: clock at the bar's end, then the bar."""
    for bar in bars:
        clock.advance_to(bar.ts + step)
        await engine.on_bar(bar)
