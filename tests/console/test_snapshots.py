"""Snapshot tests: the main screen and each modal, pixel for pixel, at a fixed seed and clock.

The session is the offline demo (seed 7, default strategy) primed with ``BARS`` bars through
the engine, unpaced, so a position is open (the strategy entered at bar 999) and the simulated
clock reads 2026-01-26 15:45 New York. ``create_app(drive=False, measured=False)`` shows no
wall-clock time and no run-to-run timings. Update after a deliberate change of the look with
``pytest tests/console/test_snapshots.py --snapshot-update`` and inspect the SVGs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from console.app import TICK, TapewatchApp, create_app
from console.panes.bars import CHART_INTERVAL, BarsPane
from console.screens.flatten import FlattenScreen
from console.screens.help import HelpScreen
from console.screens.live import LiveConfirmScreen
from console.session import prime
from engine.brokers.base import Broker
from engine.brokers.sim import SimBroker
from engine.config import EngineConfig
from engine.engine import Engine
from engine.models import Mode
from engine.wiring import DemoOptions, DemoSession, build_demo

SEED = 7
BARS = 1005
CLOCK = datetime(2026, 1, 26, 20, 45, tzinfo=UTC)
BIG = (120, 36)
SMALL = (80, 24)

SnapCompare = Callable[..., bool]
Before = Callable[[Pilot[Any]], Awaitable[None]]


class LiveAndPaperAccounts:
    """Paper and live credentials stored; the modal only describes the account, never connects."""

    def live_available(self) -> bool:
        return True

    def paper_available(self) -> bool:
        return True

    def describe(self, mode: Mode) -> str:
        return f"{mode.value} account AK-••••-7Q2X at https://api.alpaca.markets"

    async def connect(self, mode: Mode) -> tuple[Broker, str, str]:
        raise AssertionError("a snapshot never connects an account")


@pytest.fixture(autouse=True)
def plain_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The developer's terminal settings must not change the picture."""
    for name in ("NO_COLOR", "TEXTUAL_THEME", "TEXTUAL_ANIMATIONS"):
        monkeypatch.delenv(name, raising=False)
    yield


def primed(mode: Mode = Mode.DEMO) -> DemoSession:
    """The seeded demo after ``BARS`` bars; PAPER runs the same bars on a paper-labelled engine."""
    config = EngineConfig().validate()
    session = build_demo(config, DemoOptions(seed=SEED), data_dir=None)
    if mode is not Mode.DEMO:
        clock = session.engine.clock
        engine = Engine(
            config,
            clock=clock,
            broker=SimBroker(config.starting_cash, config.execution, clock=clock),
            mode=mode,
            account="PA-••••-3F9K",
            endpoint="https://paper-api.alpaca.markets",
            in_session=session.calendar.is_open,
            who="tester@local",
        )
        session = DemoSession(engine, session.feed, session.calendar, None)
    asyncio.run(prime(session, bars=BARS))
    assert session.engine.clock.now() == CLOCK
    assert session.engine.state.positions["SPY"].qty > 0, "the seeded demo no longer enters"
    return session


def settle(session: DemoSession, then: Before | None = None) -> Before:
    """Wait for the panes to show the primed state in the theme's colours, then run ``then``."""

    async def before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, TapewatchApp)
        bars = app.query_one(BarsPane)
        version = session.engine.state.version
        await pilot.pause(CHART_INTERVAL + 2 * TICK)  # the theme's chart colours land a beat late
        for _ in range(500):
            if app.drawn_version == version and not bars.pending:
                break
            await pilot.pause(0.01)
        else:
            raise AssertionError("the panes never drew the primed state")
        if then is not None:
            await then(pilot)

    return before


async def open_flatten(pilot: Pilot[Any]) -> None:
    await pilot.press("f")
    await pilot.pause()
    assert isinstance(pilot.app.screen, FlattenScreen)


async def open_live_confirm(pilot: Pilot[Any]) -> None:
    await pilot.press("m")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, LiveConfirmScreen)
    screen.query_one(Input).cursor_blink = False  # a steady cursor: the same picture every run


async def open_help(pilot: Pilot[Any]) -> None:
    await pilot.press("question_mark")
    await pilot.pause()
    assert isinstance(pilot.app.screen, HelpScreen)


def test_main_screen_120x36(snap_compare: SnapCompare) -> None:
    session = primed()
    app = create_app(session)
    assert snap_compare(app, terminal_size=BIG, run_before=settle(session))


def test_main_screen_light_theme(snap_compare: SnapCompare) -> None:
    session = primed()
    app = create_app(session, theme="light")
    assert snap_compare(app, terminal_size=BIG, run_before=settle(session))


def test_main_screen_80x24_pages(snap_compare: SnapCompare) -> None:
    session = primed()
    app = create_app(session)
    assert snap_compare(app, terminal_size=SMALL, run_before=settle(session))


def test_flatten_preview_modal(snap_compare: SnapCompare) -> None:
    session = primed()
    app = create_app(session)
    assert snap_compare(app, terminal_size=BIG, run_before=settle(session, open_flatten))


def test_live_confirm_modal(snap_compare: SnapCompare) -> None:
    session = primed(Mode.PAPER)
    app = create_app(session, accounts=LiveAndPaperAccounts())
    assert snap_compare(app, terminal_size=BIG, run_before=settle(session, open_live_confirm))


def test_help_screen(snap_compare: SnapCompare) -> None:
    session = primed()
    app = create_app(session)
    assert snap_compare(app, terminal_size=BIG, run_before=settle(session, open_help))
