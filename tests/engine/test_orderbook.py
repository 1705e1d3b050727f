"""Order views merge forward only: the engine's book and the Alpaca adapter's tracker alike."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from tapewatch.engine.adapters.alpaca.orders import OrderTracker
from tapewatch.engine.core.orderbook import OrderBook, merge
from tapewatch.engine.model.events import Event, OrderFilled, OrderUpdated
from tapewatch.engine.model.types import Fill, Intent, Order, OrderRequest, OrderStatus, Side

T = datetime(2024, 3, 4, 15, 0, tzinfo=UTC)


def order(status: OrderStatus, filled: float = 0.0, avg: float | None = None) -> Order:
    return Order("id-1", "cid-1", "SPY", Side.BUY, 10.0, status, filled, avg)


def test_a_stale_accepted_answer_after_a_fill_changes_nothing() -> None:
    filled = order(OrderStatus.FILLED, 10.0, 500.0)
    assert merge(filled, order(OrderStatus.ACCEPTED)) == filled


def test_more_filled_wins_and_final_is_final() -> None:
    partial = merge(order(OrderStatus.ACCEPTED), order(OrderStatus.PARTIALLY_FILLED, 4.0, 501.0))
    assert partial.status is OrderStatus.PARTIALLY_FILLED and partial.filled_qty == 4.0
    assert merge(partial, order(OrderStatus.PARTIALLY_FILLED, 3.0, 500.0)) == partial
    cancelled = merge(partial, order(OrderStatus.CANCELLED, 4.0, 501.0))
    assert cancelled.status is OrderStatus.CANCELLED
    assert merge(cancelled, order(OrderStatus.FILLED, 4.0, 501.0)).status is OrderStatus.CANCELLED
    # An optimistic "cancelled" that a fill raced: the fill is the truth.
    raced = merge(order(OrderStatus.CANCELLED), order(OrderStatus.FILLED, 10.0, 500.0))
    assert raced.status is OrderStatus.FILLED and raced.filled_qty == 10.0


def test_an_unknown_outcome_counts_as_open_exposure() -> None:
    book = OrderBook()
    request = OrderRequest("cid-1", "SPY", Side.BUY, 10.0, Intent.ENTRY)
    book.intend(request, T)
    assert book.open_buy_qty("SPY") == 10.0 and book.open_count() == 1
    book.observe(order(OrderStatus.PARTIALLY_FILLED, 4.0, 500.0))
    assert book.open_buy_qty("SPY") == 6.0
    book.observe(order(OrderStatus.FILLED, 10.0, 500.0))
    assert book.open_count() == 0


def test_the_missing_part_of_a_fill_is_priced_to_the_brokers_average() -> None:
    book = OrderBook()
    book.intend(OrderRequest("cid-1", "SPY", Side.BUY, 10.0, Intent.ENTRY), T)
    book.observe(order(OrderStatus.PARTIALLY_FILLED, 4.0, 500.0))
    book.record_fill(Fill("id-1", "cid-1", "SPY", Side.BUY, 4.0, 500.0, 0.0, T))
    missing = book.unjournaled_fill(order(OrderStatus.FILLED, 10.0, 503.0), T)
    assert missing is not None and abs(missing.qty - 6.0) < 1e-12
    assert abs((4.0 * 500.0 + missing.qty * missing.price) / 10.0 - 503.0) < 1e-9
    book.record_fill(missing)
    assert book.unjournaled_fill(order(OrderStatus.FILLED, 10.0, 503.0), T) is None


def wire(status: str, filled: str, avg: str | None) -> dict[str, object]:
    return {
        "id": "id-1",
        "client_order_id": "cid-1",
        "symbol": "SPY",
        "side": "buy",
        "qty": "10",
        "status": status,
        "filled_qty": filled,
        "filled_avg_price": avg,
    }


async def test_the_tracker_ignores_a_post_answer_that_arrives_after_the_streamed_fill() -> None:
    events: list[Event] = []
    tracker = OrderTracker(events.append, lambda: T, poll_after=1e9)
    tracker.begin_submit("cid-1")
    tracker.end_submit("cid-1")
    tracker.observe(wire("filled", "10", "500.5"))  # the stream's fill came first
    tracker.observe(wire("accepted", "0", None))  # then the held POST answer
    await asyncio.sleep(0)
    tracker.observe(wire("filled", "10", "500.5"))  # a poll, later
    fills = [e for e in events if isinstance(e, OrderFilled)]
    assert len(fills) == 1 and fills[0].fill.qty == 10.0
    assert not [e for e in events if isinstance(e, OrderUpdated)]  # no second FILLED record
    assert tracker.open_ids() == []  # not polled again as if it were open
