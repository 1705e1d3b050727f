"""The reconcile modal: a position changed outside tapewatch pauses trading and opens the modal;
each of its three answers is checked against the engine's state and the journal."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tapewatch.console.screens.reconcile import ReconcileScreen
from tapewatch.engine.adapters.sim.broker import SimBroker
from tapewatch.engine.core.reconcile import POSITION, Difference, Reconciler
from tapewatch.engine.model.events import AccountAdopted, OrderIntended
from tapewatch.engine.model.types import Intent, Position, Side
from tests.console.conftest import BUY, SLIDE, Session, make_app, make_session, until

SIZE = (120, 36)


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    s = make_session(tmp_path, [BUY, *SLIDE])
    yield s
    s.journal.close()


async def _never(_seconds: float) -> None:
    """The periodic timer, never firing: the test runs each check itself."""
    import asyncio

    await asyncio.Event().wait()


def with_reconciler(session: Session) -> Reconciler:
    reconciler = Reconciler(session.engine, session.engine.broker, sleep=_never)
    setattr(session, "reconciler", reconciler)  # noqa: B010  # what a live session carries
    return reconciler


def manual_trade(session: Session, qty: float) -> None:
    """A trade in the broker's web UI: the broker holds it, the engine never heard of it."""
    broker = session.engine.broker
    assert isinstance(broker, SimBroker)
    broker.portfolio.positions["SPY"] = Position("SPY", qty, 10.0, 10.0)


async def open_modal(session: Session, reconciler: Reconciler, pilot: object) -> ReconcileScreen:
    from textual.pilot import Pilot

    assert isinstance(pilot, Pilot)
    await until(pilot, lambda: session.engine.state.running, "engine running")
    assert not reconciler.headless  # the console asks a person
    manual_trade(session, 4)
    found = await reconciler.check("periodic")
    assert found == [Difference(POSITION, "SPY", journal_qty=0, broker_qty=4)]
    await until(pilot, lambda: isinstance(pilot.app.screen, ReconcileScreen), "the modal")
    screen = pilot.app.screen
    assert isinstance(screen, ReconcileScreen) and screen.differences == found
    assert session.engine.state.paused
    return screen


def adopted(session: Session) -> list[AccountAdopted]:
    return [e for e in session.journal_events("account_adopted") if isinstance(e, AccountAdopted)]


async def test_adopt_takes_the_broker_position_and_resumes(session: Session) -> None:
    reconciler = with_reconciler(session)
    app = make_app(session)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await open_modal(session, reconciler, pilot)
        await pilot.press("a")
        await until(pilot, lambda: not session.engine.state.paused, "resumed")
        assert not isinstance(app.screen, ReconcileScreen)
        assert session.engine.portfolio.positions["SPY"].qty == 4
        assert reconciler.pending == []
    [record] = adopted(session)
    assert record.differences == ("SPY: the journal has 0, the broker has 4",)
    assert session.operator_actions() == ["pause", "resume"]


async def test_flatten_closes_what_the_broker_holds_and_stays_paused(session: Session) -> None:
    reconciler = with_reconciler(session)
    app = make_app(session)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await open_modal(session, reconciler, pilot)
        await pilot.press("f")
        await until(pilot, lambda: session.engine.state.in_flight == 1, "the flatten order")
        assert session.engine.state.paused
        assert any("stays paused" in n.message for n in app._notifications)
    assert len(adopted(session)) == 1
    assert session.operator_actions() == ["pause", "flatten"]
    intents = [e for e in session.journal_events("intent") if isinstance(e, OrderIntended)]
    request = intents[-1].request
    assert (request.intent, request.side, request.qty) == (Intent.FLATTEN, Side.SELL, 4)


async def test_keep_paused_changes_nothing_but_the_notice(session: Session) -> None:
    reconciler = with_reconciler(session)
    app = make_app(session)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await open_modal(session, reconciler, pilot)
        await pilot.press("k")
        await until(pilot, lambda: not isinstance(app.screen, ReconcileScreen), "modal closed")
        await until(pilot, lambda: bool(app._notifications), "the notice")
        assert session.engine.state.paused
        assert session.engine.portfolio.positions.get("SPY") is None
        assert reconciler.pending and not reconciler.paused_by_me
    assert adopted(session) == []
    assert session.operator_actions() == ["pause"]
