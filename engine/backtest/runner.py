"""The backtester: the live engine (strategy, risk gate, SimBroker, events) on a SimClock.

No sleeping and no journal: the replay feed moves the clock bar by bar and the engine runs
exactly the code it runs in the demo and live. Results are a pure function of the bars and the
configuration, so the same inputs give byte-identical JSON.
"""

from __future__ import annotations

import asyncio
import csv
from array import array
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from pathlib import Path

from tapewatch.engine.adapters.sim.broker import SimBroker
from tapewatch.engine.adapters.sim.replay import ReplayFeed
from tapewatch.engine.backtest.gaps import cross_gap
from tapewatch.engine.backtest.memo import remembered
from tapewatch.engine.backtest.stats import BreakerTrip, Report, annualisation, build_report
from tapewatch.engine.backtest.vector import drive_vector, uncovered
from tapewatch.engine.backtest.vector_fills import FillStep, fills_uncovered
from tapewatch.engine.backtest.vector_step import BarStep, step_uncovered
from tapewatch.engine.core.clock import SimClock
from tapewatch.engine.core.engine import Engine
from tapewatch.engine.market.bars import BarArrays, datetime_from_ns
from tapewatch.engine.model.events import (
    BreakerChanged,
    EquitySnapshot,
    Event,
    OrderFilled,
    RiskDenied,
)
from tapewatch.engine.model.types import Fill
from tapewatch.engine.root.backtest import build_backtest
from tapewatch.engine.settings.config import ConfigError, EngineConfig
from tapewatch.engine.strategy.bar_checks import price_problem
from tapewatch.engine.strategy.rsi_sma import rule_action

Progress = Callable[[int, int], None]
PROGRESS_EVERY = 20_000


@dataclass(frozen=True, slots=True)
class BacktestResult:
    report: Report
    fills: tuple[Fill, ...]


class _Recorder:
    """Collects the equity curve, fills, breaker trips and denials from the engine's events."""

    def __init__(self) -> None:
        self.equity: array[float] = array("d")
        self.exposed = 0
        self.fills: list[Fill] = []
        self.trips: list[BreakerTrip] = []
        self.denied = 0

    def __call__(self, event: Event) -> None:
        kind = type(event)
        if kind is EquitySnapshot:
            self.equity.append(event.equity)  # type: ignore[attr-defined]
            if event.positions:  # type: ignore[attr-defined]
                self.exposed += 1
        else:
            self.rare(event)

    def rare(self, event: Event) -> None:
        """What the lean loop also hands over: fills, trips and denials (few per run)."""
        if isinstance(event, OrderFilled):
            self.fills.append(event.fill)
        elif isinstance(event, BreakerChanged) and event.tripped:
            self.trips.append(BreakerTrip(event.ts.isoformat(), event.name, event.reason))
        elif isinstance(event, RiskDenied):
            self.denied += 1


def run_backtest(
    bars: BarArrays,
    config: EngineConfig,
    *,
    progress: Progress | None = None,
    lean: bool = True,
    vector: bool = True,
) -> BacktestResult:
    """Run the strategy over ``bars``. ``lean=False`` takes the full per-bar path on every bar
    (the reference the fast paths are tested equal to); otherwise the vectorised path runs
    whenever it covers the run (``vector=False``, ``--engine-loop``, forces the lean loop)."""
    if len(bars) == 0:
        raise ValueError("no bars to backtest: the data range is empty")
    out: list[BacktestResult] = []
    asyncio.run(_into(out, _run(bars, config, progress, lean, vector)))
    return out[0]


async def _into(out: list[BacktestResult], run: Coroutine[None, None, BacktestResult]) -> None:
    """Hand the result over outside the task: on the way out ``asyncio.run`` restores the
    SIGINT handler, and Python's signal module reprs that handler, which holds the task and
    so its result (a whole backtest's fills, tens of milliseconds at a million bars)."""
    out.append(await run)


def chosen_path(bars: BarArrays, config: EngineConfig, *, lean: bool, vector: bool) -> str:
    """Which loop ``run_backtest`` takes: "vector", "lean" or "full"."""
    if not lean:
        return "full"
    return "vector" if vector and uncovered(bars, config) is None else "lean"


async def _run(
    bars: BarArrays, config: EngineConfig, progress: Progress | None, lean: bool, vector: bool
) -> BacktestResult:
    tf = config.strategy.tf
    first = bars.bar(0)
    parts = build_backtest(config, first.ts)  # the composition root builds every session
    engine, broker, clock = parts.engine, parts.broker, parts.clock
    recorder = _Recorder()
    await engine.start(starting_cash=config.starting_cash)
    path = chosen_path(bars, config, lean=lean, vector=vector)
    if path == "vector":
        step: BarStep | FillStep | None = None
        if step_uncovered(engine) is None:
            light = fills_uncovered(engine, broker, bars.symbol) is None
            step = FillStep(engine, broker) if light else BarStep(engine, broker)
        if step is None:
            engine.add_sink(_rare_sink(recorder))
        recorder.exposed = await drive_vector(
            engine, broker, clock, bars, recorder.equity, progress, step
        )
        if step is not None:
            recorder.fills, recorder.trips, recorder.denied = step.fills, step.trips, step.denied
    elif path == "lean":
        await _drive_lean(engine, broker, clock, bars, recorder, progress)
    else:
        engine.add_sink(recorder)
        await _drive_full(engine, clock, bars, progress)
    total = len(bars)
    last = bars.bar(total - 1)
    report = build_report(
        symbol=config.strategy.symbol,
        timeframe=tf.label,
        timeframe_seconds=tf.seconds,
        annualised=_annualised(bars, tf.seconds),
        start=first.ts,
        end=last.ts + tf.delta,
        start_equity=config.starting_cash,
        equity=recorder.equity,
        exposed_bars=recorder.exposed,
        fills=recorder.fills,
        rsi_oversold=config.strategy.rsi_oversold,
        rsi_overbought=config.strategy.rsi_overbought,
        breaker_trips=recorder.trips,
        orders_denied=recorder.denied,
    )
    await engine.stop("backtest finished")
    return BacktestResult(report=report, fills=tuple(recorder.fills))


def _annualised(bars: BarArrays, timeframe_seconds: int) -> tuple[str, float]:
    """``annualisation`` of the bars' stamps, once per bar set (a sweep's cells share it)."""
    key = ("annualisation", timeframe_seconds)
    return remembered(bars, key, lambda: annualisation(bars.ts_ns, timeframe_seconds))


def _rare_sink(recorder: _Recorder) -> Callable[[Event], None]:
    """A sink handing the recorder only fills, trips and denials (the fast paths build the
    equity curve themselves)."""
    rare = (OrderFilled, BreakerChanged, RiskDenied)
    return lambda event: recorder.rare(event) if type(event) in rare else None


async def _drive_full(
    engine: Engine, clock: SimClock, bars: BarArrays, progress: Progress | None
) -> None:
    feed = ReplayFeed(bars, clock, timeframe_seconds=engine.timeframe.seconds)
    total = len(bars)
    for i, bar in enumerate(feed.iter_sync()):
        await engine.on_bar(bar)
        if progress is not None and i % PROGRESS_EVERY == 0:
            progress(i, total)
    if progress is not None:
        progress(total, total)


async def _drive_lean(
    engine: Engine,
    broker: SimBroker,
    clock: SimClock,
    bars: BarArrays,
    recorder: _Recorder,
    progress: Progress | None,
) -> None:
    """The engine's bar path, taken in full only on bars where something can happen.

    A bar is *eventful* when the day rolls, an order is pending (it fills at this open), data
    went missing before it (staleness), equity crosses the drawdown limit, or the strategy's
    rule fires. Every other bar can only update the indicators and the equity curve, which this
    loop does inline with the same strategy and portfolio objects; per-bar events for such bars
    are not built because nobody subscribes to them in a backtest. tests/engine/test_backtest.py
    proves the result equals the full path bar for bar.
    """
    symbol = engine.symbol
    strategy = engine.strategy
    rsi_update, sma_update = strategy.updaters
    rule = rule_action  # the engine's own decision function: the two paths cannot disagree
    cfg = strategy.config
    oversold = cfg.rsi_oversold
    overbought = cfg.rsi_overbought
    breaches = engine.drawdown_breached
    data_seen = engine.data_seen
    portfolio = broker.portfolio
    positions = portfolio.positions
    pending = broker.pending_symbols
    tf_ns = engine.timeframe.seconds * 1_000_000_000
    stale_ns = int(engine.config.risk.stale_bars * tf_ns)
    equity_append = recorder.equity.append
    engine.add_sink(_rare_sink(recorder))
    process = engine.process_bar
    on_bar = engine.on_bar
    problem = price_problem
    last_ts_ns = -(2**62)
    last_equity = portfolio.cash
    total = len(bars)
    boundary_ns = -1
    prev_close_ns = int(bars.ts_ns[0])
    exposed = 0
    done = 0
    qty = 0.0  # position and cash change only on eventful bars: refreshed after each
    cash = portfolio.cash
    for chunk_start in range(0, total, _CHUNK):
        part = bars.slice(chunk_start, min(total, chunk_start + _CHUNK))
        ts_list = part.ts_ns.tolist()
        closes = part.close.tolist()
        opens = part.open.tolist()
        highs = part.high.tolist()
        lows = part.low.tolist()
        volumes = part.volume.tolist()
        for j in range(len(ts_list)):
            ts = ts_list[j]
            close = closes[j]
            if ts <= last_ts_ns or problem(opens[j], highs[j], lows[j], close, volumes[j]):
                # A bar the engine refuses (the one check both paths share): its own door
                # reports and drops it, at the bar's close as the full path would.
                clock.advance_to(datetime_from_ns(max(ts, last_ts_ns) + tf_ns))
                await on_bar(part.bar(j))
                continue
            last_ts_ns = ts
            if ts - prev_close_ns > stale_ns or ts >= boundary_ns:
                # Data was missing (overnight, or a hole): the gap, and perhaps a new day.
                boundary_ns = cross_gap(
                    engine,
                    clock,
                    prev_close_ns=prev_close_ns,
                    stale_ns=stale_ns,
                    ts=ts,
                    tf_ns=tf_ns,
                    boundary_ns=boundary_ns,
                    last_equity=last_equity,
                )
            equity = cash + qty * close
            if symbol in pending or (qty and breaches(equity)):
                indicators: tuple[float | None, float | None] | None = None
            else:
                rsi = rsi_update(close)
                sma = sma_update(close)
                if rule(rsi, sma, close, qty, oversold, overbought) == "hold":
                    equity_append(equity)
                    last_equity = equity
                    if qty:
                        exposed += 1
                    prev_close_ns = ts + tf_ns
                    continue
                indicators = (rsi, sma)
            # Eventful: the full engine path with a real Bar on a clock at the bar's close.
            clock.advance_to(datetime_from_ns(ts + tf_ns))
            data_seen(datetime_from_ns(prev_close_ns))
            await process(part.bar(j), indicators, schedule_stale_check=False)
            last_equity = engine.state.equity
            equity_append(last_equity)
            position = positions.get(symbol)
            qty = position.qty if position is not None else 0.0
            cash = portfolio.cash
            if engine.state.positions:
                exposed += 1
            prev_close_ns = ts + tf_ns
        done += len(ts_list)
        if progress is not None:
            progress(done, total)
    recorder.exposed = exposed


_CHUNK = 65_536


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
                [
                    fill.ts.isoformat(),
                    fill.side.value,
                    repr(fill.qty),
                    repr(fill.price),
                    repr(fill.fee),
                ]
            )
    tmp.replace(path)
