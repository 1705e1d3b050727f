"""Order truth through the real SDK against a sandbox that behaves like a slow, busy Alpaca.

Each case runs a paper session whose rule wants to buy on almost every bar, while the venue
holds fills, halts the market, splits fills or answers the POST after streaming the fill. The
promise in every case: never more than one entry's exposure, never a sell beyond the position,
no order twice, and every fill the venue made journaled as a fill.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

from tapewatch.engine.core.orderbook import rank
from tapewatch.engine.model.events import (
    BarClosed,
    Event,
    Notice,
    OrderFilled,
    OrderIntended,
    OrderUpdated,
    RiskDenied,
    SignalEvaluated,
)
from tapewatch.engine.model.types import OrderStatus
from tapewatch.engine.settings.config import EngineConfig
from tapewatch.sandbox import SandboxThread
from tapewatch.sandbox.config import SandboxConfig
from tests.reliability.soak_helpers import (
    Driver,
    audit,
    broker_orders,
    journal_events,
    open_session,
    quick_config,
    sandbox_config,
)


def eager(entry_timeout: float = 1.0) -> EngineConfig:
    """Buys whenever flat (RSI < 90 above a short SMA); an unfilled entry is cancelled soon."""
    base = quick_config()
    return replace(base, risk=replace(base.risk, entry_timeout_seconds=entry_timeout)).validate()


async def _faults(sandbox: SandboxThread, **spec: Any) -> None:
    await asyncio.to_thread(lambda: sandbox.apply_faults(**spec))


def _open_buys(sandbox: SandboxThread) -> int:
    return sum(1 for o in broker_orders(sandbox) if o["side"] == "buy" and o["status"] in _OPEN)


_OPEN = ("accepted", "new", "partially_filled", "pending_new")


def _assert_truth(sandbox: SandboxThread, data_dir: Path) -> None:
    checked = audit(sandbox, data_dir)
    assert checked.duplicates == 0
    assert checked.max_exposure <= 1.0 + 1e-9, checked.max_exposure
    assert checked.missing_fills == 0, checked.problems
    assert checked.problems == [] and checked.broker == checked.journal


async def test_fills_that_take_a_while_never_stack_entries(tmp_path: Path) -> None:
    sandbox = SandboxThread(sandbox_config(seed=3, bar_interval=0.05)).start()
    try:
        session = await open_session(sandbox, tmp_path, config=eager(entry_timeout=600.0))
        driver = Driver(session)
        try:
            await driver.wait(lambda: driver.count("fill") >= 1, 20.0, "a first fill")
            await _faults(sandbox, hold_fills=True)  # the venue sits on every order
            intents = driver.count("intent")
            await driver.wait(lambda: driver.count("intent") > intents, 20.0, "an order held")
            await driver.more_bars(8, timeout=20.0)  # buy signals keep coming while it waits
            held_orders = driver.count("intent") - intents
            open_buys = await asyncio.to_thread(_open_buys, sandbox)
            still_open = [
                e for e in driver.events if isinstance(e, Notice) and "still open" in e.message
            ]
            await _faults(sandbox, hold_fills=False)
            await driver.more_bars(2, timeout=20.0)
        finally:
            await driver.finish(sandbox)
        _assert_truth(sandbox, tmp_path)
    finally:
        sandbox.stop()
    assert held_orders == 1  # one order waited; the signals behind it sent nothing
    assert open_buys <= 1
    assert still_open, "the signals that were not acted on are journaled"


async def test_an_entry_queued_by_a_halt_is_cancelled_not_stacked(tmp_path: Path) -> None:
    sandbox = SandboxThread(sandbox_config(seed=4, bar_interval=0.05)).start()
    try:
        session = await open_session(sandbox, tmp_path, config=eager(entry_timeout=1.0))
        driver = Driver(session)
        try:
            engine = driver.engine
            await driver.wait(lambda: driver.count("fill") >= 2, 30.0, "a round trip")
            await driver.wait(
                lambda: "SPY" not in engine.portfolio.positions and not engine.book.open_count(),
                30.0,
                "flat with nothing open",
            )
            await _faults(sandbox, market_closed=True)  # a halt: orders wait for the reopen
            await driver.wait(
                lambda: any(
                    isinstance(e, Notice) and "unfilled after" in e.message for e in driver.events
                ),
                30.0,
                "an unfilled entry to be cancelled",
            )
            # The stalled entry made the engine re-read Alpaca's clock, which says closed: the
            # next buy signals are refused, not queued.
            await driver.wait(
                lambda: any(
                    isinstance(e, RiskDenied) and e.breaker == "session" for e in driver.events
                ),
                30.0,
                "an entry refused because the market is closed",
            )
            open_buys = await asyncio.to_thread(_open_buys, sandbox)
            await _faults(sandbox, market_closed=False)
            await driver.more_bars(3, timeout=20.0)
        finally:
            await driver.finish(sandbox)
        _assert_truth(sandbox, tmp_path)
        events = journal_events(tmp_path)
    finally:
        sandbox.stop()
    assert open_buys == 0  # cancelled, not left to fill at the reopen on top of a new one
    ended = [e for e in events if isinstance(e, OrderUpdated)]
    assert any(e.order.status in (OrderStatus.CANCELLED, OrderStatus.EXPIRED) for e in ended)


async def _trade_until_fills(config: SandboxConfig, data_dir: Path, *, fills: int) -> list[Event]:
    """An eager paper session against a sandbox built from ``config`` until ``fills`` fills are
    journaled; the order truths are asserted, and the journal's events returned."""
    sandbox = SandboxThread(config).start()
    try:
        session = await open_session(sandbox, data_dir, config=eager(entry_timeout=600.0))
        driver = Driver(session)
        try:
            await driver.wait(lambda: driver.count("fill") >= fills, 30.0, f"{fills} fills")
        finally:
            await driver.finish(sandbox)
        _assert_truth(sandbox, data_dir)
        return journal_events(data_dir)
    finally:
        sandbox.stop()


async def test_a_post_answer_after_the_streamed_fill_does_not_undo_it(tmp_path: Path) -> None:
    config = sandbox_config(seed=5, bar_interval=0.05, faults={"late_order_response_ms": 300})
    events = await _trade_until_fills(config, tmp_path, fills=3)
    seen: dict[str, int] = {}
    filled_records: dict[str, int] = {}
    for event in events:
        if isinstance(event, OrderUpdated | OrderFilled):
            cid = event.order.client_order_id
            assert rank(event.order.status) >= seen.get(cid, 0), f"{cid} moved backwards"
            seen[cid] = rank(event.order.status)
        if isinstance(event, OrderUpdated) and event.order.status is OrderStatus.FILLED:
            filled_records[event.order.client_order_id] = (
                filled_records.get(event.order.client_order_id, 0) + 1
            )
    assert all(n == 1 for n in filled_records.values()), filled_records
    fills = [e for e in events if isinstance(e, OrderFilled)]
    assert len({f.fill.client_order_id for f in fills}) == len(fills)  # one fill per order


async def test_partial_fills_are_each_journaled_and_exits_never_oversell(tmp_path: Path) -> None:
    config = sandbox_config(seed=6, bar_interval=0.05, fill_delay=0.05, partial_fills=3)
    events = await _trade_until_fills(config, tmp_path, fills=6)
    per_order: dict[str, int] = {}
    for event in events:
        if isinstance(event, OrderFilled):
            cid = event.fill.client_order_id
            per_order[cid] = per_order.get(cid, 0) + 1
    assert max(per_order.values()) >= 2  # the venue split them, and each part was journaled


async def test_a_backlog_after_an_outage_updates_indicators_but_places_no_order(
    tmp_path: Path,
) -> None:
    """The data stream goes mute for a while; when it comes back, the bars of the gap arrive
    (back-filled) long after their close: charted, never traded."""
    base = quick_config()
    config = replace(base, risk=replace(base.risk, late_bar_seconds=600.0)).validate()
    sandbox = SandboxThread(sandbox_config(seed=8, bar_interval=0.05)).start()
    try:
        session = await open_session(sandbox, tmp_path, config=config)
        driver = Driver(session)
        try:
            await driver.wait(lambda: driver.count("fill") >= 1, 20.0, "a first fill")
            await _faults(sandbox, data_stream="mute")  # connected, but nothing arrives
            await asyncio.sleep(3.0)  # sixty market minutes go by unseen
            await _faults(sandbox, data_stream="normal")
            await driver.wait(
                lambda: any(
                    isinstance(e, Notice) and "after its close" in e.message for e in driver.events
                ),
                20.0,
                "the backlog to arrive",
            )
            await driver.more_bars(3, timeout=20.0)
        finally:
            await driver.finish(sandbox)
        _assert_truth(sandbox, tmp_path)
        events = journal_events(tmp_path)
    finally:
        sandbox.stop()
    late = [e.bar.ts for e in events if isinstance(e, BarClosed) and e.warmup and e.ts > e.bar.ts]
    assert late, "some bars of the gap were back-filled late"
    decided = {e.bar_ts for e in events if isinstance(e, SignalEvaluated)}
    intended = {e.request.bar_ts for e in events if isinstance(e, OrderIntended)}
    assert not set(late) & decided and not set(late) & intended  # charted, never traded
