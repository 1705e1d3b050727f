"""Snapshot tests: the main screen and each modal, pixel for pixel, at a fixed seed and clock.

The session is the offline demo (seed 7, default strategy) primed with ``BARS`` bars through
the engine, unpaced, so a position is open (the strategy entered at bar 999) and the simulated
clock reads 2026-01-26 15:45 New York. ``create_app(drive=False, measured=False)`` shows no
wall-clock time and no run-to-run timings. Update after a deliberate change of the look with
``pytest tests/console/test_snapshots.py --snapshot-update`` and inspect the SVGs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from textual.pilot import Pilot

from scripts.showcase import (
    ShowcaseAccounts,
    open_flatten,
    open_help,
    open_live_confirm,
    settle,
    showcase_session,
)
from tapewatch.console.app import create_app
from tapewatch.engine.model.types import Mode
from tapewatch.engine.root.demo import DemoSession

BIG = (120, 36)
SMALL = (80, 24)

SnapCompare = Callable[..., bool]
Before = Callable[[Pilot[Any]], Awaitable[None]]


@pytest.fixture(autouse=True)
def plain_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The developer's terminal settings must not change the picture."""
    for name in ("NO_COLOR", "TEXTUAL_THEME", "TEXTUAL_ANIMATIONS"):
        monkeypatch.delenv(name, raising=False)
    yield


def settled(session: DemoSession, then: Before | None = None) -> Before:
    """``run_before`` for snap_compare: wait for the primed state, then run ``then``."""

    async def before(pilot: Pilot[Any]) -> None:
        await settle(pilot, session)
        if then is not None:
            await then(pilot)

    return before


def test_main_screen_120x36(snap_compare: SnapCompare) -> None:
    session = showcase_session()
    app = create_app(session)
    assert snap_compare(app, terminal_size=BIG, run_before=settled(session))


def test_main_screen_light_theme(snap_compare: SnapCompare) -> None:
    session = showcase_session()
    app = create_app(session, theme="light")
    assert snap_compare(app, terminal_size=BIG, run_before=settled(session))


def test_main_screen_80x24_pages(snap_compare: SnapCompare) -> None:
    session = showcase_session()
    app = create_app(session)
    assert snap_compare(app, terminal_size=SMALL, run_before=settled(session))


def test_flatten_preview_modal(snap_compare: SnapCompare) -> None:
    session = showcase_session()
    app = create_app(session)
    assert snap_compare(app, terminal_size=BIG, run_before=settled(session, open_flatten))


def test_live_confirm_modal(snap_compare: SnapCompare) -> None:
    session = showcase_session(Mode.PAPER)
    app = create_app(session, accounts=ShowcaseAccounts())
    assert snap_compare(app, terminal_size=BIG, run_before=settled(session, open_live_confirm))


def test_help_screen(snap_compare: SnapCompare) -> None:
    session = showcase_session()
    app = create_app(session)
    assert snap_compare(app, terminal_size=BIG, run_before=settled(session, open_help))
