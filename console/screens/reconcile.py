"""The reconcile modal: the journal and the broker disagree, and a person decides what is true.

Trading is already paused when this opens. Three answers: adopt the broker's state, flatten
everything, or keep trading paused. The answer goes to the engine as a ``ResolveReconciliation``
command, which the host's reconciler carries out. Escape is the safe answer (keep paused), so
a stray key never trades.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from tapewatch.console.format import qty
from tapewatch.engine.api.commands import Choice as CommandChoice
from tapewatch.engine.api.commands import ResolveReconciliation
from tapewatch.engine.api.handle import EngineHandle
from tapewatch.engine.api.replies import Refused, Reply
from tapewatch.engine.api.types import BROKER_ONLY_ORDER, POSITION, Difference

Choice = Literal["adopt", "flatten", "keep"]
CHOICES: tuple[Choice, ...] = ("adopt", "flatten", "keep")


def _what(d: Difference) -> str:
    if d.kind == POSITION:
        return "position"
    if d.kind == BROKER_ONLY_ORDER:
        return f"order {d.client_order_id} (not in the journal)"
    return f"order {d.client_order_id} (not at the broker)"


def differences_body(differences: Sequence[Difference]) -> RenderableType:
    table = Table(box=None, expand=True, padding=(0, 1), show_edge=False)
    table.add_column("Symbol")
    table.add_column("What")
    table.add_column("Journal", justify="right")
    table.add_column("Broker", justify="right")
    for d in differences:
        table.add_row(d.symbol, _what(d), qty(d.journal_qty), qty(d.broker_qty))
    n = len(differences)
    return Group(
        Text(
            f"The broker disagrees with the journal ({n} difference{'s' if n != 1 else ''}). "
            "Trading is paused until you decide.",
            style="bold",
        ),
        table,
        Text(
            "Adopt: take the broker's positions as the truth and resume. "
            "Flatten: close every position (stays paused). Keep paused: decide later.",
            style="dim",
        ),
    )


class ReconcileScreen(ModalScreen[Choice]):
    """Dismisses with "adopt", "flatten" or "keep"."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "choose('adopt')", "Adopt", show=False),
        Binding("f", "choose('flatten')", "Flatten", show=False),
        Binding("k,escape", "choose('keep')", "Keep paused", show=False),
    ]

    def __init__(self, differences: Sequence[Difference]) -> None:
        super().__init__(classes="-warning")
        self.differences = list(differences)

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="dialog") as box:
            box.border_title = "Reconcile — the broker's state differs"
            yield Static(differences_body(self.differences), id="body")
            with Horizontal(classes="buttons"):
                yield Button("Adopt broker (a)", id="adopt", variant="primary")
                yield Button("Flatten (f)", id="flatten", variant="error")
                yield Button("Keep paused (k)", id="keep")

    def on_mount(self) -> None:
        self.query_one("#keep", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        choice = event.button.id
        if choice in CHOICES:
            self.dismiss(choice)

    def action_choose(self, choice: Choice) -> None:
        self.dismiss(choice)


MESSAGES: dict[Choice, str] = {
    "adopt": "Adopted the broker's state",
    "flatten": "Flatten sent after adopting the broker's positions; trading stays paused",
    "keep": "Trading stays paused: press p to resume when the differences are sorted out",
}


ANSWERS: dict[Choice, CommandChoice] = {
    "adopt": "adopt",
    "flatten": "flatten",
    "keep": "keep_paused",
}


async def apply_choice(handle: EngineHandle, choice: Choice, who: str) -> Reply:
    """Send the operator's answer (the host's reconciler carries it out)."""
    return await handle.send(ResolveReconciliation(who=who, choice=ANSWERS[choice]))


def ask(app: App[Any], handle: EngineHandle, differences: Sequence[Difference], who: str) -> None:
    """Open the modal; its answer goes to the engine in a command worker."""

    def answered(choice: Choice | None) -> None:
        async def work() -> None:
            reply = await apply_choice(handle, choice or "keep", who)
            if isinstance(reply, Refused):
                app.notify(f"Reconcile failed: {reply.reason}", severity="error", timeout=12)
                return
            message = MESSAGES[choice or "keep"]
            app.notify(message, severity="warning" if choice != "adopt" else "information")

        app.run_worker(work(), name="reconcile", group="command", exit_on_error=True)

    app.push_screen(ReconcileScreen(differences), answered)
