"""The demo's keys: the speed ladder, next signal, and where demo-only keys are offered.

Pilot tests over the gated replay of ``conftest``: a bar passes only when the test releases
it, so what a key did is read from the engine and the feed, never from timing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets._footer import FooterKey

from tapewatch.console.app import TapewatchApp
from tapewatch.console.demo_speed import MAX_SPEED, SPEED_LADDER, speed_label, step_speed
from tapewatch.engine.adapters.sim import replay
from tapewatch.engine.adapters.sim.replay import ReplayFeed
from tapewatch.engine.model.types import Mode
from tests.console.conftest import SLIDE, WARM, Session, arrays, make_app, make_session, until

SIZE = (160, 48)


# -- the ladder --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "up", "expected"),
    [
        (60.0, True, 300.0),
        (60.0, False, 15.0),
        (1200.0, True, MAX_SPEED),
        (MAX_SPEED, True, None),
        (1.0, False, None),
        (600.0, True, 1200.0),  # --speed 600 is between rungs: the next one each way
        (600.0, False, 300.0),
        (None, True, 300.0),  # unknown: from the default ×60
    ],
)
def test_the_ladder_steps_to_the_next_rung(
    current: float | None, up: bool, expected: float | None
) -> None:
    assert step_speed(current, up=up) == expected


def test_the_ladder_tops_out_at_the_replays_fastest_pace() -> None:
    assert SPEED_LADDER == (1.0, 5.0, 15.0, 60.0, 300.0, 1200.0, MAX_SPEED)
    assert MAX_SPEED == replay.MAX_SPEED
    assert speed_label(MAX_SPEED) == "×10000 (max)" and speed_label(15.0) == "×15"


# -- keys in the demo --------------------------------------------------------------------------


def footer_actions(app: TapewatchApp) -> list[str]:
    return [key.action.removeprefix("app.") for key in app.screen.query(FooterKey)]


def messages(app: TapewatchApp) -> list[str]:
    return [n.message for n in app._notifications]


def palette_titles(app: TapewatchApp) -> list[str]:
    return [command.title for command in app.get_system_commands(app.screen)]


async def started(pilot: Pilot[Any], session: Session) -> None:
    app = pilot.app
    assert isinstance(app, TapewatchApp)
    await until(pilot, lambda: session.engine.state.running, "engine running")
    await until(pilot, lambda: app._handle is not None, "the handle")
    await pilot.pause()


async def test_plus_and_minus_walk_the_ladder(session: Session) -> None:
    app = make_app(session)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await started(pilot, session)
        for key, speed in (("plus", 300.0), ("plus", 1200.0), ("plus", MAX_SPEED)):
            await pilot.press(key)
            await until(pilot, lambda s=speed: session.feed.speed == s, f"speed {speed:g}")
        await pilot.press("plus")  # already at the top: nothing sent
        await pilot.pause()
        assert session.feed.speed == MAX_SPEED
        assert "already the fastest" in messages(app)[-1]
        for speed in (1200.0, 300.0, 60.0, 15.0, 5.0, 1.0):
            await pilot.press("minus")
            await until(pilot, lambda s=speed: session.feed.speed == s, f"speed {speed:g}")
        assert session.engine.state.speed == 1.0


async def test_next_signal_fast_forwards_to_just_before_the_signal(tmp_path: Path) -> None:
    session = make_session(tmp_path, SLIDE * 3)
    signal = session.bars[len(WARM) + 12]  # the 13th paced bar, say
    session.feed = ReplayFeed(
        arrays(session.bars),
        session.feed._clock,  # the engine's SimClock
        timeframe_seconds=300,
        warmup=len(WARM),
        speed=60.0,
        sleep=session.gate,
        ahead=lambda bar: bar.ts == signal.ts,
    )
    app = make_app(session)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await started(pilot, session)
        session.gate.release(1)
        await until(pilot, lambda: session.feed.bars_delivered == 1, "the first bar")
        assert "next_signal" in footer_actions(app)
        await pilot.press("n")
        # No more gate credits: only the fast-forward can have delivered these.
        await until(pilot, lambda: session.feed.bars_delivered == 12, "the bars before it")
        await pilot.pause(0.05)
        assert session.feed.bars_delivered == 12  # the signal bar waits for its interval
        assert session.engine.state.bars[-1].ts < signal.ts
        session.gate.release(1)
        await until(pilot, lambda: session.engine.state.bars[-1].ts == signal.ts, "the signal")
        await pilot.press("n")  # the gate holds the next bar; it is no signal: skip again
        await until(pilot, lambda: session.feed.bars_delivered == len(SLIDE) * 3, "the rest")


async def test_next_signal_without_a_look_ahead_says_so(session: Session) -> None:
    app = make_app(session)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await started(pilot, session)
        await pilot.press("n")
        await until(pilot, lambda: bool(messages(app)), "a notice")
        assert "cannot look ahead" in messages(app)[-1]
        assert session.feed.bars_delivered == 0


# -- keys outside the demo ---------------------------------------------------------------------


async def test_paper_offers_no_demo_keys_and_they_do_nothing(tmp_path: Path) -> None:
    session = make_session(tmp_path, SLIDE, mode=Mode.PAPER)
    app = make_app(session)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await started(pilot, session)
        actions = footer_actions(app)
        assert "pause_resume" in actions and "quit" in actions
        assert not {"faster", "slower", "next_signal"} & set(actions)
        titles = palette_titles(app)
        assert not {"Faster", "Slower", "Next signal"} & set(titles)
        await pilot.press("plus", "minus", "n")
        await pilot.pause()
        assert session.feed.speed == 60.0
        assert messages(app) == []  # the keys are inactive: not even a refusal


async def test_the_palette_has_each_command_once(session: Session) -> None:
    app = make_app(session)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, session)
        titles = palette_titles(app)
        assert len(titles) == len(set(titles)), titles
        assert titles.count("Quit") == 1 and titles.count("Theme") == 1
        assert {"Faster", "Slower", "Next signal"} <= set(titles)  # the demo has them
        assert "Keys" in titles  # Textual's own that we do not duplicate stay
        assert {"faster", "slower", "next_signal"} <= set(footer_actions(app))
