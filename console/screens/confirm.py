"""A yes/no confirmation and a plain message box, keyboard first (y/enter, n/escape)."""

from __future__ import annotations

from typing import ClassVar

from rich.console import RenderableType
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class ConfirmScreen(ModalScreen[bool]):
    """Ask once; dismisses with True only on an explicit yes."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes", show=False),
        Binding("n,escape", "answer(False)", "No", show=False),
    ]

    def __init__(
        self,
        title: str,
        body: RenderableType,
        *,
        yes: str = "Yes",
        no: str = "Cancel",
        danger: bool = False,
    ) -> None:
        super().__init__(classes="-danger" if danger else "")
        self._title = title
        self._body = body
        self._yes = yes
        self._no = no

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="dialog") as box:
            box.border_title = self._title
            yield Static(self._body, id="body")
            with Horizontal(classes="buttons"):
                yield Button(
                    f"{self._yes} (y)",
                    id="yes",
                    variant="error" if self.has_class("-danger") else "primary",
                )
                yield Button(f"{self._no} (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class MessageScreen(ModalScreen[None]):
    """Explain something that needs more than a toast (e.g. why a switch is refused)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,enter,q", "close", "Close", show=False)
    ]

    def __init__(self, title: str, body: RenderableType, *, warning: bool = False) -> None:
        super().__init__(classes="-warning" if warning else "")
        self._title = title
        self._body = body

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="dialog") as box:
            box.border_title = self._title
            yield Static(self._body, id="body")
            with Horizontal(classes="buttons"):
                yield Button("OK (enter)", id="ok", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#ok", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)
