"""The feed interface: warm-up history first, then closed bars as they happen."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol, runtime_checkable

from tapewatch.engine.model.types import Bar
from tapewatch.engine.settings.errors import UsageError


class DataError(UsageError, ValueError):
    """Bad market data from a file or a source: the message names the row/field and the fix."""


class Feed(Protocol):
    def warmup(self) -> Sequence[Bar]:
        """Closed bars before the live part, used only to prime the indicators."""
        ...

    def bars(self) -> AsyncIterator[Bar]:
        """Closed bars in time order; ends when the source is exhausted or the feed is stopped."""
        ...

    def stop(self) -> None: ...


@runtime_checkable
class PacedFeed(Protocol):
    """A feed whose pace can change while it runs (the demo's replay; ``None``: as fast as
    possible)."""

    @property
    def speed(self) -> float | None: ...

    def set_speed(self, speed: float | None) -> None: ...


@runtime_checkable
class SignalSkippingFeed(Protocol):
    """A feed that can fast-forward to just before the strategy's next signal (the demo)."""

    @property
    def can_skip(self) -> bool: ...

    def skip_to_signal(self) -> bool:
        """Start the fast-forward; False when the next bar already is a signal."""
        ...
