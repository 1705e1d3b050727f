"""Confirm mode: strategy orders held for the operator's yes or no, each with a deadline.

The hold lives in the engine, not the console, so a console in this process and one attached
over a socket later see the same pending order and the same deadline (on the engine's clock).
An entry not confirmed by its deadline is skipped, never sent late: the price it was sized on
is gone. An exit is sent at its deadline at the latest: a lost exit leaves a position nobody
meant to keep. Flatten and the breakers never pass through here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from tapewatch.engine.model.types import Intent, OrderRequest
from tapewatch.engine.settings.config import CONFIRM_MODES

__all__ = ["CONFIRM_MODES", "HeldOrder", "OrderHold", "next_mode"]


def next_mode(mode: str) -> str:
    """The mode after ``mode`` in the toggle's cycle: off → entries → all → off."""
    index = CONFIRM_MODES.index(mode) if mode in CONFIRM_MODES else -1
    return CONFIRM_MODES[(index + 1) % len(CONFIRM_MODES)]


def covers(mode: str, intent: Intent) -> bool:
    """Whether ``mode`` holds a strategy order of ``intent`` (a flatten is never held)."""
    if mode == "all":
        return intent is Intent.ENTRY or intent is Intent.EXIT
    return mode == "entries" and intent is Intent.ENTRY


@dataclass(frozen=True, slots=True)
class HeldOrder:
    """A strategy order waiting for the operator: the order, why it exists, until when."""

    request: OrderRequest
    why: str
    asked_at: datetime
    deadline: datetime

    @property
    def client_order_id(self) -> str:
        return self.request.client_order_id

    @property
    def is_exit(self) -> bool:
        return self.request.intent is Intent.EXIT

    def describe(self) -> str:
        """``BUY 12 SPY`` for notices and the journal."""
        request = self.request
        return f"{request.side.value.upper()} {request.qty:g} {request.symbol}"


class OrderHold:
    """The orders waiting for an answer, by client order id, and the mode that holds them."""

    __slots__ = ("_held", "_mode", "timeout")

    def __init__(self, mode: str = "off", timeout_seconds: float = 30.0) -> None:
        if mode not in CONFIRM_MODES:
            raise ValueError(f"confirm mode must be one of {', '.join(CONFIRM_MODES)}: {mode!r}")
        if not timeout_seconds > 0:
            raise ValueError(f"confirm timeout must be above 0 s, not {timeout_seconds:g}")
        self._mode = mode
        self.timeout = timedelta(seconds=timeout_seconds)
        self._held: dict[str, HeldOrder] = {}

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, mode: str) -> None:
        if mode not in CONFIRM_MODES:
            raise ValueError(f"confirm mode must be one of {', '.join(CONFIRM_MODES)}: {mode!r}")
        self._mode = mode

    def covers(self, intent: Intent) -> bool:
        return covers(self._mode, intent)

    @property
    def pending(self) -> tuple[HeldOrder, ...]:
        """Oldest first."""
        return tuple(self._held.values())

    def __bool__(self) -> bool:
        return bool(self._held)

    def hold(self, request: OrderRequest, why: str, now: datetime) -> HeldOrder:
        held = HeldOrder(request, why, now, now + self.timeout)
        self._held[request.client_order_id] = held
        return held

    def get(self, client_order_id: str) -> HeldOrder | None:
        return self._held.get(client_order_id)

    def take(self, client_order_id: str) -> HeldOrder | None:
        """Remove and return it: whoever takes it (an answer, the deadline) acts on it once."""
        return self._held.pop(client_order_id, None)

    def due(self, now: datetime) -> list[HeldOrder]:
        """Take every order whose deadline has come (``now`` at or past it)."""
        ripe = [h for h in self._held.values() if now >= h.deadline]
        for held in ripe:
            del self._held[held.client_order_id]
        return ripe

    def clear(self) -> list[HeldOrder]:
        """Take them all (a flatten, a stop)."""
        held, self._held = list(self._held.values()), {}
        return held
