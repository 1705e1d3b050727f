"""The interface each breaker implements and the status it reports.

A breaker is a latch: once tripped it imposes its trading state until ``reset()``; it never
re-arms on its own (a restart restores it from the journal). Breakers receive ``now`` as an
argument and never read a clock themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from tapewatch.engine.model.types import TradingState


@dataclass(frozen=True, slots=True)
class BreakerStatus:
    """What the Breakers pane shows: current value against threshold, and the latch."""

    name: str
    tripped: bool
    state: TradingState  # the state imposed while tripped
    reason: str
    tripped_at: datetime | None
    value: float
    threshold: float
    unit: str  # "%", "bars", "req/min", ""
    warning: bool = False


@dataclass(frozen=True, slots=True)
class RiskDecision:
    allowed: bool
    breaker: str = ""
    reason: str = ""


class Breaker(Protocol):
    name: str

    def status(self, now: datetime) -> BreakerStatus: ...

    def restore(self, tripped: bool, reason: str, tripped_at: datetime | None) -> None:
        """Put the latch back as the journal last recorded it."""
        ...

    def reset(self) -> None: ...
