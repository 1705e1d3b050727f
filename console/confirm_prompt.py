"""The one-line prompt for a strategy order that waits for the operator (confirm mode).

The engine holds the order and keeps its deadline on its own clock; this line only shows the
oldest held order from the snapshot — what, why, the keys, the seconds left — and tells the app
which order ``y`` and ``n`` answer. It is hidden when nothing waits, so it costs no row then.
At any width the order, the keys and the countdown stay; the reason is cut to fit.
"""

from __future__ import annotations

import math
from datetime import datetime

from rich.cells import cell_len
from rich.text import Text
from textual.widgets import Static

from tapewatch.console.format import price, qty
from tapewatch.engine.api.snapshot import HeldOrder, Snapshot

PROMPT_ACTIONS = frozenset({"confirm_order", "skip_order"})
"""The app's actions behind ``y`` and ``n``: they act only while the prompt shows."""
ELLIPSIS = "…"


def seconds_left(held: HeldOrder, now: datetime) -> int:
    """Whole seconds until the deadline, rounded up (0 once it has come)."""
    return max(0, math.ceil((held.deadline - now).total_seconds()))


def prompt_parts(held: HeldOrder, now: datetime) -> tuple[str, str, str]:
    """(the order, why it exists, the keys and countdown) of the prompt line."""
    request = held.request
    about = f" ~${price(request.estimated_price)}" if request.estimated_price else ""
    order = f"{request.side.value.upper()} {qty(request.qty)} {request.symbol}{about}"
    left = seconds_left(held, now)
    # An exit is never dropped: n is not offered, and the deadline sends it.
    keys = f"y send now · sends in {left}s" if held.is_exit else f"y send · n skip · {left}s"
    return order, held.why, keys


def prompt_line(held: HeldOrder, now: datetime, width: int) -> Text:
    """The prompt in ``width`` cells: the reason shortened (then dropped) before anything else."""
    order, why, keys = prompt_parts(held, now)
    fixed = cell_len(order) + cell_len(keys) + 2
    room = width - fixed - 3  # " · " between the order and its reason
    if why and room >= 4:
        if cell_len(why) > room:
            why = why[: room - 1].rstrip() + ELLIPSIS
        reason = f" · {why}"
    else:
        reason = ""
    line = Text()
    line.append(order, style="bold")
    line.append(reason)
    line.append("  ")
    for word in keys.split(" "):
        if line.plain and not line.plain.endswith(" "):
            line.append(" ")
        line.append(word, style="bold" if word in ("y", "n") else "")
    return line


class HeldOrderPrompt(Static):
    """Shown while an order waits for the operator; ``held_id`` is the one ``y``/``n`` answer."""

    DEFAULT_CSS = """
    HeldOrderPrompt {
        height: 1;
        padding: 0 1;
        background: $warning 30%;
        color: $foreground;
        display: none;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id, markup=False)
        self.held_id: str | None = None
        self.held_is_exit = False

    @property
    def answerable(self) -> bool:
        """Whether an order is on screen for ``y`` and ``n`` to answer."""
        return self.held_id is not None

    def redraw(self, snap: Snapshot) -> None:
        held = snap.held[0] if snap.held else None
        self.held_id = held.client_order_id if held is not None else None
        self.held_is_exit = held is not None and held.is_exit
        self.display = held is not None
        if held is None:
            return
        width = max(20, (self.size.width or self.app.size.width) - 2)
        self.update(prompt_line(held, snap.now, width))
