"""The backtester: the live engine (strategy, risk gate, SimBroker, events) on a SimClock.

No sleeping and no journal: the replay feed moves the clock bar by bar and the engine runs
exactly the code it runs in the demo and live. Results are a pure function of the bars and the
configuration, so the same inputs give byte-identical JSON.
"""

from __future__ import annotations

import asyncio
import csv
from array import array
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from engine.brokers.sim import SimBroker
from engine.calendar import MarketCalendar
from engine.clock import SimClock
from engine.config import ConfigError, EngineConfig
from engine.engine import Engine
from engine.events import EquitySnapshot, Event, OrderFilled
from engine.feeds.bars import BarArrays
from engine.feeds.replay import ReplayFeed
from engine.models import Fill, Mode
from engine.stats import Report, build_report

Progress = Callable[[int, int], None]
PROGRESS_EVERY = 20_000


@dataclass(frozen=True, slots=True)
class BacktestResult:
    report: Report
    fills: tuple[Fill, ...]


class _Recorder:
    """Collects the equity curve and fills from the engine's events, compactly."""

    def __init__(self) -> None:
        self.equity: array[float] = array("d")
        self.exposed = 0
        self.fills: list[Fill] = []

    def __call__(self, event: Event) -> None:
        if type(event) is EquitySnapshot:
            self.equity.append(event.equity)
            if event.positions:
                self.exposed += 1
        elif type(event) is OrderFilled:
            self.fills.append(event.fill)


def run_backtest(
    bars: BarArrays, config: EngineConfig, *, progress: Progress | None = None
) -> BacktestResult:
    if len(bars) == 0:
        raise ValueError("no bars to backtest: the data range is empty")
    return asyncio.run(_run(bars, config, progress))


async def _run(bars: BarArrays, config: EngineConfig, progress: Progress | None) -> BacktestResult:
    tf = config.strategy.tf
    first = bars.bar(0)
    clock = SimClock(first.ts)
    broker = SimBroker(config.starting_cash, config.execution, clock=clock)
    calendar = MarketCalendar()
    engine = Engine(
        config,
        clock=clock,
        broker=broker,
        journal=None,
        mode=Mode.BACKTEST,
        in_session=calendar.is_open,
    )
    recorder = _Recorder()
    engine.bus.add_sink(recorder)
    await engine.start(starting_cash=config.starting_cash)
    feed = ReplayFeed(bars, clock, timeframe_seconds=tf.seconds)
    total = len(bars)
    on_bar = engine.on_bar
    if progress is None:
        for bar in feed.iter_sync():
            await on_bar(bar)
    else:
        for i, bar in enumerate(feed.iter_sync()):
            await on_bar(bar)
            if i % PROGRESS_EVERY == 0:
                progress(i, total)
        progress(total, total)
    last = bars.bar(total - 1)
    report = build_report(
        symbol=config.strategy.symbol,
        timeframe=tf.label,
        timeframe_seconds=tf.seconds,
        start=first.ts,
        end=last.ts + tf.delta,
        start_equity=config.starting_cash,
        equity=recorder.equity,
        exposed_bars=recorder.exposed,
        fills=recorder.fills,
        rsi_oversold=config.strategy.rsi_oversold,
        rsi_overbought=config.strategy.rsi_overbought,
    )
    await engine.stop("backtest finished")
    return BacktestResult(report=report, fills=tuple(recorder.fills))


def parse_compare(text: str) -> list[tuple[float, float]]:
    """``70/30,75/25`` → [(70, 30), (75, 25)] as (overbought, oversold) pairs."""
    pairs = []
    for chunk in text.split(","):
        parts = chunk.strip().split("/")
        if len(parts) != 2:
            raise ConfigError(
                f"--compare item {chunk.strip()!r} is not OVERBOUGHT/OVERSOLD; e.g. 70/30,75/25"
            )
        try:
            high, low = float(parts[0]), float(parts[1])
        except ValueError:
            raise ConfigError(
                f"--compare item {chunk.strip()!r} must be two numbers; e.g. 70/30"
            ) from None
        pairs.append((high, low))
    return pairs


def with_thresholds(config: EngineConfig, overbought: float, oversold: float) -> EngineConfig:
    strategy = replace(config.strategy, rsi_overbought=overbought, rsi_oversold=oversold)
    return replace(config, strategy=strategy).validate()


def write_trades_csv(fills: tuple[Fill, ...], path: Path) -> None:
    """One row per fill: time, side, quantity, price, fees."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["time", "side", "quantity", "price", "fees"])
        for fill in fills:
            writer.writerow(
                [fill.ts.isoformat(), fill.side.value, repr(fill.qty), repr(fill.price), repr(fill.fee)]
            )
    tmp.replace(path)
