"""``[console] on_hangup``: what the embedded console's engine does when its terminal goes.

keep-running (the default): the engine trades on as it would have, nothing is drawn, its API is
served on the data directory's socket (``tapewatch attach``, ``tapewatch status``), and the
dead-man's switch counts from the hang-up. pause: the same with new entries paused. stop: the
clean stop of before. Each hang-up is the operator's action, journaled and audited.

The first tests drive the app with Textual's Pilot over a gated paper session (conftest.py), so
every bar is let through by the test; the rest send a real SIGHUP to a real ``tapewatch demo``
in a pty (pty_console.py).
"""

from __future__ import annotations

import os
import signal
import stat
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from tapewatch.console.app import TapewatchApp
from tapewatch.engine.api.commands import HungUp
from tapewatch.engine.api.handle import InProcessHandle
from tapewatch.engine.api.replies import Refused
from tapewatch.engine.api.socket_client import SocketHandle, ask_status
from tapewatch.engine.api.socket_server import serve
from tapewatch.engine.api.wire import socket_path
from tapewatch.engine.model.types import Mode, TradingState
from tests.console.conftest import BUY, SLIDE, Session, make_app, make_session, until
from tests.console.pty_console import (
    EXIT_BOUND,
    Console,
    assert_not_forced,
    assert_stopped_cleanly,
    audit_records,
    demo_journal,
    demo_journal_path,
    end_all,
    hangup_policy,
    journal_events,
    operator_actions,
    start_demo,
    status_json,
)

# -- in process: Pilot over a gated paper session ---------------------------------------------


def _app(tmp_path: Path, policy: str) -> tuple[TapewatchApp, Session]:
    session = make_session(tmp_path, [BUY, *SLIDE], mode=Mode.PAPER)
    app = make_app(session, on_hangup=policy, serve_in=tmp_path / "data")
    return app, session


async def _served(pilot: Pilot[Any], app: TapewatchApp) -> Path:
    await until(pilot, lambda: app.serving is not None, "the engine socket")
    assert app.serving is not None
    return app.serving


async def _bars(pilot: Pilot[Any], session: Session, count: int) -> None:
    """Let ``count`` more bars through and wait until the engine took them (nothing draws)."""
    target = len(session.engine.state.bars) + count
    session.gate.release(count)
    await until(pilot, lambda: len(session.engine.state.bars) >= target, f"{target} bars")


async def test_keep_running_trades_on_undrawn_served_and_counted_unattended(
    tmp_path: Path,
) -> None:
    app, session = _app(tmp_path, "keep-running")
    engine = session.engine
    async with app.run_test() as pilot:
        path = await _served(pilot, app)
        assert path == socket_path(tmp_path / "data", Mode.PAPER)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
        assert (await ask_status(path)).details["console"] == "attached"
        assert engine.attendance.clients == 1  # the embedded console watches

        app.terminal_lost()  # what the driver reports when the tty fails (EIO)
        await until(pilot, lambda: "hangup" in session.operator_actions(), "the hang-up")
        hung_at = engine.clock.now()
        drawn = app.drawn_version

        # The engine trades as it would have: the crafted buy goes, and fills.
        await _bars(pilot, session, 2)
        assert "SPY" in engine.state.positions, session.operator_actions()
        assert engine.state.trading_state is TradingState.ACTIVE, session.operator_actions()
        await pilot.pause(0.3)  # several frames' worth: none is drawn
        assert app.drawn_version == drawn != engine.state.version
        assert app.is_running

        details = (await ask_status(path)).details
        assert details["console"] == "hung up" and details["trading_state"] == "ACTIVE"

        # Nobody watching since the hang-up: the dead-man's switch pauses new entries at the
        # first bar [risk] unattended_pause_after past it, not before.
        assert engine.attendance.clients == 0
        after = timedelta(seconds=engine.attendance.after_seconds or 0)
        while "unattended_pause" not in session.operator_actions():
            assert engine.clock.now() - hung_at <= after, "the switch did not fire in time"
            await _bars(pilot, session, 1)
        assert engine.clock.now() - hung_at >= after
        assert engine.state.trading_state is TradingState.REDUCING  # exits still go

        # A console attached over the socket counts as one, and leaving makes it none again.
        remote = await SocketHandle.connect(path)
        await until(pilot, lambda: engine.attendance.clients == 1, "the attached console")
        await remote.close()
        await until(pilot, lambda: engine.attendance.clients == 0, "the detached console")

    hangup = next(e for e in session.journal_events("operator") if e.action == "hangup")
    assert (hangup.who, hangup.detail) == ("tester@local", "keep-running: terminal lost")


async def test_pause_pauses_new_entries_and_keeps_running(tmp_path: Path) -> None:
    app, session = _app(tmp_path, "pause")
    engine = session.engine
    async with app.run_test() as pilot:
        await _served(pilot, app)
        app._hang_up("received SIGHUP")  # what the SIGHUP handler calls on the loop
        await until(pilot, lambda: "pause" in session.operator_actions(), "the pause")
        assert engine.state.paused and engine.state.trading_state is TradingState.REDUCING
        session.gate.release(3)  # the crafted buy's bar comes: denied, the bars still go on
        await until(pilot, lambda: len(engine.state.bars) >= 3, "bars after the hang-up")
        assert "SPY" not in engine.state.positions
        assert session.journal_events("risk_denied"), "the entry was not denied"
        assert app.is_running
    actions = [(e.action, e.detail) for e in session.journal_events("operator")]
    assert actions[:2] == [
        ("hangup", "pause: received SIGHUP"),
        ("pause", "paused on hang-up (received SIGHUP)"),
    ]


async def test_stop_journals_the_hangup_then_stops(tmp_path: Path) -> None:
    app, session = _app(tmp_path, "stop")
    async with app.run_test() as pilot:
        path = await _served(pilot, app)
        app._hang_up("received SIGHUP")
        await until(pilot, lambda: not session.engine.state.running, "the stop")
        await until(pilot, lambda: not path.exists(), "the socket removed")
    operator = session.journal_events("operator")
    assert [(e.action, e.detail) for e in operator] == [
        ("hangup", "stop: received SIGHUP"),
        ("quit", "received SIGHUP"),
    ]
    assert session.journal_events("session_stopped")


async def test_a_socket_another_engine_serves_is_a_warning_and_the_session_trades_on(
    tmp_path: Path,
) -> None:
    other = make_session(tmp_path / "other", [BUY], mode=Mode.PAPER)
    path = socket_path(tmp_path / "data", Mode.PAPER)
    blocker = await serve(InProcessHandle(other.engine, alerts=False), path)
    try:
        app, session = _app(tmp_path, "keep-running")
        async with app.run_test() as pilot:
            await until(pilot, lambda: not _serving(app), "the serve attempt")
            assert app.serving is None
            assert any("another engine already serves" in e.text for e in app._activity.entries)
            await _bars(pilot, session, 2)
            assert "SPY" in session.engine.state.positions
        assert path.exists(), "the other engine's socket was taken away"
    finally:
        await blocker.close()
        other.journal.close()


def _serving(app: TapewatchApp) -> bool:
    return any(w.name == "serve" and not w.is_finished for w in app.workers)


async def test_a_handover_between_consoles_attached_to_the_embedded_engine_is_journaled(
    tmp_path: Path,
) -> None:
    app, session = _app(tmp_path, "keep-running")
    async with app.run_test() as pilot:
        path = await _served(pilot, app)
        first = await SocketHandle.connect(path)
        second = await SocketHandle.connect(path, take_control=True)
        await until(pilot, lambda: "take_control" in session.operator_actions(), "the handover")
        assert session.engine.attendance.clients == 3  # the embedded console and both
        await second.close()
        await first.close()


async def test_a_hangup_command_with_an_unknown_policy_is_refused(tmp_path: Path) -> None:
    app, session = _app(tmp_path, "keep-running")
    async with app.run_test() as pilot:
        await _served(pilot, app)
        assert app._handle is not None
        reply = await app._handle.send(HungUp(who="x", policy="explode", why="test"))
        assert isinstance(reply, Refused) and "keep-running, pause, stop" in reply.reason
    assert "hangup" not in session.operator_actions()


# -- a real SIGHUP to a real `tapewatch demo` in a pty ----------------------------------------


@pytest.fixture
def consoles() -> Iterator[list[Console]]:
    started: list[Console] = []
    yield started
    end_all(started)


def _hangups(tmp_path: Path) -> list[str]:
    path = demo_journal_path(tmp_path)
    return [a.detail for a in operator_actions(journal_events(path)) if a.action == "hangup"]


def _audited_hangups(tmp_path: Path) -> list[dict[str, object]]:
    return [r for r in audit_records(tmp_path) if r.get("action") == "hangup"]


def _grows(console: Console, tmp_path: Path) -> None:
    """The journal takes more records: the engine is still trading."""
    path = demo_journal_path(tmp_path)
    seen = len(journal_events(path))
    console.wait_until("the journal to grow", lambda: len(journal_events(path)) > seen)


def test_keep_running_serves_trades_on_after_sighup_and_sigterm_still_stops(
    consoles: list[Console], tmp_path: Path
) -> None:
    console = start_demo(consoles, tmp_path)  # no config: keep-running is the default
    sock = socket_path(tmp_path / "data", Mode.DEMO)
    console.wait_until("the engine socket", sock.exists)
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
    code, answer = status_json(tmp_path)  # while the console is up
    assert code == 0 and answer["engines"][0]["console"] == "attached", answer

    console.proc.send_signal(signal.SIGHUP)
    console.wait_until("the hang-up journaled", lambda: _hangups(tmp_path) != [])
    assert _hangups(tmp_path) == ["keep-running: received SIGHUP"]
    _grows(console, tmp_path)
    code, answer = status_json(tmp_path)
    assert code == 0, answer
    (engine,) = answer["engines"]
    assert (engine["mode"], engine["console"], engine["pid"]) == (
        "DEMO",
        "hung up",
        console.proc.pid,
    )
    console.wait_until("the hang-up audited", lambda: _audited_hangups(tmp_path) != [])
    (audited,) = _audited_hangups(tmp_path)
    assert audited["detail"] == "keep-running: received SIGHUP" and audited["who"]

    console.proc.send_signal(signal.SIGTERM)
    assert console.wait_for_exit(EXIT_BOUND) == 0
    assert_stopped_cleanly(demo_journal(tmp_path))
    assert_not_forced(tmp_path)
    assert not sock.exists(), "the socket outlived its engine"


def test_pause_after_sighup_pauses_entries_and_keeps_running(
    consoles: list[Console], tmp_path: Path
) -> None:
    hangup_policy(tmp_path, "pause")
    console = start_demo(consoles, tmp_path)
    console.proc.send_signal(signal.SIGHUP)
    console.wait_until("the hang-up journaled", lambda: _hangups(tmp_path) != [])
    assert _hangups(tmp_path) == ["pause: received SIGHUP"]
    actions = operator_actions(journal_events(demo_journal_path(tmp_path)))
    assert [a.action for a in actions][-2:] == ["hangup", "pause"]
    _grows(console, tmp_path)
    code, answer = status_json(tmp_path)
    assert code == 0 and answer["engines"][0]["paused"] is True, answer
    assert answer["engines"][0]["trading_state"] == "REDUCING"  # exits still go
    console.wait_until("the hang-up audited", lambda: _audited_hangups(tmp_path) != [])

    console.proc.send_signal(signal.SIGTERM)
    assert console.wait_for_exit(EXIT_BOUND) == 0
    assert_stopped_cleanly(demo_journal(tmp_path))
    assert_not_forced(tmp_path)


def test_stop_after_sighup_exits_0_with_the_journal_consistent(
    consoles: list[Console], tmp_path: Path
) -> None:
    hangup_policy(tmp_path, "stop")
    console = start_demo(consoles, tmp_path)
    console.proc.send_signal(signal.SIGHUP)
    assert console.wait_for_exit(EXIT_BOUND) == 0
    events = demo_journal(tmp_path)
    assert_stopped_cleanly(events)
    assert _hangups(tmp_path) == ["stop: received SIGHUP"]
    assert [r["detail"] for r in _audited_hangups(tmp_path)] == ["stop: received SIGHUP"]
    assert_not_forced(tmp_path)
    assert not socket_path(tmp_path / "data", Mode.DEMO).exists()
