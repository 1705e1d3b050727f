"""The chart marks fills and the average entry; the demo's latency pane labels simulated waits."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from tapewatch.console.panes.bars import CHART_INTERVAL, average_entry, fill_marks
from tapewatch.console.panes.chart import BUY_MARK, SELL_MARK, CandleChart, Mark, place_marks
from tapewatch.console.panes.latency import SIM_TITLE
from tapewatch.engine.api.snapshot import OrderLine
from tapewatch.engine.model.types import Mode
from tests.console.conftest import BUY as BUY_CLOSE
from tests.console.conftest import (
    SLIDE,
    drawn,
    make_app,
    make_session,
    open_position,
    shown,
    until,
)
from tests.helpers import T0, bars_from_closes

BARS = bars_from_closes([10.0, 10.5, 10.2, 10.4])  # opens at T0, +5, +10, +15 minutes
STEP = timedelta(minutes=5)


def test_a_mark_lands_in_the_bar_whose_span_holds_its_time() -> None:
    at_open = Mark(T0 + STEP, "buy", 10.5)  # a simulated fill: the open it was priced at
    inside = Mark(T0 + 2 * STEP + timedelta(seconds=3), "sell", 10.2)  # a broker's, seconds in
    assert place_marks(BARS, [at_open, inside]) == [(1, at_open), (2, inside)]


def test_marks_outside_the_bars_are_left_out() -> None:
    before = Mark(T0 - timedelta(seconds=1), "buy", 10.0)
    unclosed = Mark(T0 + 4 * STEP, "sell", 10.4)  # the bar it falls in has not closed yet
    last = Mark(T0 + 3 * STEP + timedelta(minutes=4), "sell", 10.4)  # inside the newest bar
    assert place_marks(BARS, [before, unclosed, last]) == [(3, last)]
    assert place_marks([], [last]) == []


async def test_the_chart_marks_the_buy_and_draws_the_average_entry(tmp_path: Path) -> None:
    session = make_session(tmp_path, [BUY_CLOSE, *SLIDE])
    app = make_app(session, measured=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await drawn(pilot, session)
        chart = app.query_one(CandleChart)
        assert BUY_MARK not in shown(chart)
        await open_position(pilot, session)
        await until(pilot, lambda: BUY_MARK in shown(chart), "the buy marker")
        snap = app._snapshot
        assert snap is not None
        marks = fill_marks(snap)
        position = snap.position("SPY")
        assert position is not None
        assert [(m.side, m.price) for m in marks] == [("buy", snap.orders[0].fill_price)]
        assert average_entry(snap) == position.avg_entry_price
        assert "┈" in shown(chart)  # the dotted entry line
        assert SELL_MARK not in shown(chart)


async def test_a_closed_trade_marks_the_sell_and_drops_the_entry_line(tmp_path: Path) -> None:
    session = make_session(tmp_path, [BUY_CLOSE, *SLIDE])
    app = make_app(session, measured=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_position(pilot, session)
        snap = app._snapshot
        assert snap is not None
        buy = snap.orders[0]
        sell_at = buy.time + timedelta(minutes=1)  # inside the newest closed bar
        sell = OrderLine(sell_at, "cid-sell", "sell", buy.qty, "SPY", "filled", buy.fill_price)
        flat = replace(
            snap,
            orders=(sell, *snap.orders),
            positions=tuple(replace(p, qty=0.0) for p in snap.positions),
        )
        assert [m.side for m in fill_marks(flat)] == ["buy", "sell"]  # oldest first
        assert average_entry(flat) is None
        await pilot.pause(CHART_INTERVAL + 0.05)  # past the chart's rebuild throttle
        app._snapshot = flat  # what the app's own frames draw again, too
        app._bars.redraw(app._view(flat))
        chart = app.query_one(CandleChart)
        await until(pilot, lambda: SELL_MARK in shown(chart), "the sell marker")
        assert "┈" not in shown(chart)


async def test_demo_latency_labels_the_fill_wait_simulated(tmp_path: Path) -> None:
    session = make_session(tmp_path, [BUY_CLOSE, *SLIDE])
    app = make_app(session, measured=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await drawn(pilot, session)
        text = shown(app._latency)
        assert "ack→fill sim" in text
        assert SIM_TITLE in text
        assert "submit→ack sim" not in text  # measured for real in the demo too


async def test_paper_latency_has_no_simulated_label(tmp_path: Path) -> None:
    session = make_session(tmp_path, [BUY_CLOSE, *SLIDE], mode=Mode.PAPER)
    app = make_app(session, measured=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await drawn(pilot, session)
        text = shown(app._latency)
        assert "ack→fill" in text
        assert "sim" not in text
