"""Property tests for the order invariants (DESIGN.md §10) under a broker on a bad day.

Hypothesis drives the real engine (with the real OrderTracker between it and the venue) over
price paths that signal often, while the broker's answers are delayed, duplicated, dropped and
reordered, submits time out or hang past the deadline, and look-ups fail. After every run:

1. exposure never exceeds one entry: no buy is accepted while the account holds a position or
   an open buy, and position plus open buys never exceeds the entry that opened it;
2. no sell is larger than the position less open sells; no order is sent twice;
3. once the broker answers again, every fill the venue made is in the journal as a fill (the
   journal's fills per order equal the venue's), and the engine's position is the venue's;
4. each order's journaled status only moves forward and is FILLED at most once.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import replace
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tapewatch.engine.core.clock import SimClock
from tapewatch.engine.core.engine import Engine
from tapewatch.engine.core.orderbook import rank
from tapewatch.engine.model.events import Event, OrderFilled, OrderSubmitted, OrderUpdated
from tapewatch.engine.model.types import Bar, Mode, OrderStatus
from tapewatch.engine.settings.config import RiskConfig
from tapewatch.engine.storage.journal import MemoryJournal
from tests.helpers import STEP, T0, small_config
from tests.reliability.chaos_broker import SUBMIT_FATES, ChaosBroker

PROPERTY = settings(
    derandomize=True,
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

OPS = st.one_of(
    st.tuples(st.just("deliver"), st.integers(0, 7)),
    st.tuples(st.just("duplicate"), st.integers(0, 7)),
    st.tuples(st.just("drop"), st.integers(0, 7)),
    st.tuples(st.just("fill"), st.integers(0, 3), st.sampled_from([0.3, 0.5, 1.0])),
    st.tuples(st.just("watch")),
)


def oscillating_closes(moves: list[float]) -> list[float]:
    """A path of big swings, so the RSI(3)/SMA(5) rule buys and sells often."""
    closes, price = [], 100.0
    for move in moves:
        price = max(5.0, price * (1.0 + move))
        closes.append(round(price, 2))
    return closes


def bar_at(i: int, close: float, prev: float) -> Bar:
    high = max(prev, close) + 0.05
    low = min(prev, close) - 0.05
    return Bar("SPY", T0 + i * STEP, prev, high, low, close, 1000.0)


def build(fates: list[str], failures: list[bool]) -> tuple[Engine, ChaosBroker, SimClock]:
    base = small_config(position_pct=0.5, rsi_oversold=50.0, rsi_overbought=60.0)
    risk = RiskConfig(order_deadline_seconds=0.02, entry_timeout_seconds=120.0)
    config = replace(base, risk=risk).validate()
    clock = SimClock(T0)
    broker = ChaosBroker(clock, cash=config.starting_cash, fates=fates, lookup_failures=failures)
    engine = Engine(config, clock=clock, broker=broker, journal=MemoryJournal(), mode=Mode.PAPER)
    return engine, broker, clock


async def run_session(
    moves: list[float],
    steps: list[list[tuple[object, ...]]],
    fates: list[str],
    failures: list[bool],
) -> tuple[Engine, ChaosBroker]:
    engine, broker, clock = build(fates, failures)
    await engine.start()
    prev = 100.0
    for i, close in enumerate(oscillating_closes(moves)):
        clock.advance_to(T0 + (i + 1) * STEP)
        await engine.on_bar(bar_at(i, close, prev))
        prev = close
        for op in steps[i % len(steps)] if steps else []:
            await apply(op, engine, broker)
            await asyncio.sleep(0)  # held POST answers are released on the next loop turn
    # The storm passes: the stream delivers what is left, look-ups answer, the engine settles.
    broker.reliable = True
    while broker.outbox:
        broker.deliver(0)
        await asyncio.sleep(0)
    clock.advance_to(clock.now() + timedelta(minutes=10))
    for _ in range(4):
        await engine.settle_open_orders("test")
        await asyncio.sleep(0)
    return engine, broker


async def apply(op: tuple[object, ...], engine: Engine, broker: ChaosBroker) -> None:
    kind = op[0]
    if kind == "deliver":
        broker.deliver(int(op[1]))  # type: ignore[call-overload]
    elif kind == "duplicate":
        broker.deliver(int(op[1]), duplicate=True)  # type: ignore[call-overload]
    elif kind == "drop":
        broker.deliver(int(op[1]), drop=True)  # type: ignore[call-overload]
    elif kind == "fill":
        broker.fill(int(op[1]), float(op[2]))  # type: ignore[arg-type, call-overload]
    elif kind == "watch":
        await engine.watch_once()


def journaled(engine: Engine) -> list[Event]:
    assert engine.journal is not None
    return [event for _, event in engine.journal.events()]


@PROPERTY
@given(
    moves=st.lists(st.sampled_from([-0.06, -0.03, 0.03, 0.06, 0.0]), min_size=12, max_size=60),
    steps=st.lists(st.lists(OPS, max_size=6), min_size=1, max_size=8),
    fates=st.lists(st.sampled_from(SUBMIT_FATES), min_size=1, max_size=8),
    failures=st.lists(st.booleans(), min_size=1, max_size=6),
)
def test_order_invariants_hold_whatever_the_broker_does(
    moves: list[float],
    steps: list[list[tuple[object, ...]]],
    fates: list[str],
    failures: list[bool],
) -> None:
    engine, broker = asyncio.run(run_session(moves, steps, fates, failures))
    v = broker.violations

    # 1-2: never stacked, never oversold, never resent.
    assert v.stacked_buys == []
    assert v.max_exposure_ratio <= 1.0 + 1e-9
    assert v.oversized_sells == []
    assert v.resent == []

    # 3: every venue fill is journaled as a fill, and the book agrees with the venue.
    events = journaled(engine)
    fills: dict[str, float] = defaultdict(float)
    for event in events:
        if isinstance(event, OrderFilled):
            fills[event.fill.client_order_id] += event.fill.qty
    for cid, order in broker.orders.items():
        assert abs(fills.get(cid, 0.0) - order.filled_qty) < 1e-6, cid
    assert set(fills) <= set(broker.orders)
    held = engine.portfolio.positions.get("SPY")
    assert abs((held.qty if held else 0.0) - broker.position) < 1e-6

    # 4: journaled status only moves forward; FILLED recorded once per order.
    seen: dict[str, tuple[int, float]] = {}
    filled_updates: dict[str, int] = defaultdict(int)
    for event in events:
        if not isinstance(event, OrderSubmitted | OrderUpdated | OrderFilled):
            continue
        order = event.order
        if isinstance(event, OrderUpdated) and order.status is OrderStatus.FILLED:
            filled_updates[order.client_order_id] += 1
        if isinstance(event, OrderSubmitted):
            continue  # the POST answer is the order as accepted, whatever happened since
        before = seen.get(order.client_order_id, (0, 0.0))
        now = (rank(order.status), order.filled_qty)
        assert now[0] >= before[0], f"{order.client_order_id} went back to {order.status}"
        assert now[1] >= before[1] - 1e-9
        seen[order.client_order_id] = now
    assert all(count <= 1 for count in filled_updates.values()), filled_updates


def test_a_fill_streamed_before_the_post_answer_is_not_undone() -> None:
    """The stale POST answer (accepted, 0 filled) after the stream's fill changes nothing."""
    moves = [0.06] * 6 + [-0.03] * 2 + [0.06] * 3 + [-0.03] * 2 + [0.06] * 4
    engine, _ = asyncio.run(run_session(moves, [[]], ["stale"], [False]))
    events = journaled(engine)
    fills = [e for e in events if isinstance(e, OrderFilled)]
    assert fills, "the path must trade for this test to mean anything"
    updates = [e for e in events if isinstance(e, OrderUpdated)]
    statuses = {e.order.client_order_id: e.order.status for e in updates}
    assert OrderStatus.ACCEPTED not in statuses.values()
    assert engine.book.open_count() == 0


def test_an_unanswered_entry_blocks_the_next_entry_until_resolved() -> None:
    """Submits lose their answers and look-ups fail: the entry counts as open (unknown), so
    repeated buy signals send no second entry."""
    moves = ([0.06] * 6 + [-0.03] * 2) * 4
    engine, broker = asyncio.run(run_session(moves, [[]], ["lost"], [True]))
    buys = [o for o in broker.orders.values() if o.side.value == "buy"]
    assert len(buys) == 1
    notices = [getattr(e, "message", "") for e in journaled(engine)]
    assert any("still open" in m for m in notices)
