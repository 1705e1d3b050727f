"""The activity pane: a scrollable, filterable log of what happened, newest first.

The app feeds it entries (``console.activity``) from the handle's events and its own notices;
the pane keeps the newest ``KEEP``, and at each redraw adds what the snapshot newly says (a
connection changing state; a closing fill's realized P&L once its order line has it). ``v``
while it has focus cycles the filter (all, trades, risk, system); the title names the one
shown. Its text is rebuilt only when an entry, the filter or the look changed.
"""

from __future__ import annotations

from collections import deque
from datetime import date
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Static

from tapewatch.console.activity import (
    FILTERS,
    Entry,
    entries_for,
    link_changes,
    realized,
    seeded,
)
from tapewatch.console.format import ET, et
from tapewatch.console.panes.base import Palette, View
from tapewatch.engine.api.snapshot import Snapshot
from tapewatch.engine.api.types import Event

KEEP = 500  # entries kept; older ones are in the journal and the log file
FLUSH = 0.1  # seconds from a new entry to its repaint
SETTLED = frozenset({"filled", "cancelled", "rejected", "expired"})
AWAIT_PNL = 20  # the newest fills whose order lines are still looked up for their P&L


class ActivityPane(VerticalScroll):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("v", "cycle_filter", "Filter", show=False),
    ]
    DEFAULT_CSS = """
    ActivityPane { height: 1fr; width: 1fr; scrollbar-size-vertical: 1; }
    ActivityPane > #activity-log { width: 1fr; height: auto; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="pane")
        self.entries: deque[Entry] = deque(maxlen=KEEP)
        self.filter = 0  # index into FILTERS
        self._pnl: dict[str, float] = {}  # client order id -> realized P&L, once known
        self._awaiting: dict[str, None] = {}  # fills' order ids whose P&L may still come
        self._previous: Snapshot | None = None  # for connection changes
        self._dirty = True
        self._flush_due = False
        self._palette: Palette | None = None
        self._today: date | None = None  # the engine's day: older entries show their date
        self._title()

    def compose(self) -> ComposeResult:
        yield Static("nothing yet", id="activity-log")

    # ------------------------------------------------------------------ input
    def add(self, entry: Entry) -> None:
        """Log ``entry``; shown within ``FLUSH`` seconds (a burst is one repaint)."""
        self.entries.append(entry)
        self._dirty = True
        if entry.client_order_id:
            self._awaiting[entry.client_order_id] = None
            while len(self._awaiting) > AWAIT_PNL:
                del self._awaiting[next(iter(self._awaiting))]
        if not self._flush_due and self.is_mounted:
            self._flush_due = True
            self.set_timer(FLUSH, self._flush)

    def _flush(self) -> None:
        self._flush_due = False
        if self._dirty and self._palette is not None and self.display:
            self._render_log(self._palette, self._today)

    def add_event(self, event: Event) -> None:
        for entry in entries_for(event):
            self.add(entry)

    def observe(self, snap: Snapshot) -> None:
        """What only the snapshot says: connection changes, realized P&L of closing fills;
        the first one also what happened before the console attached."""
        if self._previous is None:
            for entry in seeded(snap):
                self.add(entry)
        for entry in link_changes(self._previous, snap):
            self.add(entry)
        self._previous = snap
        for cid in tuple(self._awaiting):
            line = snap.order(cid)
            if line is None:
                continue
            if line.realized_pnl is not None and self._pnl.get(cid) != line.realized_pnl:
                self._pnl[cid] = line.realized_pnl  # a partial fill's grows with the next
                self._dirty = True
            if line.status in SETTLED:
                del self._awaiting[cid]  # its P&L (or none: an opening fill) is final

    # ------------------------------------------------------------------ filter
    @property
    def filter_name(self) -> str:
        return FILTERS[self.filter][0]

    def action_cycle_filter(self) -> None:
        self.filter = (self.filter + 1) % len(FILTERS)
        self._title()
        self._dirty = True
        if self._palette is not None:
            self._render_log(self._palette, self._today)

    def _title(self) -> None:
        self.border_title = f"Activity · {self.filter_name}"
        self.border_subtitle = "v filter"

    # ------------------------------------------------------------------ drawing
    def redraw(self, view: View) -> None:
        self.observe(view.state)
        self._today = view.now.astimezone(ET).date()
        if self._dirty or view.palette != self._palette:
            self._render_log(view.palette, self._today)

    def lines(self) -> list[Entry]:
        """The entries the filter shows, newest first."""
        kinds = FILTERS[self.filter][1]
        return [e for e in reversed(self.entries) if e.kind in kinds]

    def _render_log(self, palette: Palette, today: date | None = None) -> None:
        self._palette = palette
        self._dirty = False
        tones = {"good": palette.good, "warn": palette.warn, "bad": palette.bad}
        grid = Table.grid(padding=(0, 1), expand=True)
        grid.add_column(no_wrap=True, style=palette.muted)
        grid.add_column(no_wrap=True, style=palette.muted)
        grid.add_column(ratio=1)
        rows = self.lines()
        for entry in rows:
            text = Text(entry.text, style=tones.get(entry.tone, palette.strong))
            pnl = self._pnl.get(entry.client_order_id) if entry.client_order_id else None
            if pnl is not None:
                text.append(f" · {realized(pnl)}", palette.up if pnl >= 0 else palette.down)
            same_day = today is not None and entry.ts.astimezone(ET).date() == today
            grid.add_row(et(entry.ts, "%H:%M:%S" if same_day else "%m-%d %H:%M"), entry.kind, text)
        log = self.query_one("#activity-log", Static)
        if rows:
            log.update(grid)
        else:
            log.update(Text(f"nothing to show under '{self.filter_name}'", style=palette.muted))
