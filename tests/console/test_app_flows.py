"""Pilot tests of each key flow: they assert engine state and the journal, not only the screen."""

from __future__ import annotations

from pathlib import Path

from tapewatch.console.app import TapewatchApp
from tapewatch.console.panes.header import HeaderPane
from tapewatch.console.screens.flatten import FlattenScreen
from tapewatch.engine.model.events import OperatorAction, OrderFilled, OrderIntended
from tapewatch.engine.model.types import Intent
from tests.console.conftest import (
    Session,
    bars_processed,
    drawn,
    make_app,
    open_position,
    shown,
    until,
)

SIZE = (120, 36)


def header_text(app: TapewatchApp) -> str:
    return shown(app.query_one(HeaderPane))


async def test_panes_fill_from_the_warm_up_and_show_the_engine_clock(session: Session) -> None:
    app = make_app(session)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: session.engine.state.running, "engine running")
        await drawn(pilot, session)
        text = header_text(app)
        assert "DEMO" in text
        assert "09:40:00 ET" in text  # the sim clock after two warm-up bars, not the wall clock
        assert "market OPEN" in text
        assert "starting" not in shown(app.query_one("#indicators"))
        assert "RSI(2)" in shown(app.query_one("#indicators"))


async def test_pause_then_resume(session: Session) -> None:
    app = make_app(session)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: session.engine.state.running)
        await pilot.press("p")
        await pilot.pause()
        assert session.engine.state.paused
        assert "PAUSED" in header_text(app)  # visible at once, not at the next tick
        await pilot.press("p")
        await pilot.pause()
        assert not session.engine.state.paused
        assert "ACTIVE" in header_text(app)
    assert session.operator_actions() == ["pause", "resume"]
    assert all(isinstance(e, OperatorAction) and e.who for e in session.journal_events("operator"))


async def test_paused_engine_denies_the_entry_and_the_log_shows_why(session: Session) -> None:
    app = make_app(session)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: session.engine.state.running)
        await pilot.press("p")
        await bars_processed(pilot, session, 1)  # the buy bar
        assert "SPY" not in session.engine.state.positions
        row = session.engine.state.orders[0]
        assert row.status == "denied" and "paused" in row.reason
        await pilot.pause()
        log = shown(app.query_one("#order-log"))
        assert "denied" in log and "paused by operator" in log


async def test_flatten_previews_the_exact_orders_then_closes_the_position(session: Session) -> None:
    app = make_app(session)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await until(pilot, lambda: session.engine.state.running)
        qty = await open_position(pilot, session)
        await pilot.press("f")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, FlattenScreen)
        [request] = screen.requests
        assert (request.symbol, request.side.value, request.qty) == ("SPY", "sell", qty)
        assert request.intent is Intent.FLATTEN
        await pilot.press("y")
        await until(pilot, lambda: session.engine.state.in_flight == 1, "flatten order in flight")
        assert session.engine.state.positions["SPY"].qty == qty  # fills at the next bar, not now
        await bars_processed(pilot, session, 1)
        await until(pilot, lambda: app._flatten_watch is None, "flatten watch settled")
        assert all(abs(p.qty) < 1e-12 for p in session.engine.state.positions.values())
        assert any("Flat" in n.message for n in app._notifications)
    assert session.operator_actions() == ["flatten_and_pause"]  # y: the default choice
    intents = [e for e in session.journal_events("intent") if isinstance(e, OrderIntended)]
    assert intents[-1].request.intent is Intent.FLATTEN
    fills = [e for e in session.journal_events("fill") if isinstance(e, OrderFilled)]
    assert fills[-1].fill.side.value == "sell" and fills[-1].fill.qty == qty


async def test_flatten_cancelled_sends_nothing(session: Session) -> None:
    app = make_app(session)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: session.engine.state.running)
        await open_position(pilot, session)
        await pilot.press("f")
        await pilot.pause()
        await pilot.press("n")
        await pilot.pause()
        assert not isinstance(app.screen, FlattenScreen)
        assert session.engine.state.in_flight == 0
    assert session.operator_actions() == []


async def test_flatten_with_nothing_open_needs_no_dialog(session: Session) -> None:
    app = make_app(session)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: session.engine.state.running)
        await pilot.press("f")
        await pilot.pause()
        assert len(app.screen_stack) == 1
    assert session.operator_actions() == []


async def test_quit_with_an_open_position_asks_first(session: Session) -> None:
    app = make_app(session)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: session.engine.state.running)
        await open_position(pilot, session)
        await pilot.press("q")
        await pilot.pause()
        assert len(app.screen_stack) == 2  # the confirmation
        await pilot.press("n")
        await pilot.pause()
        assert session.engine.state.running and app.is_running
        await pilot.press("q")
        await pilot.pause()
        await pilot.press("y")
        await until(pilot, lambda: not session.engine.state.running, "engine stopped")
    assert app.return_code == 0
    stopped = session.journal_events("session_stopped")
    assert stopped and "operator quit" in getattr(stopped[-1], "reason", "")


async def test_quit_when_flat_needs_no_confirmation(session: Session) -> None:
    app = make_app(session)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: session.engine.state.running)
        await pilot.press("q")
        await until(pilot, lambda: not session.engine.state.running, "engine stopped")
    assert app.return_code == 0
    assert session.journal_events("session_stopped")


async def test_speed_keys_step_the_demo_speed_ladder(session: Session) -> None:
    app = make_app(session)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: session.engine.state.running)
        await pilot.press("plus")
        await pilot.pause()
        assert session.feed.speed == 300.0  # ×60 -> the next rung, not ×120
        await pilot.press("minus", "minus")
        await pilot.pause()
        assert session.feed.speed == 15.0
        assert "×15" in header_text(app)


async def test_built_in_a_thread_from_a_factory(tmp_path: Path, session: Session) -> None:
    app = TapewatchApp(session_factory=lambda: session)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: session.engine.state.running, "engine running")
        await until(pilot, lambda: "DEMO" in header_text(app), "header drawn")
