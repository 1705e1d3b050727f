"""After a flatten: watch the orders until they settle, then say whether the book is flat.

Positions refresh when a bar is processed, so once every flatten order has settled the watch
waits for one more bar before reporting anything still open (a fill may land on that bar).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tapewatch.console.format import qty
from tapewatch.engine.api.snapshot import Snapshot

OPEN_STATUSES = frozenset({"new", "accepted", "partially_filled"})


@dataclass(slots=True)
class FlattenWatch:
    client_order_ids: tuple[str, ...]
    settled_at_bar: datetime | None = None
    done: bool = False

    def check(self, state: Snapshot) -> tuple[str, str] | None:
        """(message, severity) once the outcome is known; None while still waiting."""
        if self.done:
            return None
        rows = [state.order(cid) for cid in self.client_order_ids]
        if any(r is not None and r.status in OPEN_STATUSES for r in rows):
            return None
        left = {p.symbol: p.qty for p in state.open_positions}
        if not left and state.in_flight == 0:
            self.done = True
            if state.paused:
                return "Flat: every position is closed; entries stay paused until p", "information"
            return "Flat: every position is closed", "information"
        last_bar = state.bars[-1].ts if state.bars else None
        if self.settled_at_bar is None:
            self.settled_at_bar = last_bar
            return None
        if last_bar == self.settled_at_bar:
            return None
        self.done = True
        problems = [
            f"{r.symbol} {r.status}{': ' + r.reason if r.reason else ''}"
            for r in rows
            if r is not None and r.status != "filled"
        ]
        still = ", ".join(f"{s} {qty(q)}" for s, q in sorted(left.items())) or "none"
        detail = f" ({'; '.join(problems)})" if problems else ""
        return f"Flatten finished but still open: {still}{detail}", "error"
