"""Small and plain terminals (issue 11 item 6): 80x24, 100x30 and 160x48; 16 colours; ASCII.

The scene is the seeded showcase demo (1005 bars primed, a position open), so the sparklines
and the chart have more history than any pane is wide.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.color import ColorType
from textual import events
from textual.color import Color
from textual.geometry import Region
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Static
from textual.widgets._footer import FooterKey

from scripts.showcase import settle, showcase_session
from tapewatch.console.app import TapewatchApp
from tapewatch.console.footer import KeyFooter
from tapewatch.console.glyphs import RAMP, to_ascii
from tapewatch.console.panes.base import Palette, ansi_colour
from tapewatch.console.panes.chart import CandleChart
from tapewatch.console.panes.spark import BLOCKS
from tapewatch.console.screens.help import HelpScreen
from tapewatch.console.terminal import Terminal
from tapewatch.engine.root.demo import DemoSession
from tests.console.conftest import shown

SMALL, MEDIUM, LARGE = (80, 24), (100, 30), (160, 48)
FACTS = "\n".join(
    [
        "Python 3.11.7 (GIL enabled)",
        "keyring: none (keys from the environment)",
        "data dir: /srv/tapewatch/data",
        "endpoints: trading https://paper-api.alpaca.markets · data wss://stream.data",
        "next session: Tue 09:30 ET",
    ]
)


@pytest.fixture(autouse=True)
def plain_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("NO_COLOR", "TEXTUAL_THEME"):
        monkeypatch.delenv(name, raising=False)
    yield


@pytest.fixture
def scene() -> DemoSession:
    """Primed outside the test's event loop (priming runs one of its own)."""
    return showcase_session()


def showcase(
    session: DemoSession, terminal: Terminal | None = None, theme: str | None = None
) -> tuple[TapewatchApp, DemoSession]:
    """The snapshot tests' app (as ``create_app`` builds it), for the given terminal."""
    app = TapewatchApp(
        session=session,
        theme=theme,
        drive=False,
        measured=False,
        config_path=Path("~/.config/tapewatch/config.toml"),
        terminal=terminal,
    )
    return app, session


def footer_keys(app: TapewatchApp) -> list[FooterKey]:
    return [k for k in app.query_one(KeyFooter).query_children(FooterKey) if k.display]


async def fitted(pilot: Pilot[Any]) -> None:
    """Let the footer measure, tighten and drop (it takes a refresh or two)."""
    for _ in range(3):
        await pilot.pause()


# ---------------------------------------------------------------- the footer keeps q Quit
@pytest.mark.parametrize("size", [SMALL, MEDIUM, LARGE])
async def test_the_footer_always_shows_q_quit_and_nothing_past_the_edge(
    scene: DemoSession, size: tuple[int, int]
) -> None:
    app, session = showcase(scene)
    async with app.run_test(size=size) as pilot:
        await settle(pilot, session)
        await fitted(pilot)
        keys = footer_keys(app)
        labels = [shown(k).strip() for k in keys]
        assert "q Quit" in labels, labels
        for key in keys:  # every key shown lies wholly on screen
            assert key.region.right <= size[0], (key.description, key.region)
        assert sum(k.outer_size.width for k in keys) <= size[0]
        if size == LARGE:  # room for everything: nothing dropped
            assert {"cycle_theme", "flatten", "pause_resume"} <= set(
                app.query_one(KeyFooter).shown_actions
            )


async def test_at_80_columns_the_demo_speed_and_theme_keys_go_first(scene: DemoSession) -> None:
    app, session = showcase(scene)
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot, session)
        await fitted(pilot)
        shown_actions = app.query_one(KeyFooter).shown_actions
        assert "cycle_theme" not in shown_actions
        assert {"quit", "flatten", "pause_resume", "reset_breaker"} <= set(shown_actions)
        await pilot.resize_terminal(*LARGE)  # wider again: the keys come back
        await fitted(pilot)
        assert "cycle_theme" in app.query_one(KeyFooter).shown_actions


# ---------------------------------------------------------------- help scrolls
async def test_help_scrolls_to_the_data_directory_and_endpoints_at_80x24(
    scene: DemoSession,
) -> None:
    app, session = showcase(scene)
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot, session)
        app.push_screen(HelpScreen({}, "~/.config/tapewatch/config.toml", lambda: FACTS))
        await pilot.pause(0.2)
        screen = app.screen
        dialog = screen.query_one("#dialog", Widget)
        facts = screen.query_one("#facts", Static)
        await until_text(pilot, facts, "data dir")
        assert dialog.max_scroll_y > 0, "the help fits: nothing to prove at this size"
        assert not _visible_in(facts, dialog)
        await pilot.press("end")
        await pilot.pause()
        assert dialog.scroll_y == dialog.max_scroll_y
        assert _visible_in(facts, dialog)
        await pilot.press("home")
        await pilot.pause()
        assert dialog.scroll_y == 0
        await pilot.press("pagedown")
        await pilot.pause()
        assert dialog.scroll_y > 0
        await pilot.press("pageup")
        await pilot.pause()
        assert dialog.scroll_y == 0
        await pilot.press("down", "down")
        await pilot.pause()
        assert dialog.scroll_y == 2
        await pilot.press("up")
        await pilot.pause()
        assert dialog.scroll_y == 1
        dialog.post_message(events.MouseScrollDown(dialog, 2, 2, 0, 1, 0, False, False, False))
        await pilot.pause()
        assert dialog.scroll_y > 1  # the wheel scrolls too


async def until_text(pilot: Pilot[Any], widget: Static, text: str) -> None:
    for _ in range(200):
        if text in str(widget.render()):
            return
        await pilot.pause(0.01)
    raise AssertionError(f"{text!r} never appeared")


def _visible_in(widget: Widget, container: Widget) -> bool:
    """True when some of ``widget`` lies inside the container's visible (scrolled) window."""
    top = widget.virtual_region.y - container.scroll_offset.y
    return top + widget.outer_size.height > 0 and top < container.content_size.height


# ---------------------------------------------------------------- every pane shows all its lines
def _clipped(pane: Widget, app: TapewatchApp) -> int:
    """How many of the pane's content lines do not fit its box (0: nothing lost)."""
    size = pane.content_size
    needed = pane.get_content_height(size, app.size, size.width)
    return max(0, needed - size.height)


@pytest.mark.parametrize("size", [MEDIUM, (108, 32), LARGE])
async def test_every_pane_shows_all_its_lines(scene: DemoSession, size: tuple[int, int]) -> None:
    app, session = showcase(scene)
    async with app.run_test(size=size) as pilot:
        await settle(pilot, session)
        # The orders pane is a scrolling log: it may hold more than it shows.
        for name in ("indicators", "positions", "latency", "breakers"):
            pane = app.query_one(f"#{name}")
            assert pane.display
            assert _clipped(pane, app) == 0, (name, pane.content_size)
        indicators = shown(app.query_one("#indicators"))
        assert "Exit" in indicators and "flat (no position)" in indicators
        chart = app.query_one(CandleChart)
        assert chart.size.height >= 8 and "too small" not in shown(chart)
        head = shown(app.query_one("#latency")).splitlines()[1].strip("│ ").split()
        assert head[-1] in ("max", "hist"), head  # the histogram fits or goes, never squeezed
        assert (head[-1] == "hist") == (size[0] > 108)


async def test_at_80x24_every_page_shows_all_its_panes_lines(scene: DemoSession) -> None:
    app, session = showcase(scene)
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot, session)
        pages = {"1": {"bars", "indicators"}, "2": {"positions", "breakers"}, "4": {"latency"}}
        for key, panes in pages.items():
            await pilot.press(key)
            await pilot.pause()
            await pilot.pause()
            assert {w.id for w in app.query(".pane") if w.display} == panes
            for name in panes - {"bars"}:
                pane = app.query_one(f"#{name}")
                assert _clipped(pane, app) == 0, (key, name, pane.content_size)


@pytest.mark.parametrize("size", [SMALL, MEDIUM, (120, 36), LARGE])
async def test_each_breaker_is_one_line_with_no_wrap(
    scene: DemoSession, size: tuple[int, int]
) -> None:
    app, session = showcase(scene)
    async with app.run_test(size=size) as pilot:
        await settle(pilot, session)
        if size == SMALL:
            await pilot.press("2")  # the breakers' page
            await pilot.pause()
            await pilot.pause()
        breakers = app.query_one("#breakers")
        rows = [line.strip("│ ") for line in shown(breakers).splitlines()[1:-1]]
        rows = [r for r in rows if r]
        names = [r.split()[0] for r in rows]
        assert names == ["drawdown", "pause", "stale", "rate-lim"], rows
        assert "ACTIVE" in shown(breakers).splitlines()[0]  # the state heads the pane


# ---------------------------------------------------------------- redraw on resize
def _spark_width(app: TapewatchApp) -> int:
    line = shown(app.query_one("#indicators")).splitlines()[2]  # border, RSI head, sparkline
    return sum(1 for ch in line if ch in BLOCKS)


def _frame_width(chart: CandleChart) -> int:
    top = next(line for line in shown(chart).splitlines() if "┌" in line)
    return top.index("┐") - top.index("┌") + 1


async def test_sparklines_and_the_chart_follow_a_resize_at_once(scene: DemoSession) -> None:
    app, session = showcase(scene)
    async with app.run_test(size=MEDIUM) as pilot:
        await settle(pilot, session)
        indicators = app.query_one("#indicators")
        chart = app.query_one(CandleChart)
        narrow = indicators.content_size.width
        assert _spark_width(app) == narrow
        narrow_frame = _frame_width(chart)
        await pilot.resize_terminal(*LARGE)
        await pilot.pause()
        await pilot.pause()
        wide = indicators.content_size.width
        assert wide > narrow
        assert _spark_width(app) == wide  # no new bar came: the resize alone redrew it
        assert _frame_width(chart) > narrow_frame
        assert _frame_width(chart) >= chart.size.width - 10  # not capped at 80 columns
        await pilot.resize_terminal(*MEDIUM)
        await pilot.pause()
        await pilot.pause()
        assert _spark_width(app) == narrow


# ---------------------------------------------------------------- 16 colours
def _segment_colour(widget: Widget, text: str) -> Any:
    region = Region(0, 0, widget.outer_size.width, widget.outer_size.height)
    for strip in widget.render_lines(region):
        for segment in strip:
            if text in segment.text and segment.style is not None:
                return segment.style.color
    raise AssertionError(f"{text!r} not drawn")


@pytest.mark.parametrize("theme", ["dark", "light"])
async def test_16_colours_keep_active_and_open_green(scene: DemoSession, theme: str) -> None:
    app, session = showcase(scene, Terminal.detect({"TERM": "xterm"}), theme)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot, session)
        assert app.ansi_color
        palette = Palette.of(app)
        assert palette.good.color is not None
        assert (palette.good.color.type, palette.good.color.number) == (ColorType.STANDARD, 2)
        header = app.query_one("#header")
        for word in ("ACTIVE", "OPEN"):  # what reaches the terminal: ANSI green, as is
            colour = _segment_colour(header, word)
            assert colour is not None and colour.number == 2, (word, colour)


async def test_truecolor_terminals_keep_the_theme_colours(scene: DemoSession) -> None:
    app, session = showcase(
        scene, Terminal.detect({"TERM": "xterm-256color", "COLORTERM": "truecolor"})
    )
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot, session)
        assert not app.ansi_color
        assert Palette.of(app).good.color is not None
        assert Palette.of(app).good.color.type is ColorType.TRUECOLOR


# ---------------------------------------------------------------- ASCII terminals
def _braille_or_block(text: str) -> set[str]:
    return {ch for ch in text if 0x2580 <= ord(ch) <= 0x259F or 0x2800 <= ord(ch) <= 0x28FF}


def _non_ascii(text: str) -> set[str]:
    return {ch for ch in text if not ch.isascii()}


@pytest.mark.parametrize("term", ["linux", "vt100"])
async def test_ascii_terminals_get_no_braille_or_block_glyphs(
    scene: DemoSession, term: str
) -> None:
    app, session = showcase(scene, Terminal.detect({"TERM": term}))
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot, session)
        await fitted(pilot)
        drawn = "\n".join(shown(w) for w in app.screen.walk_children(Widget) if w.display)
        assert "ACTIVE" in drawn and "Indicators" in drawn
        assert _non_ascii(drawn) == set()
        assert "> ACTIVE" in shown(app.query_one("#header"))
        sparkline = shown(app.query_one("#indicators")).splitlines()[2]
        assert set(sparkline.strip("|+ ")) <= set(RAMP)
        assert len(sparkline.strip("|+ ")) > 20  # the sparkline is still drawn, in ASCII
        await pilot.press("question_mark")  # dialogs too
        await pilot.pause(0.2)
        dialog = "\n".join(shown(w) for w in app.screen.walk_children(Widget) if w.display)
        assert "Keys" in dialog and _non_ascii(dialog) == set()


async def test_a_unicode_terminal_keeps_its_glyphs(scene: DemoSession) -> None:
    app, session = showcase(scene, Terminal.detect({"TERM": "xterm-256color"}))
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot, session)
        drawn = shown(app.query_one("#indicators")) + shown(app.query_one(CandleChart))
        assert _braille_or_block(drawn)


# ---------------------------------------------------------------- deciding from the environment
@pytest.mark.parametrize(
    ("env", "ascii", "colours"),
    [
        ({"TERM": "xterm"}, False, 16),
        ({"TERM": "xterm-256color"}, False, 256),
        ({"TERM": "xterm-256color", "COLORTERM": "truecolor"}, False, 16_777_216),
        ({"TERM": "tmux-256color", "COLORTERM": "24bit"}, False, 16_777_216),
        ({"TERM": "xterm-direct"}, False, 16_777_216),
        ({"TERM": "linux"}, True, 16),
        ({"TERM": "vt100"}, True, 16),
        ({"TERM": "vt220"}, True, 16),
        ({"TERM": "dumb"}, True, 16),
        ({"TERM": "vte-256color"}, False, 256),
        ({"TERM": "screen"}, False, 16),
        ({}, False, 16_777_216),
    ],
)
def test_the_terminal_is_read_from_the_environment(
    env: dict[str, str], ascii: bool, colours: int
) -> None:
    assert Terminal.detect(env) == Terminal(ascii=ascii, colours=colours)


def test_headless_runs_draw_everything_unless_told() -> None:
    linux = {"TERM": "linux"}
    assert Terminal.for_app(None, True, linux) == Terminal()  # tests, screenshots
    assert Terminal.for_app(None, False, linux) == Terminal(ascii=True, colours=16)
    given = Terminal(colours=256)
    assert Terminal.for_app(given, False, linux) is given


def test_ascii_translation_keeps_every_column() -> None:
    text = "╭─ Bars ─╮ ▕███░░▏ ▁▂▃▄▅▆▇█ ▶ ACTIVE ■ ‖ ▲▼ ✓✗ → · … — ⠉⠒⣀⡇"
    ascii_text = to_ascii(text)
    assert len(ascii_text) == len(text) and ascii_text.isascii()
    assert ascii_text.startswith("+- Bars -+ |###..| .,:-=+*# > ACTIVE # | ^v +x > . . -")
    assert ascii_text.endswith("'-.|")  # braille: dots at the top, middle, bottom, a column
    assert to_ascii("plain") == "plain"


@pytest.mark.parametrize(
    ("hex_colour", "ansi"),
    [
        ("#3fb950", 2),  # dark: success, chart-up -> green
        ("#1b7f3b", 2),  # light: success -> green
        ("#f85149", 1),  # dark: error -> red
        ("#e3b341", 3),  # dark: warning -> yellow
        ("#56b4e9", 4),  # high contrast: up is sky blue -> blue, never green
        ("#d55e00", 1),  # high contrast: down is vermillion -> red
        ("#e69f00", 3),  # high contrast: warning orange -> yellow
        ("#d8dee6", None),  # a near-grey foreground keeps the terminal's own
    ],
)
def test_16_colour_roles_keep_their_hue(hex_colour: str, ansi: int | None) -> None:
    colour = ansi_colour(Color.parse(hex_colour))
    assert (colour.number if colour is not None else None) == ansi


async def test_the_live_frame_costs_no_pane_a_line_at_100x30(scene: DemoSession) -> None:
    """LIVE draws a red frame (title on top, both sides, no bottom edge): at 100x30 every pane
    still shows all its lines."""
    app, session = showcase(scene)
    async with app.run_test(size=MEDIUM) as pilot:
        await settle(pilot, session)
        app.query_one("#frame").set_class(True, "-live")  # as a switch to LIVE does
        await pilot.pause()
        await pilot.pause()
        for name in ("indicators", "positions", "latency", "breakers"):
            pane = app.query_one(f"#{name}")
            assert _clipped(pane, app) == 0, (name, pane.content_size)
