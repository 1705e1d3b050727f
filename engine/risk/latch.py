"""The latch every breaker shares: tripped, why, and since when, until an operator resets it.

A latch never clears itself when its condition goes away; only ``reset()`` (an operator action,
journaled) or ``restore()`` (putting back what the journal recorded) changes it.
"""

from __future__ import annotations

from datetime import datetime

from tapewatch.engine.model.types import TradingState


class Latch:
    """Base for breakers: holds the trip and the trading state it imposes while tripped."""

    name: str = "breaker"
    state: TradingState = TradingState.HALTED

    def __init__(self) -> None:
        self.tripped = False
        self.reason = ""
        self.tripped_at: datetime | None = None

    def trip(self, now: datetime, reason: str) -> bool:
        """Trip the latch; False (and nothing changes) if it was already tripped."""
        if self.tripped:
            return False
        self.tripped = True
        self.reason = reason
        self.tripped_at = now
        return True

    def reset(self) -> None:
        self.tripped = False
        self.reason = ""
        self.tripped_at = None

    def restore(self, tripped: bool, reason: str, tripped_at: datetime | None) -> None:
        """Put the latch back as the journal last recorded it."""
        if tripped:
            self.tripped = True
            self.reason = reason
            self.tripped_at = tripped_at
        else:
            self.reset()
