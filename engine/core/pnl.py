"""Realized P&L of each fill that closes shares: what a trade made, fees on both legs included.

A position's average entry price leaves out the commissions paid to open it (``apply_fill``
keeps cash and prices apart), so the entry fees are kept here per symbol and charged to the
fills that close the position, in proportion to the shares each one closes. ``replay`` rebuilds
that ledger from the journal after a restart, so a trade opened before it still counts its fees.
"""

from __future__ import annotations

from collections.abc import Iterable

from tapewatch.engine.core.portfolio import ZERO_QTY, PortfolioState, apply_fill
from tapewatch.engine.model.events import AccountAdopted, Event, OrderFilled
from tapewatch.engine.model.types import Fill, Position, Side


class RealizedPnl:
    """Entry fees still to charge, by symbol; ``on_fill`` is told each fill before it is applied."""

    __slots__ = ("_entry_fees",)

    def __init__(self) -> None:
        self._entry_fees: dict[str, float] = {}

    def on_fill(self, before: Position | None, fill: Fill) -> float | None:
        """The P&L ``fill`` realises against ``before`` (the position as it was), or None when
        it only opens or adds (it then adds its fee to the symbol's entry fees)."""
        held = before.qty if before is not None and abs(before.qty) >= ZERO_QTY else 0.0
        signed = fill.qty if fill.side is Side.BUY else -fill.qty
        if held == 0.0 or (held > 0) == (signed > 0):
            self._entry_fees[fill.symbol] = self._entry_fees.get(fill.symbol, 0.0) + fill.fee
            return None
        assert before is not None
        closed = min(fill.qty, abs(held))
        owed = self._entry_fees.get(fill.symbol, 0.0)
        entry_fee = owed * closed / abs(held)
        direction = 1.0 if held > 0 else -1.0
        exit_fee = fill.fee * closed / fill.qty
        gain = direction * (fill.price - before.avg_entry_price) * closed - exit_fee - entry_fee
        rest = owed - entry_fee
        opened = fill.qty - closed  # crossed through zero: the remainder opens a new position
        if opened > ZERO_QTY:
            self._entry_fees[fill.symbol] = fill.fee - exit_fee
        elif abs(held) - closed < ZERO_QTY:
            self._entry_fees.pop(fill.symbol, None)
        else:
            self._entry_fees[fill.symbol] = rest
        return gain

    def replay(self, events: Iterable[Event]) -> None:
        """Rebuild the entry fees from journaled events (the portfolio's own replay order)."""
        self._entry_fees.clear()
        book = PortfolioState(cash=0.0)
        for event in events:
            if isinstance(event, OrderFilled):
                self.on_fill(book.positions.get(event.fill.symbol), event.fill)
                apply_fill(book, event.fill)
            elif isinstance(event, AccountAdopted):  # the broker's book: its fees are unknown
                book.positions = {p.symbol: p for p in event.positions}
                self._entry_fees.clear()
