"""How the journal and the broker can disagree: the data a reconciliation reports.

Plain data, so the API (the reconcile modal, a console attached over a socket) can name a
difference without loading the reconciler and the engine core behind it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BROKER_ONLY_ORDER", "JOURNAL_ONLY_ORDER", "POSITION", "Difference"]

POSITION = "position"
BROKER_ONLY_ORDER = "broker_only_order"
JOURNAL_ONLY_ORDER = "journal_only_order"


def _fmt(qty: float) -> str:
    return f"{qty:.9f}".rstrip("0").rstrip(".") or "0"


@dataclass(frozen=True, slots=True)
class Difference:
    """One way the journal and the broker disagree; ``str()`` is the line shown and journaled."""

    kind: str  # POSITION, BROKER_ONLY_ORDER or JOURNAL_ONLY_ORDER
    symbol: str
    journal_qty: float = 0.0
    broker_qty: float = 0.0
    client_order_id: str = ""
    side: str = ""

    def __str__(self) -> str:
        if self.kind == POSITION:
            return (
                f"{self.symbol}: the journal has {_fmt(self.journal_qty)}, "
                f"the broker has {_fmt(self.broker_qty)}"
            )
        what = f"{self.client_order_id} ({self.side} {_fmt(self.broker_qty or self.journal_qty)}"
        if self.kind == BROKER_ONLY_ORDER:
            return f"open order {what} {self.symbol}) is at the broker but not in the journal"
        return f"order {what} {self.symbol}) is open in the journal but not at the broker"
