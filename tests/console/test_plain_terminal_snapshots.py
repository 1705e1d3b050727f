"""Snapshots of the plain-terminal looks (issue 11 item 6): the Linux console in ASCII at
80x24, 16 colours (``TERM=xterm``) at 100x30, and the full look at 160x48.

The same seeded showcase scene as ``test_snapshots.py``; the terminal is injected as the
environment would decide it. Update with ``--snapshot-update`` after a deliberate change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from scripts.showcase import settle, showcase_session
from tapewatch.console.app import TapewatchApp
from tapewatch.console.terminal import Terminal
from tapewatch.engine.root.demo import DemoSession

SnapCompare = Callable[..., bool]


@pytest.fixture(autouse=True)
def plain_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("NO_COLOR", "TEXTUAL_THEME", "TEXTUAL_ANIMATIONS"):
        monkeypatch.delenv(name, raising=False)
    yield


def _app(session: DemoSession, env: dict[str, str]) -> TapewatchApp:
    return TapewatchApp(
        session=session,
        drive=False,
        measured=False,
        config_path=Path("~/.config/tapewatch/config.toml"),
        terminal=Terminal.detect(env),
    )


def _settled(session: DemoSession) -> Callable[[Pilot[Any]], Any]:
    async def before(pilot: Pilot[Any]) -> None:
        await settle(pilot, session)
        for _ in range(3):  # the footer fits itself in a refresh or two
            await pilot.pause()

    return before


def test_linux_console_80x24_in_ascii(snap_compare: SnapCompare) -> None:
    session = showcase_session()
    app = _app(session, {"TERM": "linux"})
    assert snap_compare(app, terminal_size=(80, 24), run_before=_settled(session))


def test_xterm_16_colours_100x30(snap_compare: SnapCompare) -> None:
    session = showcase_session()
    app = _app(session, {"TERM": "xterm"})
    assert snap_compare(app, terminal_size=(100, 30), run_before=_settled(session))


def test_truecolor_160x48(snap_compare: SnapCompare) -> None:
    session = showcase_session()
    app = _app(session, {"TERM": "xterm-256color", "COLORTERM": "truecolor"})
    assert snap_compare(app, terminal_size=(160, 48), run_before=_settled(session))
