"""What every pane shares: the view it is drawn from, the theme's colours, the base widget.

Panes never subscribe to events and never touch the engine: they draw an immutable
``engine.api`` snapshot. The app asks its handle for a newer one each tick (about 10 Hz) and
calls ``redraw`` only when the picture changed, so a burst of events is one repaint.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rich.style import Style
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
    """A bordered box with a title that redraws from a ``View``."""

    DEFAULT_CSS = """
    Pane { height: 1fr; width: 1fr; }
    """

    TITLE = ""

    def __init__(self, *, id: str | None = None, classes: str = "pane") -> None:
        super().__init__("starting…", id=id, classes=classes)
        self.border_title = self.TITLE

    def redraw(self, view: View) -> None:
        """Draw from the latest state (called at most ~10 times a second)."""
        raise NotImplementedError
