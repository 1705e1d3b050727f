"""The offline demo: synthetic bars paced in real time against the SimBroker.

Built only through the composition root (``engine.root``); ``engine.root.demo`` re-exports these
names for older imports.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from tapewatch.engine.adapters.sim.broker import SimBroker
from tapewatch.engine.adapters.sim.replay import ReplayFeed
from tapewatch.engine.core.clock import LiveClock, SimClock
from tapewatch.engine.core.engine import Engine
from tapewatch.engine.market.bars import BarArrays
from tapewatch.engine.market.calendar import MarketCalendar
from tapewatch.engine.market.synthetic import SyntheticMarket
from tapewatch.engine.model.types import Mode
from tapewatch.engine.settings.config import EngineConfig
from tapewatch.engine.storage.journal import Journal

DEMO_START = date(2026, 1, 2)
DEMO_WARMUP_BARS = 240
CHUNK_SESSIONS = 10
DEMO_ACCOUNT = "DEMO"
DEMO_ENDPOINT = "offline (simulated broker)"


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """The synthetic market and its pace. ``mode``/``account``/``endpoint`` label the engine
    (the screenshots show the same bars as a paper account); ``who`` names the operator."""

    seed: int = 7
    speed: float = 60.0
    start: date = DEMO_START
    warmup_bars: int = DEMO_WARMUP_BARS
    mode: Mode = Mode.DEMO
    account: str = DEMO_ACCOUNT
    endpoint: str = DEMO_ENDPOINT
    who: str | None = None


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
        mode=options.mode,
        account=options.account,
        endpoint=options.endpoint,
        in_session=calendar.is_open,
        who=options.who,
    )
    if options.mode is Mode.DEMO:
        engine.state.speed = options.speed
    return DemoSession(engine=engine, feed=feed, calendar=calendar, journal=journal)
