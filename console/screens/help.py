"""The ? screen: every key in force (after the user's remapping) and what it does.

The dialog scrolls (arrows, PgUp/PgDn, Home/End, the mouse wheel), so on an 80x24 terminal the
runtime facts at the end (data directory, endpoints) are still within reach.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.keys import format_key
from textual.screen import ModalScreen
from textual.widgets import Static

from tapewatch.console.keymap import ACTIONS


def _keys(spec: str) -> str:
    return " / ".join(format_key(k) for k in spec.split(","))


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q,enter", "close", "Close", show=False)
    ]

    def __init__(
        self, keys: dict[str, str], config_path: str, facts: Callable[[], str] | None = None
    ) -> None:
        """``facts`` reads the runtime facts (Python, GIL, keyring, data dir, endpoints, next
        session); it may block (D-Bus), so it runs in a thread after the screen is shown."""
        super().__init__()
        self._keys = keys
        self._config_path = config_path
        self._facts = facts

    def compose(self) -> ComposeResult:
        table = Table(box=None, padding=(0, 2), show_header=False)
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        for action in ACTIONS:
            table.add_row(_keys(self._keys.get(action.name, action.keys)), action.help)
        table.add_row("ctrl+q", "Quit (same checks as quit)")
        table.add_row("ctrl+p", "Command palette: every action by name")
        table.add_row("1 2 3 4", "Pages on small terminals (market, positions, orders, latency)")
        table.add_row("↑ ↓ PgUp PgDn", "Scroll the order log")
        with VerticalScroll(id="dialog", classes="dialog") as box:
            box.border_title = "Keys"
            box.border_subtitle = "↑↓ PgUp PgDn scroll · esc closes"
            yield Static(table, id="body")
            yield Static(
                Text(
                    f'Remap keys in {self._config_path} under [keys], e.g. pause = "space"',
                    style="dim",
                ),
                id="config-hint",
            )
            if self._facts is not None:
                yield Static(Text("Runtime: reading…", style="dim"), id="facts")

    def on_mount(self) -> None:
        self.query_one("#dialog", VerticalScroll).focus()  # the scroll keys act at once
        if self._facts is not None:
            self.run_worker(self._read_facts, thread=True, exit_on_error=False)

    def _read_facts(self) -> None:
        assert self._facts is not None
        try:
            text = self._facts()
        except Exception as exc:  # a fact we cannot read is shown, never fatal
            text = f"runtime facts unavailable: {exc}"
        self.app.call_from_thread(self.query_one("#facts", Static).update, Text(text))

    def action_close(self) -> None:
        self.dismiss(None)
