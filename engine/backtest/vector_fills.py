"""The vector path's eventful bar with the SimBroker's execution kept as numbers.

``BarStep`` takes each eventful bar through the SimBroker's objects (an ``Order`` per state, a
``Fill``, an ``OrderFilled`` event, a ``Position`` per marked bar), which is most of a
million-bar backtest's time. ``FillStep`` keeps the one symbol's cash, position, reserved cash
and single pending order as floats and applies the SimBroker's rules to them in the same order
and with the same float operations: the fill at the next bar's open moved by the slippage, the
commission, the cash and quantity checks at submission and at the fill, and every cash and
average-price change through ``portfolio.apply_fill`` itself. The risk gate, the strategy's
sizing and ``rule_action`` are the engine's own objects, as in ``BarStep``.

It covers one symbol on a fresh SimBroker (``fills_uncovered`` says when not); each order
still takes the next order id the SimBroker would have given it, so the fills are equal field
for field. tests/engine/test_vector_path.py holds it to the full engine path on every input of
the corpus and on random configurations and damaged history.
"""

from __future__ import annotations

import math
from datetime import datetime

from tapewatch.engine.adapters.sim.broker import CASH_EPS, QTY_EPS, SimBroker
from tapewatch.engine.backtest.stats import BreakerTrip
from tapewatch.engine.backtest.vector_step import trips_among
from tapewatch.engine.core.broker import DuplicateClientOrderId
from tapewatch.engine.core.engine import MIN_EXIT_QTY, MIN_FLATTEN_QTY, Engine
from tapewatch.engine.core.portfolio import PortfolioState, apply_fill
from tapewatch.engine.model.types import (
    Fill,
    Intent,
    OrderRequest,
    Side,
    client_order_id,
)
from tapewatch.engine.strategy.rsi_sma import rule_action


def fills_uncovered(engine: Engine, broker: SimBroker, symbol: str) -> str | None:
    """Why ``FillStep`` cannot stand in for ``BarStep`` here (None when it can)."""
    if engine.gate.watch_staleness:
        return "the engine watches for stale data"
    if symbol != engine.symbol:
        return "the bars are of another symbol than the strategy's"
    if broker.portfolio.positions or broker.orders_submitted or broker.pending_symbols:
        return "the broker does not start fresh"
    return None


class _Pending:
    __slots__ = ("client_order_id", "order_id", "qty", "reserved", "side")

    def __init__(
        self, side: Side, qty: float, reserved: float, client_order_id: str, order_id: str
    ) -> None:
        self.side = side
        self.qty = qty
        self.reserved = reserved
        self.client_order_id = client_order_id
        self.order_id = order_id


class FillStep:
    """One eventful bar: fill at the open, mark at the close, breakers, then the rule."""

    def __init__(self, engine: Engine, broker: SimBroker) -> None:
        config = engine.config
        self._gate = engine.gate
        self._entry_qty = engine.strategy.entry_qty
        self._symbol = engine.symbol
        self._name = config.strategy_name
        self._oversold = config.strategy.rsi_oversold
        self._overbought = config.strategy.rsi_overbought
        self._slip = broker.slippage
        self._fee = broker.fee  # the SimBroker's own commission
        self._id_prefix = broker.id_prefix
        self._seq = broker.orders_submitted
        self._state = PortfolioState(cash=broker.portfolio.cash, positions={})
        self._reserved = 0.0
        self._pending: _Pending | None = None
        self._client_ids: set[str] = set()
        self.fills: list[Fill] = []
        self.trips: list[BreakerTrip] = []
        self.denied = 0

    # -- what the loop reads between eventful bars ---------------------------------------

    @property
    def qty(self) -> float:
        position = self._state.positions.get(self._symbol)
        return position.qty if position is not None else 0.0

    @property
    def cash(self) -> float:
        return self._state.cash

    @property
    def waiting(self) -> bool:
        """An order fills at the next bar's open."""
        return self._pending is not None

    # -- the bar -------------------------------------------------------------------------

    def __call__(
        self,
        open_: float,
        close: float,
        bar_ts: datetime,
        now: datetime,
        rsi: float | None,
        sma: float | None,
    ) -> tuple[float, bool]:
        """The SimBroker's bar (fill, then mark), the breakers on the equity, then the rule;
        returns the equity at the close and whether a position is held."""
        if self._pending is not None:
            self._execute(self._pending, open_, bar_ts)
        positions = self._state.positions
        position = positions.get(self._symbol)
        exposed = position is not None
        position_qty = position.qty if position is not None else 0.0
        # Equity as the SimBroker sums it: cash plus the position marked at this close.
        equity = self._state.cash + (position_qty * close if exposed else 0)
        gate = self._gate
        changes = gate.on_equity(equity, now)
        if changes:
            self.trips.extend(trips_among(changes))
            if gate.drawdown.tripped and gate.drawdown.action == "flatten":
                self._flatten(now, close)
        action = rule_action(rsi, sma, close, position_qty, self._oversold, self._overbought)
        if action == "hold" or self._pending is not None:
            return equity, exposed
        if action == "buy":
            qty = self._entry_qty(equity, close)
            if qty <= 0:
                return equity, exposed
            side, intent = Side.BUY, Intent.ENTRY
        else:
            qty = position_qty
            if qty <= MIN_EXIT_QTY:
                return equity, exposed
            side, intent = Side.SELL, Intent.EXIT
        cid = client_order_id(self._name, self._symbol, bar_ts, intent)
        request = OrderRequest(
            client_order_id=cid,
            symbol=self._symbol,
            side=side,
            qty=qty,
            intent=intent,
            bar_ts=bar_ts,
            estimated_price=close,
        )
        if gate.check(request, position_qty).allowed:
            self._submit(cid, side, qty, close)
        else:
            self.denied += 1
        return equity, exposed

    # -- the SimBroker's rules, on numbers -------------------------------------------------

    def _submit(self, cid: str, side: Side, qty: float, last_close: float) -> None:
        """``SimBroker.submit_order``: a new order id, then the quantity, position or cash
        check; a refused order is rejected (it never fills), an accepted one waits."""
        if cid in self._client_ids:
            raise DuplicateClientOrderId(cid)
        self._seq += 1
        order_id = f"{self._id_prefix}-{self._seq:08d}"
        self._client_ids.add(cid)
        if not math.isfinite(qty) or qty <= 0:
            return
        reserved = 0.0
        if side is Side.SELL:
            if qty > self.qty + QTY_EPS:  # nothing else is pending: all of it is available
                return
        elif math.isfinite(last_close) and last_close > 0:
            need = qty * last_close * (1.0 + self._slip) + self._fee(qty)
            if need > self._state.cash - self._reserved + CASH_EPS:
                return
            reserved = need
        self._pending = _Pending(side, qty, reserved, cid, order_id)
        self._reserved += reserved

    def _execute(self, item: _Pending, open_price: float, priced_at: datetime) -> None:
        """``SimBroker._execute``: fill at the open moved by the slippage, or reject."""
        self._pending = None
        self._reserved = max(0.0, self._reserved - item.reserved)
        qty = item.qty
        fee = self._fee(qty)
        if item.side is Side.BUY:
            price = open_price * (1.0 + self._slip)
            if qty * price + fee > self._state.cash + CASH_EPS:
                return
        else:
            price = open_price * (1.0 - self._slip)
            if qty > self.qty + QTY_EPS:
                return
        fill = Fill(
            order_id=item.order_id,
            client_order_id=item.client_order_id,
            symbol=self._symbol,
            side=item.side,
            qty=qty,
            price=price,
            fee=fee,
            ts=priced_at,
        )
        apply_fill(self._state, fill)
        self.fills.append(fill)

    def _flatten(self, now: datetime, close: float) -> None:
        """The drawdown breaker's flatten: cancel what waits, close the position."""
        self._pending = None
        self._reserved = 0.0
        qty = self.qty
        if abs(qty) < MIN_FLATTEN_QTY:
            return
        cid = client_order_id(self._name, self._symbol, now, Intent.FLATTEN)
        self._submit(f"{cid}-0", Side.SELL if qty > 0 else Side.BUY, abs(qty), close)
