"""The seeded scene that the screenshot script and the snapshot tests both render.

The offline demo (seed 7, default strategy) primed with ``BARS`` bars through the engine,
unpaced: the strategy entered at bar 999, so a position is open, and the simulated clock reads
2026-01-26 15:45 New York. A PAPER variant runs the same bars on a paper-labelled engine with
stand-in accounts, for the live-switch confirmation.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Input

from tapewatch.console.accounts import AccountUnavailable
from tapewatch.console.app import TICK, TapewatchApp
from tapewatch.console.panes.bars import CHART_INTERVAL, BarsPane
from tapewatch.console.screens.flatten import FlattenScreen
from tapewatch.console.screens.help import HelpScreen
from tapewatch.console.screens.live import LiveConfirmScreen
from tapewatch.engine.core.broker import Broker
from tapewatch.engine.model.types import Mode
from tapewatch.engine.root.console_session import prime
from tapewatch.engine.root.demo import DemoOptions, DemoSession, build_demo
from tapewatch.engine.settings.config import EngineConfig

SEED = 7
BARS = 1005
CLOCK = datetime(2026, 1, 26, 20, 45, tzinfo=UTC)
WHO = "showcase@tapewatch"


class ShowcaseAccounts:
    """A paper and a live account as the confirmation screens describe them; never connects."""

    def live_available(self) -> bool:
        return True

    def paper_available(self) -> bool:
        return True

    def describe(self, mode: Mode) -> str:
        return f"{mode.value} account AK-••••-7Q2X at https://api.alpaca.markets"

    async def connect(self, mode: Mode) -> tuple[Broker, str, str]:
        raise AccountUnavailable("the showcase never connects an account")


def showcase_session(mode: Mode = Mode.DEMO) -> DemoSession:
    """The primed scene; raises if the seeded demo no longer looks as pictured."""
    config = EngineConfig().validate()
    options = DemoOptions(seed=SEED, who=WHO, lead_bars=None)  # the pictured bars, as they were
    if mode is not Mode.DEMO:  # the same bars on a paper-labelled engine
        options = replace(
            options, mode=mode, account="PA-••••-3F9K", endpoint="https://paper-api.alpaca.markets"
        )
    session = build_demo(config, options, data_dir=None)
    asyncio.run(prime(session, bars=BARS))
    engine = session.engine
    position = engine.state.positions.get("SPY")
    if engine.clock.now() != CLOCK or position is None or not position.qty:
        raise RuntimeError(
            f"the seeded demo changed (clock {engine.clock.now()}, positions "
            f"{engine.state.positions}): pick a new BARS/CLOCK in console/showcase.py"
        )
    return session


async def settle(pilot: Pilot[Any], session: DemoSession) -> None:
    """Wait until the panes drew the primed state in the theme's colours."""
    app = pilot.app
    assert isinstance(app, TapewatchApp)
    bars = app.query_one(BarsPane)
    version = session.engine.state.version
    await pilot.pause(CHART_INTERVAL + 2 * TICK)  # the chart rebuilds at most this often
    for _ in range(500):
        if app.drawn_version == version and not bars.pending:
            break
        await pilot.pause(0.01)
    else:
        raise RuntimeError("the panes never drew the primed state")


async def _press(pilot: Pilot[Any], key: str, screen: type, what: str) -> Any:
    await pilot.press(key)
    await pilot.pause()
    if not isinstance(pilot.app.screen, screen):
        raise RuntimeError(f"{key} did not open the {what}")
    return pilot.app.screen


async def open_flatten(pilot: Pilot[Any]) -> None:
    await _press(pilot, "f", FlattenScreen, "flatten preview")


async def open_live_confirm(pilot: Pilot[Any]) -> None:
    screen = await _press(pilot, "m", LiveConfirmScreen, "live confirmation")
    screen.query_one(Input).cursor_blink = False  # a steady cursor: the same picture every run


async def open_help(pilot: Pilot[Any]) -> None:
    await _press(pilot, "question_mark", HelpScreen, "help screen")
