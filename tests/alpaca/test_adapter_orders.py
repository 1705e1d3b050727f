"""The order tracker and the account book, without a server: each fill exactly once and
priced exactly, no phantom fills for adopted orders, events held back during a submit."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from tapewatch.engine.adapters.alpaca.account import AccountBook
from tapewatch.engine.adapters.alpaca.orders import OrderTracker
from tapewatch.engine.model.events import Event, OrderFilled, OrderUpdated
from tapewatch.engine.model.types import AccountSnapshot, Fill, OrderStatus, Position, Side

NOW = datetime(2024, 3, 5, 15, 0, tzinfo=UTC)


def snapshot(cid: str, status: str, filled: str = "0", avg: str | None = None) -> dict[str, object]:
    return {
        "id": f"id-{cid}",
        "client_order_id": cid,
        "symbol": "SPY",
        "side": "buy",
        "qty": "3",
        "filled_qty": filled,
        "filled_avg_price": avg,
        "status": status,
    }


def tracker() -> tuple[OrderTracker, list[Event]]:
    events: list[Event] = []
    return OrderTracker(events.append, lambda: NOW, poll_after=1.0), events


def test_partial_fills_are_reported_as_exact_increments() -> None:
    t, events = tracker()
    t.observe(snapshot("a", "new"))
    t.observe(snapshot("a", "partially_filled", "1", "100.10"))
    t.observe(snapshot("a", "partially_filled", "1", "100.10"))  # a replay: nothing new
    t.observe(snapshot("a", "filled", "3", "100.30"))
    fills = [e.fill for e in events if isinstance(e, OrderFilled)]
    assert [(f.qty, f.price) for f in fills] == [(1.0, 100.1), (2.0, 100.4)]  # (300.9-100.1)/2
    assert isinstance(events[-1], OrderFilled)
    assert events[-1].order.status is OrderStatus.FILLED and len(events) == 2


def test_an_order_ending_without_fill_is_one_update() -> None:
    t, events = tracker()
    t.observe(snapshot("c", "accepted"))
    t.observe(snapshot("c", "partially_filled", "1", "50"))
    t.observe(snapshot("c", "canceled", "1", "50"))
    t.observe(snapshot("c", "canceled", "1", "50"))
    assert [type(e) for e in events] == [OrderFilled, OrderUpdated]
    assert isinstance(events[1], OrderUpdated) and events[1].order.status is OrderStatus.CANCELLED


def test_a_looked_up_order_is_adopted_without_a_phantom_fill() -> None:
    t, events = tracker()
    t.observe(snapshot("old", "filled", "3", "99"), baseline=True)
    t.observe(snapshot("old", "filled", "3", "99"))
    assert events == []
    t.observe(snapshot("manual", "filled", "3", "99"))  # first seen on the stream: counted
    assert [e.fill.qty for e in events if isinstance(e, OrderFilled)] == [3.0]


async def test_events_during_a_submit_wait_until_it_returns() -> None:
    t, events = tracker()
    t.begin_submit("s")
    t.observe(snapshot("s", "filled", "3", "10"))  # the fill beat the POST's answer
    assert events == []
    assert t.open_ids() == []  # not polled while the submit is in flight
    t.end_submit("s")
    assert events == []  # released on the next loop turn, after OrderSubmitted
    await asyncio.sleep(0)
    assert [e.fill.qty for e in events if isinstance(e, OrderFilled)] == [3.0]


def test_quiet_open_orders_are_polled_less_and_less_often() -> None:
    clock = [0.0]
    t = OrderTracker(lambda _e: None, lambda: NOW, poll_after=1.0, monotonic=lambda: clock[0])
    t.observe(snapshot("p", "new"))
    assert t.due_for_poll() == []
    clock[0] = 1.0
    assert t.due_for_poll() == ["p"]
    clock[0] = 2.5
    assert t.due_for_poll() == []  # the interval doubled to 2 s
    clock[0] = 3.0
    assert t.due_for_poll() == ["p"]
    t.observe(snapshot("p", "filled", "3", "1"))
    clock[0] = 100.0
    assert t.due_for_poll() == []
    t.begin_submit("never")
    t.end_submit("never")
    for _ in range(5):
        t.missed("never")
    assert t.open_ids() == []  # an order that never landed is dropped after a few misses


def test_the_account_book_projects_fills_and_drops_a_racing_refresh() -> None:
    book = AccountBook(refresh_after=30.0, monotonic=lambda: 0.0)
    start = AccountSnapshot(cash=1000.0, equity=1000.5, positions=(), account_id="PA1")
    assert book.replace(start, book.generation)
    generation = book.generation
    book.apply_fill(Fill("o", "c", "SPY", Side.BUY, 2.0, 100.0, 0.0, NOW))
    book.mark("SPY", 110.0)
    snap = book.snapshot()
    assert snap is not None
    assert snap.cash == 800.0 and snap.positions == (Position("SPY", 2.0, 100.0, 110.0),)
    assert snap.equity == pytest.approx(800.0 + 220.0 + 0.5)  # Alpaca's offset is kept
    stale = AccountSnapshot(cash=1000.0, equity=1000.0, positions=(), account_id="PA1")
    assert not book.replace(stale, generation)  # read before the fill: dropped
    assert book.snapshot() == snap
