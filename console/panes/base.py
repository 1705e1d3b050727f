"""What every pane shares: the view it is drawn from, the theme's colours, the base widget.

Panes never subscribe to events and never touch the engine: they draw an immutable
``engine.api`` snapshot. The app draws in frames (``console.pacing``): a newer snapshot version,
at most ~10 a second, so a burst of events is one repaint; a pane with ``EVERY`` set is drawn at
most that often. A pane's box is sized by the layout, never by its content, so ``update``
skips Textual's layout pass (a reflow of the whole screen) unless the pane's height is auto. A pane
keeps the view it drew last and draws it again when its size changes: sparklines and gauges are
built for a width, and must follow a resize at once rather than at the next bar.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from rich.color import Color as RichColor
from rich.style import Style
from textual import events
from textual.app import App
from textual.color import Color, ColorParseError
from textual.widgets import Static

from tapewatch.engine.api.snapshot import Snapshot


@dataclass(frozen=True, slots=True)
class Palette:
    """The current theme's colours as Rich styles (panes build Rich text, not CSS)."""

    up: Style
    down: Style
    sma: Style
    good: Style
    bad: Style
    warn: Style
    muted: Style
    accent: Style
    strong: Style

    @classmethod
    def of(cls, app: App[Any]) -> Palette:
        if app.native_ansi_color:
            return cls.ansi(app.theme_variables)
        variables = app.theme_variables
        background = _parse(variables.get("background"), Color(0, 0, 0))

        def style(*names: str, bold: bool = False) -> Style:
            for name in names:
                colour = _parse(variables.get(name), None)
                if colour is not None:
                    solid = background + colour if colour.a < 1 else colour
                    return Style(color=solid.rich_color, bold=bold)
            return Style(bold=bold)

        return cls(
            up=style("chart-up", "text-success"),
            down=style("chart-down", "text-error"),
            sma=style("chart-sma", "text-accent"),
            good=style("text-success", "success"),
            bad=style("text-error", "error", bold=True),
            warn=style("text-warning", "warning"),
            muted=style("foreground-muted", "foreground"),
            accent=style("text-accent", "accent"),
            strong=style("foreground", bold=True),
        )

    @classmethod
    def ansi(cls, variables: dict[str, str]) -> Palette:
        """The terminal's own 16 colours, each role given the ANSI colour nearest its hue.

        Rounding the theme's RGB to 16 colours turns its pale text tints grey or white (the
        state words lost their green under ``TERM=xterm``); hue keeps green green, and the
        high-contrast theme's blue "up" blue. Neutral roles keep the terminal's foreground.
        """

        def style(name: str, *, bold: bool = False) -> Style:
            colour = _parse(variables.get(name), None)
            return Style(color=ansi_colour(colour) if colour else None, bold=bold)

        return cls(
            up=style("chart-up"),
            down=style("chart-down"),
            sma=style("chart-sma"),
            good=style("success"),
            bad=style("error", bold=True),
            warn=style("warning"),
            muted=Style(),
            accent=style("accent"),
            strong=Style(bold=True),
        )


_ANSI_HUES = ((30, 1), (70, 3), (165, 2), (200, 6), (260, 4), (335, 5), (361, 1))
"""(hue below, ANSI colour): red, yellow, green, cyan, blue, magenta, red again."""


def ansi_colour(colour: Color) -> RichColor | None:
    """The standard ANSI colour (1-6) of ``colour``'s hue; None for greys (no hue to keep)."""
    r, g, b = colour.rgb
    if max(r, g, b) - min(r, g, b) < 40:  # too little chroma to name a hue
        return None
    degrees = colour.hsl.h * 360
    return RichColor.from_ansi(next(n for top, n in _ANSI_HUES if degrees < top))


@dataclass(frozen=True, slots=True)
class View:
    """One snapshot of the engine and the look to draw it in, for one repaint."""

    state: Snapshot
    palette: Palette
    measured: bool = True  # False hides wall-clock-dependent timings (snapshot tests)
    mono: bool = False  # NO_COLOR: shapes instead of colours where colour carried meaning

    @property
    def now(self) -> datetime:
        """The engine clock's time when the snapshot was taken (simulated in the demo)."""
        return self.state.now


def _parse(value: str | None, default: Color | None) -> Color | None:
    if not value:
        return default
    try:
        return Color.parse(value)
    except ColorParseError:
        return default


class Pane(Static):
    """A bordered box with a title that redraws from a ``View`` (again on a resize)."""

    DEFAULT_CSS = """
    Pane { height: 1fr; width: 1fr; }
    """

    TITLE = ""
    EVERY: ClassVar[float] = 0.0  # seconds between redraws at most (0: every frame)

    def __init__(self, *, id: str | None = None, classes: str = "pane") -> None:
        super().__init__("starting…", id=id, classes=classes)
        self.border_title = self.TITLE
        self.last_view: View | None = None  # what the pane drew last, for a resize

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Each pane's ``redraw`` records its view, so ``on_resize`` can draw it again."""
        super().__init_subclass__(**kwargs)
        draw = cls.__dict__.get("redraw")
        if draw is not None:
            cls.redraw = _remembering(draw)  # type: ignore[method-assign,assignment]

    def redraw(self, view: View) -> None:
        """Draw from the latest state (called at most ~10 times a second)."""
        raise NotImplementedError

    def update(self, content: Any = "", *, layout: bool | None = None) -> None:
        """New content; a layout pass only when the content can change the pane's size."""
        if layout is None:
            height = self.styles.height
            layout = height is None or height.is_auto
        super().update(content, layout=layout)

    def on_resize(self, event: events.Resize) -> None:
        if self.last_view is not None:
            self.redraw(self.last_view)


def _remembering(draw: Callable[[Pane, View], None]) -> Callable[[Pane, View], None]:
    @functools.wraps(draw)
    def redraw(pane: Pane, view: View) -> None:
        pane.last_view = view
        draw(pane, view)

    return redraw
