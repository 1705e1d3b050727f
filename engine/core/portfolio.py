"""Cash and positions as a projection of the journal: replaying its events rebuilds them.

``apply_fill`` is the one rule for how a fill changes cash and positions. The simulated broker
applies it to its live state and ``rebuild`` applies it to journaled fills, so the two are equal
by construction (same float operations in the same order), not by a parallel implementation.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime

from tapewatch.engine.model.events import (
    AccountAdopted,
    BarClosed,
    Event,
    OrderFilled,
    SessionStarted,
)
from tapewatch.engine.model.types import Fill, Position, Side

ZERO_QTY = 1e-9
"""A position whose |qty| falls below this is closed (binary noise from fractional shares)."""


@dataclass
class PortfolioState:
    """Mutable cash and positions by symbol (Position itself is frozen and replaced)."""

    cash: float
    positions: dict[str, Position] = field(default_factory=dict)

    @property
    def equity(self) -> float:
        """Cash plus every position marked at its last price."""
        return self.cash + sum(p.market_value for p in self.positions.values())


def apply_fill(state: PortfolioState, fill: Fill) -> None:
    """Apply one fill to ``state`` in place. The exact float semantics, in this order:

    - buy:  ``cash = cash - (qty * price + fee)``
    - sell: ``cash = cash + (qty * price - fee)``
    - ``signed_qty`` is ``qty`` for a buy, ``-qty`` for a sell;
      ``new_qty = old_qty + signed_qty``; the position is removed when ``abs(new_qty) < 1e-9``.
    - a fill that opens a position sets ``avg = price``; one that adds to it (a buy when
      long, a sell when short) sets ``avg = (old_qty * old_avg + signed_qty * price) / new_qty``
      (the weighted average); one that reduces it leaves ``avg`` unchanged; one that crosses
      zero opens the remainder at ``price``.
    - the position's ``last_price`` becomes the fill price (the newest trade we know of).
    """
    if not fill.qty > 0:
        raise ValueError(f"fill {fill.client_order_id} has non-positive qty {fill.qty}")
    notional = fill.qty * fill.price
    if fill.side is Side.BUY:
        state.cash = state.cash - (notional + fill.fee)
        signed = fill.qty
    else:
        state.cash = state.cash + (notional - fill.fee)
        signed = -fill.qty
    old = state.positions.get(fill.symbol)
    old_qty = old.qty if old is not None else 0.0
    new_qty = old_qty + signed
    if abs(new_qty) < ZERO_QTY:
        state.positions.pop(fill.symbol, None)
        return
    if old is None or abs(old_qty) < ZERO_QTY:
        avg = fill.price
    elif (old_qty > 0) == (signed > 0):  # adding to the position
        avg = (old_qty * old.avg_entry_price + signed * fill.price) / new_qty
    elif (old_qty > 0) == (new_qty > 0):  # reducing, same side remains
        avg = old.avg_entry_price
    else:  # crossed through zero: the remainder is a new position at this price
        avg = fill.price
    state.positions[fill.symbol] = Position(fill.symbol, new_qty, avg, fill.price)


def mark(state: PortfolioState, symbol: str, price: float) -> None:
    """Set the last price of ``symbol``'s position, if there is one."""
    position = state.positions.get(symbol)
    if position is not None:
        state.positions[symbol] = replace(position, last_price=price)


def rebuild(events: Iterable[Event]) -> PortfolioState:
    """Replay journaled events (in seq order) into cash and positions.

    - The FIRST SessionStarted gives the starting cash; later ones (a restarted session) do
      not reset it. (Cash starts at 0.0 and the first SessionStarted adds its starting cash, so
      a stray fill before it is not lost.)
    - Every OrderFilled goes through ``apply_fill``.
    - An AccountAdopted (reconciliation took the broker's side) replaces cash and positions.
    - A BarClosed marks the position of its symbol at the bar's close, unless an earlier-
      timed bar of that symbol was already seen later in the log (warm-up history replayed
      after a restart must not overwrite a newer price).
    """
    state = PortfolioState(cash=0.0)
    started = False
    newest_bar: dict[str, datetime] = {}
    for event in events:
        if isinstance(event, OrderFilled):
            apply_fill(state, event.fill)
        elif isinstance(event, BarClosed):
            bar = event.bar
            seen = newest_bar.get(bar.symbol)
            if seen is None or bar.ts >= seen:
                newest_bar[bar.symbol] = bar.ts
                mark(state, bar.symbol, bar.close)
        elif isinstance(event, AccountAdopted):
            started = True
            state.cash = event.cash
            state.positions = {p.symbol: p for p in event.positions}
        elif isinstance(event, SessionStarted) and not started:
            started = True
            state.cash = state.cash + event.starting_cash
    return state
