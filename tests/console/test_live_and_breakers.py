"""The paper↔live switch (every refusal, then the typed confirmation) and the breaker reset."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from tapewatch.console.accounts import NoAccounts
from tapewatch.console.screens.confirm import ConfirmScreen, MessageScreen
from tapewatch.console.screens.live import LiveConfirmScreen
from tapewatch.engine.adapters.sim.broker import SimBroker
from tapewatch.engine.core.broker import Broker
from tapewatch.engine.core.clock import Clock
from tapewatch.engine.model.events import BreakerChanged
from tapewatch.engine.model.types import Mode, TradingState
from tapewatch.engine.observability.health import StreamHealth
from tapewatch.engine.settings.config import ExecutionConfig
from tests.console.conftest import (
    BUY,
    SLIDE,
    Session,
    drawn,
    make_app,
    make_session,
    open_position,
    shown,
    until,
)

SIZE = (120, 36)


class FakeAccounts:
    """A paper and a live account, both simulated; records what was connected."""

    def __init__(self, clock: Clock, *, live: bool = True) -> None:
        self._clock = clock
        self._live = live
        self.connected: list[Mode] = []

    def live_available(self) -> bool:
        return self._live

    def paper_available(self) -> bool:
        return True

    def describe(self, mode: Mode) -> str:
        return f"{mode.value} account LV-••••-4321 at https://live.example"

    async def connect(self, mode: Mode) -> tuple[Broker, str, str]:
        self.connected.append(mode)
        broker = SimBroker(50_000.0, ExecutionConfig(), clock=self._clock)
        return broker, f"{mode.value}-4321", f"https://{mode.value.lower()}.example"


def paper(tmp_path: Path, max_drawdown: float = 0.05) -> Session:
    """A paper session whose drawdown breaker halts (the severest state), for these tests."""
    return make_session(
        tmp_path,
        [BUY, *SLIDE],
        mode=Mode.PAPER,
        max_drawdown=max_drawdown,
        drawdown_action="halt",
    )


def switches(session: Session) -> list[str]:
    return [getattr(e, "detail", "") for e in session.journal_events("operator")]


async def test_the_demo_explains_there_is_no_live_account(session: Session) -> None:
    app = make_app(session, accounts=FakeAccounts(session.engine.clock))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: session.engine.state.running)
        await pilot.press("m")
        await pilot.pause()
        assert isinstance(app.screen, MessageScreen)
        assert "demo" in shown(app.screen.query_one("#body")).lower()
        await pilot.press("enter")
        await pilot.pause()
        assert session.engine.mode is Mode.DEMO
    assert "switch_account" not in session.operator_actions()


async def test_live_refused_without_live_credentials(tmp_path: Path) -> None:
    session = paper(tmp_path)
    app = make_app(session, accounts=NoAccounts())
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: session.engine.state.running)
        await pilot.press("m")
        await pilot.pause()
        assert isinstance(app.screen, MessageScreen)
        assert "credentials" in str(app.screen.query_one("#dialog").border_title)
        assert session.engine.mode is Mode.PAPER
    assert "switch_account" not in session.operator_actions()


async def test_live_refused_while_halted(tmp_path: Path) -> None:
    session = paper(tmp_path, max_drawdown=0.01)
    accounts = FakeAccounts(session.engine.clock)
    app = make_app(session, accounts=accounts)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: session.engine.state.running)
        await open_position(pilot, session)  # the fill bar's close is a 2.4% drawdown
        assert session.engine.state.trading_state is TradingState.HALTED
        await pilot.press("m")
        await pilot.pause()
        assert isinstance(app.screen, MessageScreen)
        assert "HALTED" in str(app.screen.query_one("#dialog").border_title)
        assert session.engine.mode is Mode.PAPER and accounts.connected == []
    assert "switch_account" not in session.operator_actions()


async def test_live_needs_the_typed_word_exactly(tmp_path: Path) -> None:
    session = paper(tmp_path)
    accounts = FakeAccounts(session.engine.clock)
    app = make_app(session, accounts=accounts)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: session.engine.state.running)
        await pilot.press("m")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, LiveConfirmScreen)
        assert "LV-••••-4321" in shown(screen.query_one("#body"))
        await pilot.press(*"live", "enter")
        await pilot.pause()
        assert app.screen is screen  # not accepted: still asking
        assert "exactly" in shown(screen.query_one("#hint"))
        await pilot.press("escape")
        await pilot.pause()
        assert session.engine.mode is Mode.PAPER and accounts.connected == []
    assert "switch_account" not in session.operator_actions()


async def test_live_accepted_with_the_typed_word_then_back_to_paper(tmp_path: Path) -> None:
    session = paper(tmp_path)
    accounts = FakeAccounts(session.engine.clock)
    app = make_app(session, accounts=accounts)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: session.engine.state.running)
        await pilot.press("m")
        await pilot.pause()
        await pilot.press(*"LIVE", "enter")
        await until(pilot, lambda: session.engine.mode is Mode.LIVE, "mode LIVE")
        await drawn(pilot, session)
        assert session.engine.state.account == "LIVE-4321"
        assert app.query_one("#frame").has_class("-live")
        assert "LIVE · REAL MONEY" in shown(app.query_one("#header"))
        await pilot.press("m")  # back to paper: no ceremony
        await until(pilot, lambda: session.engine.mode is Mode.PAPER, "mode PAPER")
        await drawn(pilot, session)
        assert len(app.screen_stack) == 1
        assert not app.query_one("#frame").has_class("-live")
    assert accounts.connected == [Mode.LIVE, Mode.PAPER]
    details = [d for d in switches(session) if "->" in d]
    assert details == ["PAPER -> LIVE LIVE-4321", "LIVE -> PAPER PAPER-4321"]


async def test_breaker_reset_is_confirmed_and_journaled(tmp_path: Path) -> None:
    session = make_session(tmp_path, [BUY, *SLIDE], max_drawdown=0.01, drawdown_action="halt")
    app = make_app(session)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: session.engine.state.running)
        await open_position(pilot, session)
        assert session.engine.state.trading_state is TradingState.HALTED
        await drawn(pilot, session)
        assert "TRIP" in shown(app.query_one("#breakers"))
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await until(
            pilot,
            lambda: session.engine.state.trading_state is TradingState.ACTIVE,
            "trading ACTIVE",
        )
    resets = [
        e
        for e in session.journal_events("breaker")
        if isinstance(e, BreakerChanged) and e.name == "drawdown"
    ]
    assert [e.tripped for e in resets] == [True, False]
    assert "reset_breaker" in session.operator_actions()


async def test_reset_with_nothing_tripped_does_nothing(session: Session) -> None:
    app = make_app(session)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: session.engine.state.running)
        await pilot.press("r")
        await pilot.pause()
        assert len(app.screen_stack) == 1
    assert "reset_breaker" not in session.operator_actions()


class RefusedTradeStream(SimBroker):
    """trade_updates refused (as AlpacaBroker's socket reports it): the pane must say so."""

    def stream_health(self) -> StreamHealth:
        since = self._clock.now() - timedelta(seconds=35)
        return StreamHealth("down", since, reason="authentication refused (402 auth failed)")


async def test_a_refused_stream_shows_in_the_breakers_pane_with_its_reason(
    session: Session,
) -> None:
    engine = session.engine
    engine.broker = RefusedTradeStream(100_000.0, engine.config.execution, clock=engine.clock)
    app = make_app(session)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: session.engine.state.running)
        await drawn(pilot, session)
        await pilot.pause(0.6)  # the next redraw tick
        text = shown(app.query_one("#breakers"))
    assert "trades ws" in text and "DOWN" in text
    assert "402 auth failed" in text and "35s" in text
