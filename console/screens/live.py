"""Switching to live trading: show the account it will trade, and require typing LIVE.

A typed word rather than a key press, so no stray keystroke can move real money.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

CONFIRM_WORD = "LIVE"


class LiveConfirmScreen(ModalScreen[bool]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", show=False)]

    def __init__(self, account: str) -> None:
        super().__init__(classes="-danger")
        self._account = account

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="dialog") as box:
            box.border_title = "Switch to LIVE trading — real money"
            yield Static(
                "From the next bar the strategy trades this account with real money:\n\n"
                f"  {self._account}\n\n"
                f"Type {CONFIRM_WORD} (capitals) and press enter to confirm, or escape to stay.",
                id="body",
            )
            yield Input(placeholder=f"type {CONFIRM_WORD}", id="confirm-word")
            yield Label("", id="hint")
            with Horizontal(classes="buttons"):
                yield Button("Switch to LIVE", id="yes", variant="error", disabled=True)
                yield Button("Stay (esc)", id="no")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.query_one("#yes", Button).disabled = event.value != CONFIRM_WORD

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.value == CONFIRM_WORD:
            self.dismiss(True)
        else:
            self.query_one("#hint", Label).update(
                f"Not confirmed: type exactly {CONFIRM_WORD} in capitals, or press escape."
            )

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        confirmed = event.button.id == "yes" and self.query_one(Input).value == CONFIRM_WORD
        self.dismiss(confirmed)

    def action_cancel(self) -> None:
        self.dismiss(False)
