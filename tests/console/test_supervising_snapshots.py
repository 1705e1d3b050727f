"""Snapshots of flatten that sticks (issue 11 item 1) on the seeded showcase demo.

The flatten dialog at 80×24 (three choices, est. prices) and the screen right after `f`, `y`
at 100×30 and 160×48: the header keeps `flattened + paused HH:MM by <who>` beside the clock and
says PAUSED, the Orders pane names who flattened. Update with ``--snapshot-update`` after a
deliberate change of the look, and inspect the SVGs.
"""

from __future__ import annotations

from typing import Any

import pytest
from textual.pilot import Pilot

from scripts.showcase import open_flatten, showcase_session
from tapewatch.console.app import TapewatchApp, create_app
from tests.console.test_snapshots import SnapCompare, settled


def test_flatten_dialog_80x24(snap_compare: SnapCompare) -> None:
    session = showcase_session()
    app = create_app(session)
    assert snap_compare(app, terminal_size=(80, 24), run_before=settled(session, open_flatten))


@pytest.mark.parametrize("size", [(100, 30), (160, 48)], ids=["100x30", "160x48"])
def test_after_flatten_and_pause(snap_compare: SnapCompare, size: tuple[int, int]) -> None:
    session = showcase_session()
    app = create_app(session)
    engine = session.engine

    async def flatten_and_pause(pilot: Pilot[Any]) -> None:
        await open_flatten(pilot)
        await pilot.press("y")
        shown = pilot.app
        assert isinstance(shown, TapewatchApp)
        for _ in range(500):
            if engine.state.paused and shown.drawn_version == engine.state.version:
                break
            await pilot.pause(0.01)
        else:
            raise AssertionError("the flatten and pause never showed")
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=settled(session, flatten_and_pause))
