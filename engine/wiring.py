"""The one place that picks feed, broker, clock and journal for each mode.

Backtest, demo, paper and live run the same Engine; only what is plugged in differs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from engine.brokers.sim import SimBroker
from engine.calendar import MarketCalendar
from engine.clock import LiveClock, SimClock
from engine.config import EngineConfig
from engine.engine import Engine
from engine.feeds.bars import BarArrays
from engine.feeds.replay import ReplayFeed
from engine.feeds.synthetic import SyntheticMarket
from engine.journal import Journal
from engine.models import Mode

DEMO_START = date(2026, 1, 2)
DEMO_WARMUP_BARS = 240
CHUNK_SESSIONS = 10


@dataclass(frozen=True, slots=True)
class DemoOptions:
    seed: int = 7
    speed: float = 60.0
    start: date = DEMO_START
    warmup_bars: int = DEMO_WARMUP_BARS


@dataclass(slots=True)
class DemoSession:
    engine: Engine
    feed: ReplayFeed
    calendar: MarketCalendar
    journal: Journal | None


def _chunks(market: SyntheticMarket) -> Iterator[BarArrays]:
    while True:
        yield market.next_days(CHUNK_SESSIONS)


def demo_journal_path(data_dir: Path, seed: int) -> Path:
    """Each demo run gets its own journal: the simulated account starts afresh every time."""
    stamp = LiveClock().now().strftime("%Y%m%dT%H%M%S")
    return data_dir / "demo" / f"journal-seed{seed}-{stamp}.sqlite3"


def build_demo(
    config: EngineConfig,
    options: DemoOptions,
    *,
    data_dir: Path | None,
    calendar: MarketCalendar | None = None,
) -> DemoSession:
    """Synthetic bars paced at ``options.speed``× against the SimBroker, journaled to disk."""
    tf = config.strategy.tf
    calendar = calendar or MarketCalendar()
    market = SyntheticMarket(
        config.strategy.symbol,
        seed=options.seed,
        start=options.start,
        timeframe_seconds=tf.seconds,
        calendar=calendar,
    )
    first = market.next_days(CHUNK_SESSIONS)
    clock = SimClock(first.bar(0).ts)

    def chunks() -> Iterator[BarArrays]:
        yield first
        yield from _chunks(market)

    feed = ReplayFeed(
        chunks(),
        clock,
        timeframe_seconds=tf.seconds,
        warmup=options.warmup_bars,
        speed=options.speed,
    )
    journal = Journal(demo_journal_path(data_dir, options.seed)) if data_dir is not None else None
    broker = SimBroker(config.starting_cash, config.execution, clock=clock)
    engine = Engine(
        config,
        clock=clock,
        broker=broker,
        journal=journal,
        mode=Mode.DEMO,
        account="DEMO",
        endpoint="offline (simulated broker)",
        in_session=calendar.is_open,
    )
    engine.state.speed = options.speed
    return DemoSession(engine=engine, feed=feed, calendar=calendar, journal=journal)
