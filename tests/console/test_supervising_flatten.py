"""Supervising by hand (issue 11 items 1, 4, 7): flatten that sticks, trades you can read,
honest numbers. Pilot drives the real app over a gated demo engine; every assertion reads the
engine, the journal or what the screen paints.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tapewatch.console.format import et, money, qty
from tapewatch.console.panes.header import HeaderPane
from tapewatch.console.screens.flatten import FlattenScreen
from tapewatch.engine.model.events import OrderIntended
from tapewatch.engine.model.types import Intent
from tests.console.conftest import (
    BUY,
    Session,
    bars_processed,
    drawn,
    make_app,
    make_session,
    open_position,
    shown,
    until,
)

# RSI(2)/SMA(3), oversold 65: the buy on 10.5 fills on the 10.0 bar; a flatten sent then fills
# on the 9.95 bar; 9.5 then 9.9 (down 0.45, up 0.4: RSI 47 < 65, close above the SMA) is a
# second buy signal, the buy-back that flatten-and-pause must stop.
AFTER = [10.0, 9.95, 9.5, 9.9, 9.85, 9.8]
SIZES = [(80, 24), (100, 30), (160, 48)]
WIDE = (160, 48)


@pytest.fixture
def rebuy(tmp_path: Path) -> Iterator[Session]:
    s = make_session(tmp_path, [BUY, *AFTER])
    yield s
    s.journal.close()


def entries(session: Session) -> list[OrderIntended]:
    return [
        e
        for e in session.journal_events("intent")
        if isinstance(e, OrderIntended) and e.request.intent is Intent.ENTRY
    ]


async def flatten_with(pilot, session: Session, key: str) -> None:  # type: ignore[no-untyped-def]
    """Hold a position, open the flatten dialog, answer with ``key``; the flatten fills."""
    await open_position(pilot, session)
    await pilot.press("f")
    await until(pilot, lambda: isinstance(pilot.app.screen, FlattenScreen), "flatten dialog")
    await pilot.press(key)
    await until(pilot, lambda: session.engine.state.in_flight == 1, "flatten order in flight")
    await bars_processed(pilot, session, 1)
    assert "SPY" not in session.engine.state.positions


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_y_flattens_and_pauses_and_no_entry_goes_out_until_resume(
    rebuy: Session, size: tuple[int, int]
) -> None:
    app = make_app(rebuy)
    async with app.run_test(size=size, notifications=True) as pilot:
        await until(pilot, lambda: rebuy.engine.state.running)
        await flatten_with(pilot, rebuy, "y")
        assert rebuy.engine.state.paused
        await bars_processed(pilot, rebuy, 2)  # 9.5, then the 9.9 buy signal
        signal = rebuy.engine.state.last_signal
        assert signal is not None and signal.action == "buy"
        assert len(entries(rebuy)) == 1  # only the first entry: no buy-back
        assert rebuy.engine.state.orders[0].status == "denied"
        action = rebuy.engine.last_action
        assert action is not None
        header = shown(app.query_one(HeaderPane))
        assert f"flattened + paused {et(action.ts, '%H:%M')} by tester" in header
        assert "PAUSED" in header
        assert any("entries stay paused" in n.message for n in app._notifications)
        await pilot.press("p")
        await until(pilot, lambda: not rebuy.engine.state.paused, "resumed")
        await drawn(pilot, rebuy)
        assert "resumed" in shown(app.query_one(HeaderPane))
    assert rebuy.operator_actions() == ["flatten_and_pause", "resume"]


async def test_o_flattens_only_and_the_strategy_may_buy_again(rebuy: Session) -> None:
    app = make_app(rebuy)
    async with app.run_test(size=WIDE) as pilot:
        await until(pilot, lambda: rebuy.engine.state.running)
        await flatten_with(pilot, rebuy, "o")
        assert not rebuy.engine.state.paused
        await bars_processed(pilot, rebuy, 2)
        assert len(entries(rebuy)) == 2  # the behaviour flatten-and-pause exists to stop
        assert "flattened " in shown(app.query_one(HeaderPane))
    assert rebuy.operator_actions() == ["flatten"]


async def test_escape_cancels_the_flatten_dialog(rebuy: Session) -> None:
    app = make_app(rebuy)
    async with app.run_test(size=WIDE) as pilot:
        await until(pilot, lambda: rebuy.engine.state.running)
        await open_position(pilot, rebuy)
        await pilot.press("f")
        await until(pilot, lambda: isinstance(app.screen, FlattenScreen), "flatten dialog")
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, FlattenScreen)
        assert rebuy.engine.state.in_flight == 0 and not rebuy.engine.state.paused
    assert rebuy.operator_actions() == []


async def test_the_dialogs_prices_follow_the_market_while_open(rebuy: Session) -> None:
    app = make_app(rebuy)
    async with app.run_test(size=WIDE) as pilot:
        await until(pilot, lambda: rebuy.engine.state.running)
        held = await open_position(pilot, rebuy)
        await pilot.press("f")
        await until(pilot, lambda: isinstance(app.screen, FlattenScreen), "flatten dialog")
        screen = app.screen
        assert isinstance(screen, FlattenScreen)
        assert screen.requests[0].estimated_price == 10.0  # the close it opened at
        await bars_processed(pilot, rebuy, 1)  # 9.95 closes while the dialog is open
        await until(pilot, lambda: screen.requests[0].estimated_price == 9.95, "price followed")
        await pilot.pause()
        body = shown(screen.query_one("#body"))
        assert "9.95" in body and money(held * 9.95) in body
        await pilot.press("y")
        await until(pilot, lambda: rebuy.engine.state.in_flight == 1, "flatten order in flight")
    assert rebuy.operator_actions() == ["flatten_and_pause"]


async def test_orders_say_why_and_closed_trades_show_realized_pnl(rebuy: Session) -> None:
    app = make_app(rebuy)
    async with app.run_test(size=WIDE) as pilot:
        await until(pilot, lambda: rebuy.engine.state.running)
        await flatten_with(pilot, rebuy, "y")
        await pilot.pause()
        log = shown(app.query_one("#order-log"))
        assert "RSI 60.0 < 65, close > SMA" in log  # the entry: -1.0 then +1.5 over RSI(2)
        assert "flatten + pause by tester@local" in log
        exit_row, entry_row = list(rebuy.engine.state.orders)[:2]
        assert (entry_row.fill_price, exit_row.fill_price) == (10.5, 10.0)
        realized = (10.0 - 10.5) * entry_row.qty
        assert exit_row.realized_pnl is not None
        assert abs(exit_row.realized_pnl - realized) < 1e-9
        assert money(realized, sign=True) in log
        positions = shown(app.query_one("#positions"))
        assert f"flat — last trade {money(realized, sign=True)}" in positions
        assert qty(entry_row.qty) in log  # the one quantity format


async def test_exit_conditions_show_only_while_holding(rebuy: Session) -> None:
    app = make_app(rebuy)
    async with app.run_test(size=WIDE) as pilot:
        await until(pilot, lambda: rebuy.engine.state.running)
        await drawn(pilot, rebuy)
        flat = shown(app.query_one("#indicators"))
        assert "not holding" in flat and "RSI > 90" not in flat
        await open_position(pilot, rebuy)
        holding = shown(app.query_one("#indicators"))
        assert "RSI > 90" in holding and "not holding" not in holding


def test_quantities_have_one_precision() -> None:
    assert qty(3.0) == "3"
    assert qty(0.25) == "0.2500"
    assert qty(4761.904761904) == "4,761.9048"
    assert qty(0.00001) == "<0.0001"
    assert qty(-0.00001) == "-<0.0001"
    assert qty(None) == "—"
