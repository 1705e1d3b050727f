"""The offline demo: synthetic bars paced in real time against the SimBroker.

It starts ``lead_bars`` bars before the seeded market's first signal (the warm-up is extended
to reach it), so the first order comes within the first minute at the default speed, and its
replay looks ahead with a shadow of the strategy (``demo_scout``) so the console's next-signal
key can fast-forward to just before the next one.

Built only through the composition root (``engine.root``); ``engine.root.demo`` re-exports these
names for older imports.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
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
from tapewatch.engine.model.types import Bar, Mode
from tapewatch.engine.root.demo_scout import SignalScout, first_signal
from tapewatch.engine.settings.config import EngineConfig, StrategyConfig
from tapewatch.engine.storage.journal import Journal

DEMO_START = date(2026, 1, 2)
DEMO_WARMUP_BARS = 240
DEMO_LEAD_BARS = 3
"""Paced bars before the first signal: 15 s at the default ×60, its order 5 s later."""
CHUNK_SESSIONS = 10
SCOUT_CHUNKS = 20
"""How far (chunks of ``CHUNK_SESSIONS`` sessions) the start looks for a first signal."""
DEMO_ACCOUNT = "DEMO"
DEMO_ENDPOINT = "offline (simulated broker)"


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """The synthetic market and its pace. ``mode``/``account``/``endpoint`` label the engine
    (the screenshots show the same bars as a paper account); ``who`` names the operator.
    ``warmup_bars`` is the least history; ``lead_bars`` extends it to end that many bars before
    the first signal (``None``: exactly ``warmup_bars``, as the screenshots' scene needs)."""

    seed: int = 7
    speed: float = 60.0
    start: date = DEMO_START
    warmup_bars: int = DEMO_WARMUP_BARS
    lead_bars: int | None = DEMO_LEAD_BARS
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


def _bars(chunks: Iterable[BarArrays]) -> Iterator[Bar]:
    for chunk in chunks:
        yield from chunk.iter_bars()


def _pull_until(market: SyntheticMarket, pulled: list[BarArrays], bars: int) -> None:
    while sum(len(chunk) for chunk in pulled) < bars:
        pulled.append(market.next_days(CHUNK_SESSIONS))


def start_before_signal(
    cfg: StrategyConfig,
    market: SyntheticMarket,
    pulled: list[BarArrays],
    *,
    minimum: int,
    lead: int,
) -> int:
    """The warm-up length that ends ``lead`` bars before the first signal past ``minimum``
    bars (``minimum`` when the signal comes sooner, or none within ``SCOUT_CHUNKS``).

    Chunks are pulled from ``market`` into ``pulled`` as needed; the replay starts with them,
    so the bars scanned are the bars replayed.
    """
    _pull_until(market, pulled, minimum + 1)
    for _ in range(SCOUT_CHUNKS):
        index = first_signal(cfg, _bars(pulled), after=minimum)
        if index is not None:
            return max(minimum, index - lead)
        pulled.append(market.next_days(CHUNK_SESSIONS))
    return minimum


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
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> DemoSession:
    """Synthetic bars paced at ``options.speed``× against the SimBroker, journaled to disk.

    ``sleep`` and ``monotonic`` pace the replay (tests pass a fake clock)."""
    tf = config.strategy.tf
    calendar = calendar or MarketCalendar()
    market = SyntheticMarket(
        config.strategy.symbol,
        seed=options.seed,
        start=options.start,
        timeframe_seconds=tf.seconds,
        calendar=calendar,
    )
    pulled = [market.next_days(CHUNK_SESSIONS)]
    warmup = options.warmup_bars
    if options.lead_bars is not None:
        warmup = start_before_signal(
            config.strategy, market, pulled, minimum=warmup, lead=options.lead_bars
        )
    _pull_until(market, pulled, warmup)
    clock = SimClock(pulled[0].bar(0).ts)
    head = tuple(pulled)

    def chunks() -> Iterator[BarArrays]:
        yield from head
        yield from _chunks(market)

    broker = SimBroker(config.starting_cash, config.execution, clock=clock)
    symbol = config.strategy.symbol
    scout = SignalScout(config.strategy, lambda: broker.position_after_next_bar(symbol))
    scout.warm(itertools.islice(_bars(head), warmup))
    feed = ReplayFeed(
        chunks(),
        clock,
        timeframe_seconds=tf.seconds,
        warmup=warmup,
        speed=options.speed,
        sleep=sleep,
        monotonic=monotonic,
        ahead=scout,
    )
    journal = Journal(demo_journal_path(data_dir, options.seed)) if data_dir is not None else None
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
