"""Confirm mode in the console (issue 11 item 11): the prompt, y and n, the timeout, the key.

Pilot drives the real app over the gated demo session of tests/console/conftest.py: the bar
10.5 is a buy signal, so with confirm mode on it waits for the operator. Time is the engine's
SimClock, moved only by the gate: letting the next bar through passes the 30 s deadline.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from rich.cells import cell_len

from tapewatch.console.confirm_prompt import HeldOrderPrompt, prompt_line
from tapewatch.engine.model.events import Notice, OperatorAction, OrderIntended
from tapewatch.engine.model.types import Intent
from tests.console.conftest import (
    BUY,
    SLIDE,
    Session,
    bars_processed,
    make_app,
    make_session,
    shown,
    until,
)

SIZES = [(80, 24), (100, 30), (160, 48)]


@pytest.fixture
def held(tmp_path: Path) -> Iterator[Session]:
    """A session whose entries wait for confirmation."""
    s = make_session(tmp_path, [BUY, *SLIDE])
    s.engine.hold.mode = "entries"
    yield s
    s.journal.close()


def entries(session: Session) -> list[OrderIntended]:
    return [
        e
        for e in session.journal_events("intent")
        if isinstance(e, OrderIntended) and e.request.intent is Intent.ENTRY
    ]


async def prompted(pilot, session: Session) -> HeldOrderPrompt:  # type: ignore[no-untyped-def]
    """Let the buy bar through; wait until its prompt shows."""
    await bars_processed(pilot, session, 1)
    prompt = pilot.app.query_one(HeldOrderPrompt)
    await until(pilot, lambda: prompt.display and prompt.answerable, "the prompt")
    return prompt


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_the_prompt_shows_the_order_and_its_reason_and_y_sends_it(
    held: Session, size: tuple[int, int]
) -> None:
    app = make_app(held)
    async with app.run_test(size=size, notifications=True) as pilot:
        await until(pilot, lambda: held.engine.state.running)
        prompt = await prompted(pilot, held)
        text = shown(prompt)
        assert prompt.outer_size.height == 1 and "\n" not in text
        assert text.strip().startswith("BUY ") and " SPY ~$10.50" in text
        assert "y send · n skip · 30s" in text  # the keys and the countdown always fit
        assert cell_len(text.rstrip()) <= size[0]
        if size[0] >= 100:
            assert "RSI" in text and "close > SMA" in text  # the reason, whole
        assert not entries(held)
        await pilot.press("y")
        await until(pilot, lambda: len(entries(held)) == 1, "the entry sent")
        await until(pilot, lambda: not prompt.display, "the prompt gone")
        assert "confirm_order" in held.operator_actions()


async def test_n_skips_the_entry_and_is_not_the_demo_next_signal_then(held: Session) -> None:
    app = make_app(held)
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        await until(pilot, lambda: held.engine.state.running)
        prompt = await prompted(pilot, held)
        await pilot.press("n")
        await until(pilot, lambda: not prompt.display, "the prompt gone")
        assert not held.feed.skipping  # n answered the prompt, it did not fast-forward
        assert not entries(held)
        row = held.engine.state.orders[0]
        assert (row.status, row.reason) == ("skipped", "skipped by tester@local")
        assert "skip_order" in held.operator_actions()


async def test_no_answer_by_the_deadline_skips_the_entry_and_says_so(held: Session) -> None:
    app = make_app(held)
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        await until(pilot, lambda: held.engine.state.running)
        prompt = await prompted(pilot, held)
        await bars_processed(pilot, held, 1)  # 5 minutes on the engine clock: past 30 s
        await until(pilot, lambda: not prompt.display, "the prompt gone")
        assert not entries(held)
        notices = [e.message for e in held.journal_events("notice") if isinstance(e, Notice)]
        assert any("not confirmed within 30 s: skipped" in m for m in notices), notices
        await pilot.press("y")  # too late: nothing waits, nothing is sent
        await pilot.pause(0.05)
        assert not entries(held)


async def test_the_key_cycles_the_modes_and_each_change_is_journaled(tmp_path: Path) -> None:
    session = make_session(tmp_path, [BUY, *SLIDE])
    app = make_app(session)
    try:
        async with app.run_test(size=(100, 30), notifications=True) as pilot:
            await until(pilot, lambda: session.engine.state.running)
            seen = []
            for count in range(1, 4):
                await pilot.press("c")
                await until(pilot, _changed(session, count), "a mode change")
                seen.append(session.engine.hold.mode)
            assert seen == ["entries", "all", "off"]
            acts = [e for e in session.journal_events("operator") if isinstance(e, OperatorAction)]
            details = [(a.action, a.who, a.detail) for a in acts if a.action == "confirm_mode"]
            assert details == [
                ("confirm_mode", "tester@local", "off -> entries"),
                ("confirm_mode", "tester@local", "entries -> all"),
                ("confirm_mode", "tester@local", "all -> off"),
            ]
    finally:
        session.journal.close()


def _changed(session: Session, count: int) -> Callable[[], bool]:
    """True once ``count`` confirm-mode changes are journaled."""
    return lambda: session.operator_actions().count("confirm_mode") >= count


async def test_with_confirm_off_the_entry_goes_straight_out_and_y_does_nothing(
    session: Session,
) -> None:
    app = make_app(session)
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        await until(pilot, lambda: session.engine.state.running)
        await bars_processed(pilot, session, 1)  # the buy goes straight out
        assert len(entries(session)) == 1
        assert not app.query_one(HeldOrderPrompt).display
        await pilot.press("y")
        await pilot.pause(0.05)
        assert "confirm_order" not in session.operator_actions()
        assert len(entries(session)) == 1


def test_a_long_reason_is_cut_before_the_keys_and_the_countdown() -> None:
    from dataclasses import replace
    from datetime import timedelta

    from tapewatch.engine.core.confirm import HeldOrder
    from tapewatch.engine.model.types import OrderRequest, Side
    from tests.helpers import T0

    request = OrderRequest("c1", "SPY", Side.BUY, 12.0, Intent.ENTRY, T0, estimated_price=512.3)
    order = HeldOrder(request, "RSI 27.9 < 30, close > SMA", T0, T0 + timedelta(seconds=30))
    line = prompt_line(order, T0 + timedelta(seconds=5), 78).plain
    assert line == "BUY 12 SPY ~$512.30 · RSI 27.9 < 30, close > SMA  y send · n skip · 25s"
    long = replace(order, why="RSI 27.9 < 30, close > SMA " + "and more " * 10)
    cut = prompt_line(long, T0, 60).plain
    assert cell_len(cut) <= 60 and cut.endswith("y send · n skip · 30s") and "…" in cut
    exit_ = replace(order, request=replace(request, side=Side.SELL, intent=Intent.EXIT))
    assert prompt_line(exit_, T0, 78).plain.endswith("y send now · sends in 30s")


async def test_an_exit_cannot_be_skipped_and_goes_at_its_deadline(tmp_path: Path) -> None:
    # The buy on 10.5 fills at the 10.0 bar's open; two rises then make RSI(2) 100 > 90: a sell.
    session = make_session(tmp_path, [BUY, 10.0, 10.3, 10.6, 10.5, 10.4])
    session.engine.hold.mode = "all"
    app = make_app(session)
    try:
        async with app.run_test(size=(80, 24), notifications=True) as pilot:
            await until(pilot, lambda: session.engine.state.running)
            prompt = await prompted(pilot, session)
            await pilot.press("y")
            await until(pilot, lambda: len(entries(session)) == 1, "the entry sent")
            await bars_processed(pilot, session, 3)  # the fill, then the two rises
            await until(pilot, lambda: prompt.display and prompt.held_is_exit, "the exit prompt")
            text = shown(prompt)
            assert text.strip().startswith("SELL ") and "y send now · sends in 30s" in text
            assert "n skip" not in text
            await pilot.press("n")
            await until(
                pilot,
                lambda: any("exit is not skipped" in n.message for n in app._notifications),
                "the refusal",
            )
            assert not exits(session)
            await bars_processed(pilot, session, 1)  # past the deadline: the exit goes
            await until(pilot, lambda: len(exits(session)) == 1, "the exit sent")
    finally:
        session.journal.close()


def exits(session: Session) -> list[OrderIntended]:
    return [
        e
        for e in session.journal_events("intent")
        if isinstance(e, OrderIntended) and e.request.intent is Intent.EXIT
    ]
