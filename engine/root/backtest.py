"""The backtest's parts: the live engine on a SimClock against the SimBroker, no journal."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from engine.brokers.sim import SimBroker
from engine.calendar import MarketCalendar
from engine.clock import SimClock
from engine.config import EngineConfig
from engine.engine import Engine
from engine.models import Mode


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
    )
    return BacktestParts(engine=engine, broker=broker, clock=clock)
