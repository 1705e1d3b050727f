"""The account between REST reads: the last snapshot, plus the fills and prices seen since.

The engine asks for the account on every bar. Asking Alpaca each time would put two REST round
trips on the bar -> decision path and spend the 200 requests/minute budget, so the broker keeps
this book instead: a REST snapshot (refreshed in the background when older than
``refresh_after`` seconds), moved forward by each fill through the same ``apply_fill`` the
journal replays, and marked to each bar's close. Any gap to Alpaca's own equity figure (fees,
rounding) is carried as an offset measured at the snapshot. A refresh that raced a fill is
dropped: it may predate the fill, and the next one will be right.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from tapewatch.engine.core.portfolio import PortfolioState, apply_fill, mark
from tapewatch.engine.model.types import AccountSnapshot, Fill, Position


class AccountBook:
    def __init__(
        self, refresh_after: float = 30.0, *, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.refresh_after = refresh_after
        self._monotonic = monotonic
        self._state: PortfolioState | None = None
        self._offset = 0.0
        self._meta = ("", "ACTIVE")
        self._taken_at = 0.0
        self.generation = 0  # bumped by every fill

    @property
    def ready(self) -> bool:
        return self._state is not None

    def stale(self) -> bool:
        return self._state is None or self._monotonic() - self._taken_at >= self.refresh_after

    def replace(self, snapshot: AccountSnapshot, generation: int) -> bool:
        """Adopt a REST snapshot read when the book was at ``generation``; False if a fill
        arrived meanwhile (the snapshot may not include it)."""
        if self._state is not None and generation != self.generation:
            return False
        state = PortfolioState(
            cash=snapshot.cash, positions={p.symbol: p for p in snapshot.positions}
        )
        self._state = state
        self._offset = snapshot.equity - state.equity
        self._meta = (snapshot.account_id, snapshot.status)
        self._taken_at = self._monotonic()
        return True

    def apply_fill(self, fill: Fill) -> None:
        self.generation += 1
        if self._state is not None:
            apply_fill(self._state, fill)

    def mark(self, symbol: str, price: float) -> None:
        if self._state is not None:
            mark(self._state, symbol, price)

    def snapshot(self) -> AccountSnapshot | None:
        state = self._state
        if state is None:
            return None
        positions: tuple[Position, ...] = tuple(state.positions.values())
        return AccountSnapshot(
            cash=state.cash,
            equity=state.equity + self._offset,
            positions=positions,
            account_id=self._meta[0],
            status=self._meta[1],
        )
