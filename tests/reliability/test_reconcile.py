"""Reconciliation: the pure comparison, the Reconciler's pause/adopt/resume rules with a simulated
broker, and, through the real SDK against the sandbox, a manual trade caught by the periodic
check and by the check that follows a dropped trade_updates socket."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tapewatch.engine.adapters.sim.broker import SimBroker
from tapewatch.engine.core.broker import BrokerError
from tapewatch.engine.core.clock import SimClock
from tapewatch.engine.core.engine import Engine
from tapewatch.engine.core.reconcile import (
    BROKER_ONLY_ORDER,
    JOURNAL_ONLY_ORDER,
    POSITION,
    Difference,
    Reconciler,
    compare,
)
from tapewatch.engine.model.events import AccountAdopted, Event, Notice, OperatorAction, OrderFilled
from tapewatch.engine.model.types import (
    Bar,
    Intent,
    Mode,
    Order,
    OrderRequest,
    OrderStatus,
    Position,
    Side,
)
from tapewatch.engine.root.live import LiveOptions, LiveSession, build_live_session
from tapewatch.engine.settings.config import EngineConfig, RiskConfig, StrategyConfig
from tapewatch.engine.storage.journal import Journal
from tapewatch.sandbox import SandboxThread
from tests.alpaca.adapter_helpers import eventually, in_thread, make_broker, sandbox_endpoints
from tests.alpaca.conftest import sandbox_config, trading_client
from tests.helpers import STEP

T0 = datetime(2024, 3, 5, 15, 0, tzinfo=UTC)


def pos(symbol: str, qty: float) -> Position:
    return Position(symbol, qty, 100.0, 100.0)


def order(cid: str, qty: float = 1.0, symbol: str = "SPY") -> Order:
    return Order(f"id-{cid}", cid, symbol, Side.BUY, qty, OrderStatus.NEW)


# -- compare: pure ---------------------------------------------------------------------------


def test_equal_views_have_no_difference() -> None:
    mine = {"SPY": pos("SPY", 3), "QQQ": pos("QQQ", 0.5)}
    theirs = {"QQQ": pos("QQQ", 0.5 + 1e-12), "SPY": pos("SPY", 3)}
    assert compare(mine, [order("a")], theirs, [order("a")]) == []


def test_position_differences_cover_both_sides_sorted_by_symbol() -> None:
    found = compare(
        {"SPY": pos("SPY", 3), "AAPL": pos("AAPL", 2)},
        [],
        {"SPY": pos("SPY", 5), "MSFT": pos("MSFT", 1)},
        [],
    )
    assert found == [
        Difference(POSITION, "AAPL", journal_qty=2, broker_qty=0),
        Difference(POSITION, "MSFT", journal_qty=0, broker_qty=1),
        Difference(POSITION, "SPY", journal_qty=3, broker_qty=5),
    ]
    assert str(found[2]) == "SPY: the journal has 3, the broker has 5"


def test_order_differences_name_the_side_that_lacks_the_order() -> None:
    found = compare({}, [order("ours", 2), order("both")], {}, [order("both"), order("web", 4)])
    assert [(d.kind, d.client_order_id) for d in found] == [
        (JOURNAL_ONLY_ORDER, "ours"),
        (BROKER_ONLY_ORDER, "web"),
    ]
    assert found[1].broker_qty == 4 and found[0].journal_qty == 2
    assert "at the broker but not in the journal" in str(found[1])
    assert "open in the journal but not at the broker" in str(found[0])


# -- Reconciler with a simulated broker ----------------------------------------------------


def config() -> EngineConfig:
    return EngineConfig(
        strategy=StrategyConfig(symbol="SPY", rsi_period=2, sma_period=3), risk=RiskConfig()
    ).validate()


class Timer:
    """The periodic check's sleep: each call waits until the test ticks it."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self._ticks: asyncio.Queue[None] = asyncio.Queue()

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        await self._ticks.get()

    def tick(self) -> None:
        self._ticks.put_nowait(None)


class Rig:
    def __init__(self, tmp_path: Path, *, headless: bool) -> None:
        cfg = config()
        self.clock = SimClock(T0)
        self.broker = SimBroker(cfg.starting_cash, cfg.execution, clock=self.clock)
        self.journal = Journal(tmp_path / "journal.sqlite3")
        self.engine = Engine(
            cfg, clock=self.clock, broker=self.broker, journal=self.journal, who="op@local"
        )
        self.events: list[Event] = []
        self.engine.bus.add_sink(self.events.append)
        self.timer = Timer()
        self.shown: list[list[Difference]] = []
        self.reconciler = Reconciler(
            self.engine, self.broker, interval=120.0, headless=headless, sleep=self.timer
        )
        self.reconciler.set_listener(self.shown.append)

    def manual_trade(self, qty: float) -> None:
        """A trade the engine never heard of (made in the broker's web UI)."""
        self.broker.portfolio.positions["SPY"] = pos("SPY", qty)

    def journaled(self, kind: str) -> list[Event]:
        return [e for _, e in self.journal.events(kinds=(kind,))]

    def operator(self) -> list[tuple[str, str]]:
        return [
            (e.action, e.who) for e in self.journaled("operator") if isinstance(e, OperatorAction)
        ]


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = Rig(tmp_path, headless=False)
    yield r
    r.journal.close()


async def test_a_clean_check_changes_nothing(rig: Rig) -> None:
    await rig.engine.start()
    assert await rig.reconciler.check("start-up") == []
    assert not rig.engine.state.paused and rig.operator() == [] and rig.shown == []


async def test_a_difference_pauses_and_is_shown_until_adopted(rig: Rig) -> None:
    await rig.engine.start()
    rig.manual_trade(5)
    found = await rig.reconciler.check()
    assert found == [Difference(POSITION, "SPY", journal_qty=0, broker_qty=5)]
    assert rig.engine.state.paused and rig.shown == [found]
    assert rig.engine.portfolio.positions.get("SPY") is None  # nothing adopted without a person
    assert await rig.reconciler.check() == found
    assert len(rig.shown) == 1  # the same differences are not shown again while paused
    await rig.reconciler.adopt()
    assert rig.engine.portfolio.positions["SPY"].qty == 5 and not rig.engine.state.paused
    assert rig.operator() == [("pause", "reconciler"), ("resume", "op@local")]
    [adopted] = rig.journaled("account_adopted")
    assert isinstance(adopted, AccountAdopted)
    assert adopted.differences == ("SPY: the journal has 0, the broker has 5",)
    assert await rig.reconciler.check() == [] and rig.reconciler.pending == []


async def test_headless_adopts_logs_and_resumes_only_its_own_pause(tmp_path: Path) -> None:
    rig = Rig(tmp_path, headless=True)
    try:
        await rig.engine.start()
        rig.manual_trade(5)
        await rig.reconciler.check("reconnect")
        assert rig.engine.portfolio.positions["SPY"].qty == 5 and not rig.engine.state.paused
        assert rig.operator() == [("pause", "reconciler"), ("resume", "reconciler")]
        assert rig.shown == []
        assert any(
            isinstance(e, Notice) and "reconcile (reconnect): 1 difference" in e.message
            for e in rig.events
        )
        await rig.engine.pause()  # the operator's own pause
        rig.manual_trade(7)
        await rig.reconciler.check()
        assert rig.engine.portfolio.positions["SPY"].qty == 7
        assert rig.engine.state.paused  # not the reconciler's pause to lift
        assert len(rig.journaled("account_adopted")) == 2
    finally:
        rig.journal.close()


async def test_keep_paused_hands_the_pause_to_the_operator(rig: Rig) -> None:
    await rig.engine.start()
    rig.manual_trade(5)
    await rig.reconciler.check()
    rig.reconciler.keep_paused()
    rig.manual_trade(0)  # the drift goes away on its own
    assert await rig.reconciler.check() == []
    assert rig.engine.state.paused  # never re-armed silently
    assert rig.operator() == [("pause", "reconciler")]
    assert rig.journaled("account_adopted") == []


async def test_resuming_by_hand_with_differences_left_pauses_again(rig: Rig) -> None:
    await rig.engine.start()
    rig.manual_trade(5)
    await rig.reconciler.check()
    rig.reconciler.keep_paused()
    await rig.engine.resume()
    await rig.reconciler.check()
    assert rig.engine.state.paused and len(rig.shown) == 2


async def test_flatten_adopts_then_closes_what_the_broker_holds(rig: Rig) -> None:
    await rig.engine.start()
    rig.manual_trade(5)
    await rig.reconciler.check()
    await rig.reconciler.flatten()
    [sent] = await rig.broker.open_orders()
    assert (sent.side, sent.qty) == (Side.SELL, 5)
    assert rig.engine.state.paused and rig.reconciler.pending == []
    assert [a for a, _ in rig.operator()] == ["pause", "flatten"]
    assert len(rig.journaled("account_adopted")) == 1


async def test_an_outside_open_order_is_reported_once_then_left_alone(rig: Rig) -> None:
    await rig.engine.start()
    rig.broker.set_listener(lambda _e: None)  # placed at the broker, unseen by the engine
    from tapewatch.engine.model.types import Intent, OrderRequest

    await rig.broker.submit_order(OrderRequest("web-1", "SPY", Side.BUY, 1, Intent.ENTRY))
    [found] = await rig.reconciler.check()
    assert (found.kind, found.client_order_id) == (BROKER_ONLY_ORDER, "web-1")
    await rig.reconciler.adopt()
    assert await rig.reconciler.check() == [] and not rig.engine.state.paused


async def test_periodic_check_runs_on_the_injected_timer(rig: Rig) -> None:
    await rig.engine.start()
    rig.reconciler.start()
    try:
        await asyncio.sleep(0)
        assert rig.timer.waits == [120.0] and rig.reconciler.checks == 0
        rig.manual_trade(2)
        rig.timer.tick()
        for _ in range(100):
            if rig.shown:
                break
            await asyncio.sleep(0)
        assert rig.shown and rig.shown[0][0].broker_qty == 2 and rig.engine.state.paused
        assert rig.reconciler.checks == 1
    finally:
        await rig.reconciler.stop()


async def test_checks_wait_while_orders_are_in_flight_and_survive_broker_errors(rig: Rig) -> None:
    await rig.engine.start()
    rig.manual_trade(3)
    working = Order("o-1", "cid-working", "SPY", Side.BUY, 1.0, OrderStatus.ACCEPTED)
    rig.engine.book.observe(working)  # an order of ours is moving the position right now
    assert await rig.reconciler.check() == [] and rig.reconciler.checks == 0
    rig.engine.book.observe(replace(working, status=OrderStatus.CANCELLED))

    async def broken() -> list[Order]:
        raise BrokerError("503 from the broker", status=503, retryable=True)

    rig.broker.open_orders = broken  # type: ignore[method-assign]
    assert await rig.reconciler.check() == []
    assert not rig.engine.state.paused
    assert any(isinstance(e, Notice) and "503" in e.message for e in rig.events)


# -- against the sandbox, through the real SDK ---------------------------------------------


@pytest.fixture
def sandbox() -> Iterator[SandboxThread]:
    box = SandboxThread(sandbox_config(bar_interval=0, fill_delay=0.0)).start()
    yield box
    box.stop()


def _held(sandbox: SandboxThread) -> dict[str, float]:
    positions: Any = sandbox.snapshot()["account"]["positions"]  # type: ignore[index]
    return {symbol: float(qty) for symbol, qty in positions.items()}


async def _manual_buy(sandbox: SandboxThread, qty: int) -> None:
    """A trade in Alpaca's web UI: an order sent straight through alpaca-py's TradingClient."""
    from alpaca.trading.enums import OrderSide, TimeInForce
    from alpaca.trading.requests import MarketOrderRequest

    manual = MarketOrderRequest(
        symbol="SPY", qty=qty, side=OrderSide.BUY, time_in_force=TimeInForce.DAY
    )
    await in_thread(lambda: trading_client(sandbox).submit_order(manual))
    await eventually(lambda: _held(sandbox).get("SPY") == qty, what="the manual fill")


async def _session(sandbox: SandboxThread, tmp_path: Path, every: float) -> LiveSession:
    from tapewatch.engine.settings.credentials import Credentials
    from tests.alpaca.conftest import KEY, SECRET

    options = LiveOptions(
        endpoints=sandbox_endpoints(sandbox),
        timeout=2.0,
        warmup_bars=5,
        reconcile_every=every,
        reconcile_headless=False,
    )
    creds = Credentials(KEY, SECRET, "paper", "environment")
    return await build_live_session(config(), Mode.PAPER, creds, tmp_path, options=options)


async def test_a_manual_trade_in_the_web_ui_is_caught_by_the_periodic_check(
    sandbox: SandboxThread, tmp_path: Path
) -> None:
    # No trade_updates socket: the manual fill is not streamed to us (as when an update is lost),
    # so only the periodic check can notice it.
    broker = make_broker(sandbox, trade_stream=False)
    journal = Journal(tmp_path / "journal.sqlite3")
    engine = Engine(config(), clock=SimClock(T0), broker=broker, journal=journal, who="op@local")
    timer = Timer()
    reconciler = Reconciler(engine, broker, interval=60.0, headless=False, sleep=timer)
    shown: list[list[Difference]] = []
    reconciler.set_listener(shown.append)
    try:
        await engine.start()
        assert await reconciler.check("start-up") == []
        reconciler.start()
        await _manual_buy(sandbox, 3)
        assert shown == [] and not engine.state.paused  # nothing noticed between checks
        timer.tick()
        await eventually(lambda: bool(shown), what="the periodic check to show it")
        assert shown[0] == [Difference(POSITION, "SPY", journal_qty=0, broker_qty=3)]
        assert engine.state.paused and timer.waits[0] == 60.0
        await reconciler.adopt()
        assert engine.portfolio.positions["SPY"].qty == 3 and not engine.state.paused
        [adopted] = [e for _, e in journal.events(kinds=("account_adopted",))]
        assert isinstance(adopted, AccountAdopted) and adopted.positions[0].qty == 3
    finally:
        await reconciler.stop()
        await broker.close()
        journal.close()


async def test_a_dropped_trade_socket_is_followed_by_a_check(
    sandbox: SandboxThread, tmp_path: Path
) -> None:
    session = await _session(sandbox, tmp_path, every=3600.0)  # no periodic check here
    reconciler = session.reconciler
    assert reconciler is not None and session.differences == []
    shown: list[list[Difference]] = []
    reconciler.set_listener(shown.append)
    try:
        await eventually(session.broker.websocket_connected, what="trade_updates")
        checks = reconciler.checks
        await in_thread(sandbox.close_streams)  # the fault: every websocket dropped
        # The SDK waits 0.5-1 s before reconnecting; a manual trade in that window is never
        # streamed to us.
        await _manual_buy(sandbox, 2)
        assert shown == [] and reconciler.checks == checks
        await eventually(lambda: bool(shown), timeout=10.0, what="the after-reconnect check")
        assert reconciler.checks == checks + 1
        assert shown[0] == [Difference(POSITION, "SPY", journal_qty=0, broker_qty=2)]
        assert session.engine.state.paused
        assert session.engine.portfolio.positions.get("SPY") is None  # waits for a person
    finally:
        await session.engine.stop()
        await session.aclose()


async def test_a_fill_landing_during_the_broker_read_defers_the_check(rig: Rig) -> None:
    await rig.engine.start()
    rig.manual_trade(3)
    read = rig.broker.get_account

    async def racing() -> Any:
        snapshot = await read()
        rig.engine.portfolio.positions["SPY"] = pos("SPY", 3)  # our fill arrives meanwhile
        return snapshot

    rig.broker.get_account = racing  # type: ignore[method-assign]
    assert await rig.reconciler.check() == [] and rig.reconciler.checks == 0
    assert not rig.engine.state.paused
    rig.broker.get_account = read  # type: ignore[method-assign]
    assert await rig.reconciler.check() == [] and rig.reconciler.checks == 1


async def test_a_fill_the_engine_never_heard_of_is_journaled_as_a_fill_not_adopted(
    rig: Rig,
) -> None:
    """The stream dropped the fill of our own order: the check after the reconnect finds it
    by look-up and journals it as a fill, so there is nothing left to adopt."""
    await rig.engine.start()
    request = OrderRequest("cid-missed", "SPY", Side.BUY, 2.0, Intent.ENTRY)
    await rig.broker.on_bar(Bar("SPY", T0, 100.0, 100.5, 99.5, 100.0, 1000.0))
    rig.broker.set_listener(lambda _event: None)  # the stream is down: nothing reaches us
    await rig.engine._submit(request)
    await rig.broker.on_bar(Bar("SPY", T0 + STEP, 101.0, 101.5, 100.5, 101.0, 1000.0))
    rig.broker.set_listener(rig.engine._on_broker_event)  # reconnected
    assert rig.engine.book.open_count() == 1  # we still think it is working
    assert await rig.reconciler.check("reconnect") == []
    fills = [e for e in rig.journaled("fill") if isinstance(e, OrderFilled)]
    assert [(f.fill.client_order_id, f.fill.qty, f.fill.price) for f in fills] == [
        ("cid-missed", 2.0, 101.0)
    ]
    assert rig.journaled("account_adopted") == []
    assert rig.engine.portfolio.positions["SPY"].qty == 2.0
    assert not rig.engine.state.paused
