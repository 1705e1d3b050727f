"""The portfolio projection: apply_fill's arithmetic and rebuilding state from the journal."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tapewatch.engine.core.portfolio import PortfolioState, apply_fill, mark, rebuild
from tapewatch.engine.model.events import BarClosed, Event, Notice, OrderFilled, SessionStarted
from tapewatch.engine.model.types import Bar, Fill, Order, OrderStatus, Position, Side
from tapewatch.engine.storage.journal import Journal, MemoryJournal

T0 = datetime(2024, 3, 8, 14, 30, tzinfo=UTC)


def fill(side: Side, qty: float, price: float, fee: float = 0.0, symbol: str = "SPY") -> Fill:
    return Fill("o", "c", symbol, side, qty, price, fee, T0)


def filled(f: Fill, minute: int = 0) -> OrderFilled:
    order = Order(f.order_id, f.client_order_id, f.symbol, f.side, f.qty, OrderStatus.FILLED)
    return OrderFilled(ts=T0 + timedelta(minutes=minute), fill=f, order=order)


def started(cash: float) -> SessionStarted:
    return SessionStarted(
        ts=T0, mode="DEMO", account="sim", starting_cash=cash, symbol="SPY", timeframe="5Min"
    )


def bar(close: float, minute: int, symbol: str = "SPY", warmup: bool = False) -> BarClosed:
    ts = T0 + timedelta(minutes=minute)
    return BarClosed(ts=ts, bar=Bar(symbol, ts, close, close, close, close, 100.0), warmup=warmup)


def test_buys_sells_and_fees_match_hand_computed_values() -> None:
    events: list[Event] = [
        started(10_000.0),
        filled(fill(Side.BUY, 10, 100.0, fee=1.0)),  # cash 10000 - 1001 = 8999
        filled(fill(Side.BUY, 5, 130.0, fee=0.5)),  # cash 8348.5, avg 1650/15 = 110
        filled(fill(Side.SELL, 6, 120.0, fee=0.25)),  # cash + 719.75 = 9068.25, avg stays 110
    ]
    state = rebuild(events)
    assert state.cash == 9068.25
    assert state.positions == {"SPY": Position("SPY", 9.0, 110.0, 120.0)}
    events.append(filled(fill(Side.SELL, 9, 90.0, fee=0.75)))  # cash + 809.25 = 9877.5
    state = rebuild(events)
    assert state.cash == 9877.5
    assert state.positions == {}


def test_apply_fill_uses_the_documented_float_order() -> None:
    # Values chosen so that another association of the same operations gives other bits.
    cash, qty, price, fee, sold, sold_at = 2137.04, 6.745, 217.04, 0.39, 0.704, 333.31
    assert cash - (qty * price + fee) != cash - qty * price - fee
    state = PortfolioState(cash)
    apply_fill(state, fill(Side.BUY, qty, price, fee))
    assert state.cash == cash - (qty * price + fee)
    before = state.cash
    assert before + (sold * sold_at - fee) != before + sold * sold_at - fee
    apply_fill(state, fill(Side.SELL, sold, sold_at, fee))
    assert state.cash == before + (sold * sold_at - fee)
    assert state.positions["SPY"].qty == qty - sold
    assert state.positions["SPY"].avg_entry_price == price


def test_position_is_removed_at_zero_despite_binary_noise() -> None:
    state = PortfolioState(0.0)
    for _ in range(3):
        apply_fill(state, fill(Side.BUY, 0.1, 10.0))
    apply_fill(state, fill(Side.SELL, 0.3, 10.0))  # 0.1 + 0.1 + 0.1 - 0.3 = 5.5e-17
    assert state.positions == {}
    apply_fill(state, fill(Side.BUY, 1.0, 10.0))
    apply_fill(state, fill(Side.SELL, 1.0 - 2e-9, 10.0))
    assert state.positions["SPY"].qty == pytest.approx(2e-9)


def test_shorts_and_crossing_zero() -> None:
    state = PortfolioState(0.0)
    apply_fill(state, fill(Side.SELL, 10, 100.0))
    apply_fill(state, fill(Side.SELL, 10, 110.0))
    assert state.positions["SPY"] == Position("SPY", -20.0, 105.0, 110.0)
    apply_fill(state, fill(Side.BUY, 5, 90.0))
    assert state.positions["SPY"] == Position("SPY", -15.0, 105.0, 90.0)
    apply_fill(state, fill(Side.BUY, 20, 80.0))
    assert state.positions["SPY"] == Position("SPY", 5.0, 80.0, 80.0)
    assert state.cash == 1000.0 + 1100.0 - 450.0 - 1600.0


def test_non_positive_fill_qty_is_refused() -> None:
    state = PortfolioState(100.0)
    with pytest.raises(ValueError, match="non-positive"):
        apply_fill(state, fill(Side.BUY, 0.0, 10.0))
    assert state == PortfolioState(100.0)


def test_only_the_first_session_started_sets_cash() -> None:
    events: list[Event] = [
        started(5_000.0),
        filled(fill(Side.BUY, 10, 100.0)),
        started(4_000.0),  # a restarted session: the sim broker reports what it has now
        filled(fill(Side.SELL, 4, 110.0)),
    ]
    state = rebuild(events)
    assert state.cash == 5_000.0 - 1_000.0 + 440.0
    assert rebuild([]) == PortfolioState(0.0)


def test_bars_mark_held_positions_and_stale_warmup_bars_do_not() -> None:
    events: list[Event] = [
        started(1_000.0),
        bar(99.0, 0),
        filled(fill(Side.BUY, 2, 100.0), minute=5),
        bar(101.0, 5),
        bar(55.0, 5, symbol="QQQ"),  # not held: ignored
        bar(103.0, 10),
        bar(90.0, 0, warmup=True),  # history replayed after a restart: older than 10
        Notice(ts=T0, level="info", message="ignored"),
    ]
    state = rebuild(events)
    assert state.positions == {"SPY": Position("SPY", 2.0, 100.0, 103.0)}
    assert state.equity == 800.0 + 206.0
    mark(state, "QQQ", 1.0)
    mark(state, "SPY", 104.0)
    assert state.positions == {"SPY": Position("SPY", 2.0, 100.0, 104.0)}


def random_session(seed: int, n: int) -> list[Event]:
    rng = random.Random(seed)
    events: list[Event] = [started(100_000.0)]
    held = {"SPY": 0.0, "QQQ": 0.0}
    for i in range(n):
        symbol = rng.choice(sorted(held))
        price = round(rng.uniform(50, 150), 2)
        if rng.random() < 0.5:
            events.append(bar(price, i, symbol))
        elif held[symbol] > 0 and rng.random() < 0.5:
            qty = held[symbol] if rng.random() < 0.3 else round(held[symbol] * rng.random(), 9)
            if qty > 0:
                held[symbol] -= qty
                events.append(filled(fill(Side.SELL, qty, price, rng.random(), symbol), i))
        else:
            qty = round(rng.uniform(0.001, 20), 9)
            held[symbol] += qty
            events.append(filled(fill(Side.BUY, qty, price, rng.random(), symbol), i))
    return events


def test_rebuild_from_sqlite_equals_rebuild_from_memory(tmp_path: Path) -> None:
    events = random_session(seed=7, n=600)
    memory = MemoryJournal()
    memory.append_many(events)
    with Journal(tmp_path / "j.sqlite3") as j:
        for event in events[:50]:
            j.append(event)
        j.append_many(events[50:])
    with Journal(tmp_path / "j.sqlite3") as j:
        from_file = rebuild(e for _, e in j.events())
    from_memory = rebuild(e for _, e in memory.events())
    assert from_file == from_memory
    live = PortfolioState(100_000.0)  # what a broker applying each fill as it happens holds
    for event in events:
        if isinstance(event, OrderFilled):
            apply_fill(live, event.fill)
        elif isinstance(event, BarClosed):
            mark(live, event.bar.symbol, event.bar.close)
    assert from_file == live
    assert from_file.positions  # the session leaves something open to compare
