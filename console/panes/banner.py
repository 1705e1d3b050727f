"""The full-width banner: HALTED, the broker unreachable, no market data; or a start-up note.

A row under the header that exists only while there is something to say. An outage shows at
the first redraw after the snapshot says so (the handle re-reads connection health every
second; the console looks at least once a second) and clears itself when it is over; its words
are the header's (``panes.connections``). The start-up note (no credentials, where the log is)
is one muted line that goes after ``NOTE_SECONDS`` (the activity pane keeps it); an outage
takes its place while it lasts. With nothing to say the banner takes no room at all.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from tapewatch.console.panes.base import View
from tapewatch.console.panes.connections import outages

NOTE_SECONDS = 30.0


class Banner(Static):
    DEFAULT_CSS = """
    Banner { height: 1; width: 1fr; display: none; padding: 0 1; }
    Banner.-alarm { background: $error; color: $text; text-style: bold; }
    Banner.-note { background: $panel; color: $text-muted; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.shown: tuple[str, ...] = ()  # the outages it says now ("halted", "broker", "data")
        self.note: str | None = None
        self._alarm: str | None = None
        self.link: str | None = None  # an attached console's lost socket, while it reconnects

    def show_link(self, text: str | None) -> None:
        """The attached console lost (``text``) or got back (None) its engine's socket."""
        self.link = text
        self._show()

    def show_note(self, note: str) -> None:
        self.note = note
        self._show()

    def clear_note(self) -> None:
        self.note = None
        self._show()

    def redraw(self, view: View) -> None:
        found = outages(view.state, view.now)
        self.shown = tuple(o.what for o in found)
        self._alarm = "  ·  ".join(o.message for o in found) or None
        self._show()

    def _show(self) -> None:
        alarm = self.link or self._alarm
        text = alarm or self.note
        self.set_class(alarm is not None, "-alarm")
        self.set_class(alarm is None and text is not None, "-note")
        self.display = text is not None
        if text is not None:
            self.update(Text(text, no_wrap=True, overflow="ellipsis"))

    @property
    def text(self) -> str:
        """What it says now ('' when hidden)."""
        return (self.link or self._alarm or self.note or "") if self.display else ""
