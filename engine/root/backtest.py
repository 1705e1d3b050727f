"""The backtest's parts: the live engine on a SimClock against the SimBroker, no journal."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tapewatch.engine.adapters.sim.broker import SimBroker
from tapewatch.engine.core.clock import SimClock
from tapewatch.engine.core.engine import Engine
from tapewatch.engine.market.calendar import MarketCalendar
from tapewatch.engine.model.types import Mode
from tapewatch.engine.settings.config import EngineConfig


@dataclass(slots=True)
class BacktestParts:
    """What the backtest loop drives: the engine, and the broker and clock it moves bar by bar."""

    engine: Engine
    broker: SimBroker
    clock: SimClock


def build_backtest(
    config: EngineConfig, start: datetime, *, calendar: MarketCalendar | None = None
) -> BacktestParts:
    """An engine whose clock starts at the first bar's time (``start``)."""
    clock = SimClock(start)
    broker = SimBroker(config.starting_cash, config.execution, clock=clock)
    calendar = calendar or MarketCalendar()
    engine = Engine(
        config,
        clock=clock,
        broker=broker,
        journal=None,
        mode=Mode.BACKTEST,
        in_session=calendar.is_open,
        history=True,
    )
    return BacktestParts(engine=engine, broker=broker, clock=clock)
