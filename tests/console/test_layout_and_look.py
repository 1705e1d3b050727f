"""Small terminals, NO_COLOR, themes, remapped keys, help, and a crash's exit status."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.style import Style
from rich.text import Text

from tapewatch.console.panes.chart import CandleChart
from tapewatch.console.screens.help import HelpScreen
from tapewatch.engine.model.types import Bar
from tests.console.conftest import (
    BUY,
    SLIDE,
    Session,
    arrays,
    drawn,
    make_app,
    make_session,
    shown,
    until,
)


async def test_80x24_turns_the_panes_into_pages(session: Session) -> None:
    app = make_app(session)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: session.engine.state.running)
        await drawn(pilot, session)
        assert app.query_one("#page-tabs").display
        visible = {w.id for w in app.query(".pane") if w.display}
        assert visible == {"bars", "indicators"}
        for name in visible:
            size = app.query_one(f"#{name}").size
            assert size.width >= 20 and size.height >= 10, (name, size)
        assert "RSI(2)" in shown(app.query_one("#indicators"))
        await pilot.press("3")
        await pilot.pause()
        assert {w.id for w in app.query(".pane") if w.display} == {"orders"}
        await pilot.press("2")
        await drawn(pilot, session)
        assert {w.id for w in app.query(".pane") if w.display} == {"positions", "breakers"}
        assert "drawdown" in shown(app.query_one("#breakers"))
        assert "cash" in shown(app.query_one("#positions"))
        await pilot.resize_terminal(120, 36)
        await pilot.pause()
        assert not app.query_one("#page-tabs").display
        assert len([w for w in app.query(".pane") if w.display]) == 6


async def test_120x36_shows_all_six_panes(session: Session) -> None:
    app = make_app(session)
    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: session.engine.state.running)
        await drawn(pilot, session)
        panes = [w for w in app.query(".pane") if w.display]
        assert len(panes) == 6
        assert all(p.size.height >= 6 and p.size.width >= 30 for p in panes)
        await pilot.press("1")  # page keys are inert on a big screen
        await pilot.pause()
        assert len([w for w in app.query(".pane") if w.display]) == 6


def _coloured(text: Text) -> bool:
    return any(isinstance(s.style, Style) and s.style.color is not None for s in text.spans)


async def test_no_color_draws_the_chart_with_shapes(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app(session)
    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: session.engine.state.running)
        assert app.no_color
        chart = app.query_one(CandleChart)

        def ticks_drawn() -> bool:
            plain = chart.render().plain
            return "├" in plain or "┤" in plain  # OHLC ticks: direction by shape

        await until(pilot, ticks_drawn, "the chart to draw OHLC ticks")
        assert not _coloured(chart.render())


async def test_colour_chart_uses_the_theme(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    app = make_app(session)
    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: session.engine.state.running)
        chart = app.query_one(CandleChart)
        await until(pilot, lambda: _coloured(chart.render()), "a coloured chart")


async def test_t_cycles_the_themes_and_theme_is_honoured(session: Session) -> None:
    app = make_app(session, theme="light")
    async with app.run_test(size=(120, 36)) as pilot:
        assert app.theme == "light"
        await pilot.press("t")
        await pilot.pause()
        assert app.theme != "light"
        seen = {app.theme}
        for _ in range(3):
            await pilot.press("t")
            await pilot.pause()
            seen.add(app.theme)
        assert {"dark", "light", "high-contrast"} <= seen


async def test_remapped_keys_act_and_the_help_screen_shows_them(session: Session) -> None:
    app = make_app(session, keymap={"pause": "x"})
    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: session.engine.state.running)
        await pilot.press("p")
        await pilot.pause()
        assert not session.engine.state.paused
        await pilot.press("x")
        await pilot.pause()
        assert session.engine.state.paused
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        body = shown(app.screen.query_one("#body"))
        assert "x" in body.split("Pause or resume")[0].splitlines()[-1]
        await pilot.press("escape")
        await pilot.pause()
        assert len(app.screen_stack) == 1


def _exploding(bars: list[Bar]) -> Iterator[object]:
    yield arrays(bars[:3])
    raise RuntimeError("feed exploded")


async def test_a_crash_exits_non_zero_with_one_line(tmp_path: Path) -> None:
    session = make_session(tmp_path, [BUY, *SLIDE], feed_bars=_exploding)  # type: ignore[arg-type]
    app = make_app(session)
    with pytest.raises(Exception, match="feed exploded"):  # Textual re-raises it after exit
        async with app.run_test(size=(120, 36)) as pilot:
            await until(pilot, lambda: session.engine.state.running)
            session.gate.release(5)
            await until(pilot, lambda: not app.is_running, "app exit")
    assert app.return_code == 1
    assert app.error_message is not None
    assert app.error_message.startswith("tapewatch: internal error: RuntimeError: feed exploded")
    session.journal.close()
