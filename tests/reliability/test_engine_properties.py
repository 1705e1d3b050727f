"""Property-based tests: random bar paths and operator commands against the engine's promises.

Hypothesis builds price paths (random walks with jumps, flat stretches, gaps in time, overnight
breaks, crashes) interleaved with the operator's commands (pause, resume, flatten, reset,
restart) and checks after every step that the engine keeps its invariants:

- the simulated broker never holds negative cash or a short position (the strategy is long-only);
- every order is written before it is sent: each fill's client_order_id has exactly one
  OrderIntended earlier in the journal, and no client_order_id is intended or submitted twice;
- while paused (or REDUCING) no ENTRY order is sent, only denied; while HALTED only FLATTEN;
- replaying the journal (engine.portfolio.rebuild) gives the broker's cash and positions exactly;
- the journal's seq strictly increases and holds every journaled-kind event published, in order;
- the read model's trading state is the risk gate's;
- a restart (a new Engine over the same journal) brings breakers and the portfolio back.

Malformed bars (NaN or infinite prices, a zero price, negative volume, high below low, a
duplicate or older timestamp, another symbol) must change nothing: the run with them inserted
must trade exactly like the run without them. Zero-volume bars are valid (a quiet interval)
and must be traded exactly like the same bars with volume.

Every run is seeded (``derandomize=True``); commands run on a SimClock, so nothing depends on
the wall clock.
"""

from __future__ import annotations

import asyncio
import math
import random
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from datetime import time as dtime
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tapewatch.engine.core.engine import Engine
from tapewatch.engine.core.order_flow import JOURNALED
from tapewatch.engine.core.portfolio import rebuild
from tapewatch.engine.model.events import (
    BreakerChanged,
    Event,
    OrderFilled,
    OrderIntended,
    OrderSubmitted,
    OrderUpdated,
    RiskDenied,
    SignalEvaluated,
)
from tapewatch.engine.model.types import (
    Bar,
    Intent,
    Mode,
    Order,
    OrderRequest,
    TradingState,
    client_order_id,
)
from tapewatch.engine.settings.config import EngineConfig, ExecutionConfig, RiskConfig
from tapewatch.engine.storage.journal import EventJournal, Journal, MemoryJournal
from tests.helpers import STEP, T0, make_engine, small_config

ET = ZoneInfo("America/New_York")
SYMBOL = "SPY"
CASH_EPS = 1e-9  # the SimBroker's own tolerance when it checks that an order is affordable
WHO = "tester@local"

PROPERTY = settings(
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def regular_hours(now: datetime) -> bool:
    """09:30-16:00 New York on weekdays: overnight silence must not trip the stale breaker."""
    local = now.astimezone(ET)
    return local.weekday() < 5 and dtime(9, 30) <= local.time() < dtime(16, 0)


def next_open(ts: datetime) -> datetime:
    """09:30 New York on the next calendar day after ``ts``."""
    day = ts.astimezone(ET).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, 9, 30, tzinfo=ET).astimezone(T0.tzinfo)


def cents(price: float) -> float:
    return max(round(price, 2), 0.01)


def config_for(position_pct: float, slippage_bps: float, commission: float) -> EngineConfig:
    base = small_config(position_pct=position_pct)
    return replace(
        base,
        execution=ExecutionConfig(slippage_bps=slippage_bps, commission_per_order=commission),
        risk=RiskConfig(max_drawdown=0.05, stale_bars=2.0),
    ).validate()


# ---------------------------------------------------------------------------- the harness


class Harness:
    """One engine (and its successors after restarts) over one broker, clock and journal."""

    def __init__(
        self, config: EngineConfig, open_journal: Callable[[EventJournal | None], EventJournal]
    ) -> None:
        self.config = config
        self._open_journal = open_journal
        self.journal = open_journal(None)
        self.engine, self.broker, self.clock = make_engine(
            config, journal=self.journal, in_session=regular_hours
        )
        self._guard_submits()
        self.published: list[Event] = []
        # (intent, gate state, paused) and (buy signal, gate state) at the moment of publishing
        self.intents: list[tuple[OrderIntended, TradingState, bool]] = []
        self.buy_signals: list[tuple[SignalEvaluated, TradingState]] = []
        self._watch(self.engine)
        self.last_close = 100.0
        self.next_ts = T0
        self.restarts = 0

    def _guard_submits(self) -> None:
        """Write-ahead, checked where it matters: when the broker hears of an order, its intent
        is already in the journal (the engine's buffer does not count: it dies with the process)."""
        submit = self.broker.submit_order

        async def guarded(request: OrderRequest) -> Order:
            cid = request.client_order_id
            recorded = [
                e
                for _, e in self.journal.events(kinds=("intent",))
                if isinstance(e, OrderIntended) and e.request.client_order_id == cid
            ]
            assert len(recorded) == 1, f"{cid} reached the broker with {len(recorded)} intents"
            return await submit(request)

        self.broker.submit_order = guarded  # type: ignore[method-assign]

    def _watch(self, engine: Engine) -> None:
        def sink(event: Event) -> None:
            self.published.append(event)
            if isinstance(event, OrderIntended):
                paused = engine.gate.operator_pause.tripped
                self.intents.append((event, engine.gate.state, paused))
            elif isinstance(event, SignalEvaluated) and event.action == "buy":
                self.buy_signals.append((event, engine.gate.state))

        engine.bus.add_sink(sink)

    # -- input ----------------------------------------------------------------------------

    def make_bar(self, close: float, open_: float | None = None, volume: float = 1000.0) -> Bar:
        o = cents(self.last_close if open_ is None else open_)
        c = cents(close)
        bar = Bar(
            SYMBOL, self.next_ts, o, max(o, c) + 0.01, max(min(o, c) - 0.01, 0.005), c, volume
        )
        self.next_ts += STEP
        self.last_close = c
        return bar

    async def deliver(self, bar: Bar, *, check: bool = True) -> None:
        """As the replay feed does: the clock moves to the bar's end, then the bar arrives."""
        self.clock.advance_to(bar.ts + STEP)
        await self.engine.on_bar(bar)
        if check:
            check_invariants(self)

    async def command(self, name: str) -> None:
        engine = self.engine
        if name == "pause":
            await engine.pause(WHO)
        elif name == "resume":
            await engine.resume(WHO)
        elif name == "flatten":
            await engine.flatten(WHO)
        elif name == "reset":
            await engine.reset_breaker(WHO)
        elif name == "restart":
            await self.restart()
        else:  # pragma: no cover - the strategies only draw the names above
            raise ValueError(name)
        check_invariants(self)

    async def restart(self) -> None:
        """Stop the engine and start a new one over the same journal (and the same broker,
        which outlives the process as Alpaca would); it must come back exactly as it was."""
        before = snapshot(self.engine)
        await self.engine.stop("restart")
        self.journal = self._open_journal(self.journal)
        engine = Engine(
            self.config,
            clock=self.clock,
            broker=self.broker,
            journal=self.journal,
            mode=Mode.DEMO,
            who=WHO,
            in_session=regular_hours,
        )
        self._watch(engine)
        self.engine = engine
        await engine.start()
        assert snapshot(engine) == before, "a restart changed breakers or the portfolio"
        self.restarts += 1


def snapshot(engine: Engine) -> tuple[Any, ...]:
    gate = engine.gate
    breakers = tuple((b.name, b.tripped, b.reason, b.tripped_at, b.state) for b in gate.breakers)
    positions = {s: (p.qty, p.avg_entry_price) for s, p in engine.portfolio.positions.items()}
    return (
        breakers,
        gate.state,
        engine.state.trading_state,
        gate.day_start_equity,
        engine.portfolio.cash,
        positions,
    )


def check_invariants(h: Harness) -> None:
    engine, broker = h.engine, h.broker
    # The broker: long-only, never overdrawn.
    assert broker.cash >= -CASH_EPS, f"negative cash at the broker: {broker.cash}"
    for symbol, position in broker.portfolio.positions.items():
        assert position.qty > 0, f"short or empty position {symbol}: {position.qty}"

    # The journal: seq strictly increasing, nothing published is missing, nothing extra.
    rows = list(h.journal.events())
    seqs = [seq for seq, _ in rows]
    assert all(a < b for a, b in pairwise(seqs)), "journal seq not increasing"
    journaled = [event for _, event in rows]
    expected = [event for event in h.published if event.kind in JOURNALED]
    assert len(journaled) == len(expected), (
        f"{len(expected)} journaled-kind events published, {len(journaled)} in the journal"
    )
    assert journaled == expected, "the journal differs from what was published"

    # Write-ahead: exactly one intent before any submit or fill; nothing sent twice.
    intended: Counter[str] = Counter()
    submitted: Counter[str] = Counter()
    for event in journaled:
        if isinstance(event, OrderIntended):
            intended[event.request.client_order_id] += 1
        elif isinstance(event, OrderSubmitted | OrderFilled):
            cid = event.order.client_order_id
            assert intended[cid] == 1, f"{event.kind} {cid} without exactly one earlier intent"
            if isinstance(event, OrderSubmitted):
                submitted[cid] += 1
    assert max(intended.values(), default=0) <= 1, "a client_order_id was intended twice"
    assert max(submitted.values(), default=0) <= 1, "a client_order_id was submitted twice"

    # The gate: paused/REDUCING sends no entry; HALTED sends only the operator's flatten.
    for intent, state, paused in h.intents:
        kind = intent.request.intent
        if state is TradingState.HALTED:
            assert kind is Intent.FLATTEN, f"{kind} order sent while HALTED"
        if paused or state is not TradingState.ACTIVE:
            assert kind is not Intent.ENTRY, f"entry sent while {state} (paused={paused})"
    denials = [e for e in h.published if isinstance(e, RiskDenied)]
    assert all(e.request.intent is not Intent.FLATTEN for e in denials), "a flatten was denied"
    denied = {e.request.client_order_id for e in denials}
    name = h.config.strategy_name
    for signal, state in h.buy_signals:
        if state is not TradingState.ACTIVE:
            cid = client_order_id(name, signal.symbol, signal.bar_ts, Intent.ENTRY)
            assert cid in denied, f"entry signal at {signal.bar_ts} while {state} not denied"

    # The projection: replaying the journal gives the broker's books exactly.
    rebuilt = rebuild(journaled)
    assert rebuilt.cash == broker.cash, f"rebuilt cash {rebuilt.cash} != broker {broker.cash}"
    books = broker.portfolio.positions
    assert set(rebuilt.positions) == set(books)
    for symbol, position in books.items():
        mine = rebuilt.positions[symbol]
        assert (mine.qty, mine.avg_entry_price, mine.last_price) == (
            position.qty,
            position.avg_entry_price,
            position.last_price,
        ), f"rebuilt {symbol} {mine} != broker {position}"
    assert engine.portfolio.cash == broker.cash
    assert {s: (p.qty, p.avg_entry_price) for s, p in engine.portfolio.positions.items()} == {
        s: (p.qty, p.avg_entry_price) for s, p in books.items()
    }

    # The read model agrees with the gate.
    assert engine.state.trading_state is engine.gate.state


# ---------------------------------------------------------------------------- generation


def walk(seed: int, n: int, vol_bp: float) -> list[float]:
    """``n`` moves in basis points: a seeded Gaussian walk with an occasional 10% jump.

    Hypothesis draws the seed, not each move: its favourite values (zeros, small numbers) make
    paths too tame to ever reach an entry, while a seeded walk looks like a market and still
    shrinks (fewer bars, a smaller seed)."""
    rng = random.Random(seed)
    return [
        rng.gauss(0.0, vol_bp) + (rng.choice((-1000, 1000)) if rng.random() < 0.03 else 0.0)
        for _ in range(n)
    ]


SEED = st.integers(0, 2**32 - 1)
VOL = st.sampled_from([30.0, 80.0, 200.0])  # basis points per bar: calm, busy, wild
# An entry: a rise that lifts the SMA, then a three-bar dip (RSI(3) = 0) still above it.
SETUP = (1.0, 1.01, 1.02, 1.03, 1.04, 1.10, 1.095, 1.09, 1.088)
OPS = st.one_of(
    st.tuples(
        st.just("bars"),
        st.sampled_from([0, 0, 0, 0, 0, 1, 2, 4]),  # missing bars (a gap in time) before the run
        st.integers(-300, 300),  # the first bar's opening gap, basis points
        st.integers(1, 20),
        SEED,
        VOL,
    ),
    st.tuples(st.just("setup")),  # a buy signal (if flat and ACTIVE)
    st.tuples(st.just("rally"), st.integers(3, 5)),  # rises: a sell signal when long
    st.tuples(st.just("flat"), st.integers(1, 8)),
    st.tuples(st.just("crash"), st.integers(8, 40)),  # percent: a drawdown for a held position
    st.tuples(st.just("overnight")),
    *(st.tuples(st.just(name)) for name in ("pause", "resume", "flatten", "reset", "restart")),
)
CONFIGS = st.tuples(
    st.sampled_from([0.25, 0.9, 1.0]),  # position_pct: 1.0 spends every dollar
    st.sampled_from([0.0, 5.0]),  # slippage bps
    st.sampled_from([0.0, 1.0]),  # commission per order
)


async def play(h: Harness, ops: Sequence[tuple[Any, ...]]) -> None:
    for op in ops:
        kind = op[0]
        if kind == "bars":
            _, skip, gap_bp, n, seed, vol = op
            h.next_ts += skip * STEP
            open_ = h.last_close * (1 + gap_bp / 10_000)
            for i, bp in enumerate(walk(seed, n, vol)):
                start = open_ if i == 0 else h.last_close
                await h.deliver(h.make_bar(start * (1 + bp / 10_000), start))
        elif kind == "setup":
            base = h.last_close
            for factor in (*SETUP, SETUP[-1]):  # the signal, then the bar it fills on
                await h.deliver(h.make_bar(base * factor))
        elif kind == "rally":
            for _ in range(op[1]):
                await h.deliver(h.make_bar(h.last_close * 1.008))
        elif kind == "flat":
            for _ in range(op[1]):
                await h.deliver(h.make_bar(h.last_close))
        elif kind == "crash":
            drop = op[1] / 100
            start = h.last_close
            await h.deliver(h.make_bar(start * (1 - drop), start * (1 - drop / 2)))
        elif kind == "overnight":
            h.next_ts = next_open(h.next_ts)
        else:
            await h.command(kind)


def memory_journal() -> Callable[[EventJournal | None], EventJournal]:
    store = MemoryJournal()
    return lambda _old: store  # a restart reopens the same in-memory journal


def file_journal(path: Path) -> Callable[[EventJournal | None], EventJournal]:
    def reopen(old: EventJournal | None) -> EventJournal:
        if old is not None:
            old.close()
        return Journal(path)

    return reopen


# ---------------------------------------------------------------------------- properties


@settings(PROPERTY, max_examples=500)
@given(cfg=CONFIGS, ops=st.lists(OPS, min_size=3, max_size=30))
def test_random_paths_and_commands_keep_every_invariant(
    cfg: tuple[float, float, float], ops: list[tuple[Any, ...]]
) -> None:
    async def run() -> None:
        h = Harness(config_for(*cfg), memory_journal())
        await h.engine.start()
        check_invariants(h)
        await play(h, ops)
        await h.restart()  # whatever happened, a restart brings it all back
        check_invariants(h)

    asyncio.run(run())


@settings(PROPERTY, max_examples=60)
@given(cfg=CONFIGS, ops=st.lists(OPS, min_size=3, max_size=20))
def test_restarts_over_the_journal_file_bring_back_breakers_and_portfolio(
    cfg: tuple[float, float, float], ops: list[tuple[Any, ...]]
) -> None:
    async def run(folder: Path) -> None:
        h = Harness(config_for(*cfg), file_journal(folder / "journal.sqlite3"))
        try:
            await h.engine.start()
            await play(h, [*ops, ("restart",)])
            await h.restart()  # twice in a row changes nothing either
            check_invariants(h)
        finally:
            h.journal.close()

    with tempfile.TemporaryDirectory(prefix="tw-prop-") as folder:
        asyncio.run(run(Path(folder)))


def test_the_generated_paths_do_trade_and_trip_breakers() -> None:
    """The properties only mean something if the paths reach entries, exits, halts, pauses."""
    seen: Counter[str] = Counter()

    @settings(PROPERTY, max_examples=60)
    @given(cfg=CONFIGS, ops=st.lists(OPS, min_size=5, max_size=30))
    def explore(cfg: tuple[float, float, float], ops: list[tuple[Any, ...]]) -> None:
        async def run() -> None:
            h = Harness(config_for(*cfg), memory_journal())
            await h.engine.start()
            await play(h, ops)
            for event in h.published:
                if isinstance(event, OrderFilled):
                    seen[f"fill_{event.fill.side.value}"] += 1
                elif isinstance(event, RiskDenied):
                    seen[f"denied_{event.request.intent.value}"] += 1
                elif isinstance(event, BreakerChanged) and event.tripped:
                    seen[f"tripped_{event.name}"] += 1
                elif isinstance(event, OrderIntended) and event.request.intent is Intent.FLATTEN:
                    seen["flatten"] += 1
            seen["restart"] += h.restarts

        asyncio.run(run())

    explore()
    for needed in (
        "fill_buy",
        "fill_sell",
        "denied_entry",
        "tripped_drawdown",
        "tripped_pause",
        "tripped_stale",
        "flatten",
        "restart",
    ):
        assert seen[needed] >= 3, f"the generated paths rarely reach {needed}: {dict(seen)}"


# ---------------------------------------------------------------------------- malformed bars

NAN = math.nan
INF = math.inf


def _nan_close(bar: Bar) -> Bar:
    return replace(bar, close=NAN)


MALFORMED: dict[str, Callable[[Bar], Bar]] = {
    # Delivered just before the good bar whose time slot it claims.
    "nan_close": _nan_close,
    "nan_open": lambda b: replace(b, open=NAN),
    "inf_high": lambda b: replace(b, high=INF),
    "zero_price": lambda b: replace(b, open=0.0, low=0.0, close=0.0),
    "negative_volume": lambda b: replace(b, volume=-100.0),
    "nan_volume": lambda b: replace(b, volume=NAN),
    "high_below_low": lambda b: replace(b, high=b.low - 1.0),
    "other_symbol": lambda b: replace(b, symbol="QQQ", close=b.close * 0.5),
}
REPEATED: dict[str, Callable[[Sequence[Bar], int], Bar]] = {
    # Delivered just after good bar ``i`` (so its time is not new).
    "duplicate": lambda bars, i: bars[i],
    "revised_duplicate": lambda bars, i: replace(bars[i], close=round(bars[i].close * 0.9, 2)),
    "older": lambda bars, i: replace(bars[max(0, i - 3)], close=bars[max(0, i - 3)].close * 1.1),
}
BAD_KINDS = (*MALFORMED, *REPEATED)


def bad_bar(kind: str, bars: Sequence[Bar], i: int) -> tuple[Bar, int]:
    """The malformed bar of ``kind`` and where it goes: before index ``i``, or just after it."""
    if kind in MALFORMED:
        return MALFORMED[kind](bars[i]), i
    return REPEATED[kind](bars, i), i + 1


def outcome(h: Harness) -> tuple[Any, ...]:
    """Everything trading-relevant a run did: decisions, orders, fills, breakers, the books."""
    trail: list[tuple[Any, ...]] = []
    for e in h.published:
        if isinstance(e, SignalEvaluated):
            trail.append(("signal", e.bar_ts, e.action, e.rsi, e.sma))
        elif isinstance(e, OrderIntended | RiskDenied):
            r = e.request
            trail.append((e.kind, r.client_order_id, r.side, r.qty, r.estimated_price))
        elif isinstance(e, OrderSubmitted | OrderUpdated):
            trail.append((e.kind, e.order.client_order_id, e.order.status))
        elif isinstance(e, OrderFilled):
            f = e.fill
            trail.append(("fill", f.client_order_id, f.side, f.qty, f.price, f.fee, f.ts))
        elif isinstance(e, BreakerChanged):
            trail.append(("breaker", e.name, e.tripped, e.ts))
    books = {s: (p.qty, p.avg_entry_price) for s, p in h.broker.portfolio.positions.items()}
    return tuple(trail), h.broker.cash, books, h.engine.gate.state


async def run_bars(
    bars: Sequence[Bar],
    inserts: dict[int, list[Bar]] | None = None,
    config: EngineConfig | None = None,
) -> Harness:
    """Feed ``bars``; ``inserts[i]`` are delivered just before ``bars[i]`` (i == len: after all).

    Invariants are checked after every good bar, never between a bad bar and the next good one
    (a bad bar must simply not count)."""
    h = Harness(config or config_for(0.9, 0.0, 0.0), memory_journal())
    await h.engine.start()
    inserts = inserts or {}
    for i, bar in enumerate(bars):
        for bad in inserts.get(i, []):
            await h.deliver(bad, check=False)
        await h.deliver(bar)
    for bad in inserts.get(len(bars), []):
        await h.deliver(bad, check=False)
    check_invariants(h)
    return h


def assert_traded_on_finite_prices(h: Harness) -> None:
    for e in h.published:
        if isinstance(e, OrderFilled):
            assert math.isfinite(e.fill.price) and e.fill.price > 0, f"traded at {e.fill.price}"
        if isinstance(e, OrderIntended):
            price = e.request.estimated_price
            assert price is None or (math.isfinite(price) and price > 0), f"sized on {price}"
            assert math.isfinite(e.request.qty)
    assert math.isfinite(h.broker.cash) and math.isfinite(h.broker.equity)


# Rises, a 3-bar dip (buy), fills, rises (sell), fills, then more bars: every stage of an
# order's life has a bar next to it where a malformed one can be slipped in.
SCENARIO = [100, 101, 102, 103, 104, 110, 109.5, 109, 108.8, 109.2, 109.6, 110.4, 111.0, 111.5]
SCENARIO += [111.2, 110.9, 111.4, 108.0, 104.0, 103.0, 102.5]


def path_bars(n: int, seed: int, vol: float) -> list[Bar]:
    """A setup (so the path trades) followed by a seeded walk."""
    maker = Harness(config_for(0.9, 0.0, 0.0), memory_journal())
    bars = [maker.make_bar(100.0 * factor) for factor in SETUP]
    bars += [maker.make_bar(maker.last_close * (1 + bp / 10_000)) for bp in walk(seed, n, vol)]
    return bars


def scenario_bars() -> list[Bar]:
    h = Harness(config_for(0.9, 0.0, 0.0), memory_journal())
    return [h.make_bar(close) for close in SCENARIO]


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_a_malformed_bar_anywhere_in_a_trade_changes_nothing(kind: str) -> None:
    """Slip one bad bar in at every position of a buy-then-sell scenario: the run must trade
    exactly as without it, never crash, and never price anything on a non-finite number."""

    async def run() -> None:
        bars = scenario_bars()
        clean = await run_bars(bars)
        fills = [e for e in clean.published if isinstance(e, OrderFilled)]
        assert len(fills) >= 2, "the scenario must buy and sell for the check to mean anything"
        expected = outcome(clean)
        for i in range(len(bars)):
            bad, at = bad_bar(kind, bars, i)
            dirty = await run_bars(bars, {at: [bad]})
            assert_traded_on_finite_prices(dirty)
            assert outcome(dirty) == expected, (
                f"the {kind} bar delivered {'before' if at == i else 'after'} bar {i} "
                f"({bars[i].ts:%H:%M}) changed what the engine did"
            )

    asyncio.run(run())


async def run_with_restart(bars: Sequence[Bar], restart_after: int, replay: int) -> Harness:
    """Deliver ``bars[:restart_after + 1]``, restart, let the feed resend the last ``replay``
    of them (a reconnect, or a replay feed starting over), then deliver the rest."""
    h = Harness(config_for(0.9, 0.0, 0.0), memory_journal())
    await h.engine.start()
    for bar in bars[: restart_after + 1]:
        await h.deliver(bar)
    await h.restart()
    for bar in bars[max(0, restart_after + 1 - replay) : restart_after + 1]:
        await h.deliver(bar, check=False)
    for bar in bars[restart_after + 1 :]:
        await h.deliver(bar)
    check_invariants(h)
    return h


@pytest.mark.parametrize("replay", [1, 4, len(SCENARIO)])
def test_bars_resent_after_a_restart_change_nothing(replay: int) -> None:
    """A restarted engine must not take bars older than the journal's newest: the broker would
    fill pending orders at stale prices and a warmed strategy could decide an old bar again."""

    async def run() -> None:
        bars = scenario_bars()
        for i in range(len(bars) - 1):
            clean = await run_with_restart(bars, i, 0)
            resent = await run_with_restart(bars, i, replay)
            assert_traded_on_finite_prices(resent)
            assert outcome(resent) == outcome(clean), (
                f"resending {min(replay, i + 1)} bar(s) after a restart after bar {i} "
                f"({bars[i].ts:%H:%M}) changed what the engine did"
            )

    asyncio.run(run())


@settings(PROPERTY, max_examples=100)
@given(
    cfg=CONFIGS,
    n=st.integers(8, 60),
    seed=SEED,
    vol=VOL,
    bad=st.lists(st.tuples(st.sampled_from(BAD_KINDS), st.integers(0, 10_000)), max_size=6),
)
def test_malformed_bars_mixed_into_random_paths_change_nothing(
    cfg: tuple[float, float, float], n: int, seed: int, vol: float, bad: list[tuple[str, int]]
) -> None:
    async def run() -> None:
        bars = path_bars(n, seed, vol)
        inserts: dict[int, list[Bar]] = {}
        for kind, where in bad:
            bar, at = bad_bar(kind, bars, where % len(bars))
            inserts.setdefault(at, []).append(bar)
        clean = await run_bars(bars, config=config_for(*cfg))
        dirty = await run_bars(bars, inserts, config=config_for(*cfg))
        assert_traded_on_finite_prices(dirty)
        assert outcome(dirty) == outcome(clean), f"malformed bars {bad} changed the run"

    asyncio.run(run())


@settings(PROPERTY, max_examples=50)
@given(cfg=CONFIGS, n=st.integers(8, 60), seed=SEED, vol=VOL)
def test_zero_volume_bars_are_traded_like_any_other(
    cfg: tuple[float, float, float], n: int, seed: int, vol: float
) -> None:
    """A bar with no volume is a quiet interval, not garbage: same decisions as with volume."""

    async def run() -> None:
        bars = path_bars(n, seed, vol)
        quiet = [replace(bar, volume=0.0) for bar in bars]
        loud = await run_bars(bars, config=config_for(*cfg))
        still = await run_bars(quiet, config=config_for(*cfg))
        assert outcome(still) == outcome(loud)

    asyncio.run(run())
