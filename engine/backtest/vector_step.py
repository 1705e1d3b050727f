"""One eventful bar of the vectorised backtest: the engine's bar path as a backtest takes it.

``Engine.process_bar`` serves live trading too: it publishes events for the journal and the
console, keeps the order log, records latencies and asks the order book about open orders, at
a few hundred microseconds a bar. A backtest needs only what reaches its report: the fills, the
breaker trips, the denied orders and the equity. ``BarStep`` takes the same steps in the same
order with the engine's own parts — the SimBroker (fills, rejections, order ids), the risk gate
(breakers, trips, denials, re-arming), the strategy's sizing and ``rule_action`` — so each rule
still has one implementation. tests/engine/test_vector_path.py holds it to the full engine
path on every input of the corpus and on random configurations.
"""

from __future__ import annotations

from datetime import datetime

from tapewatch.engine.adapters.sim.broker import SimBroker
from tapewatch.engine.backtest.stats import BreakerTrip
from tapewatch.engine.core.engine import MIN_EXIT_QTY, MIN_FLATTEN_QTY, Engine
from tapewatch.engine.model.events import BreakerChanged, Event, OrderFilled
from tapewatch.engine.model.types import (
    Bar,
    Fill,
    Intent,
    Mode,
    OrderRequest,
    Side,
    client_order_id,
)
from tapewatch.engine.strategy.rsi_sma import rule_action


def trips_among(changes: list[BreakerChanged]) -> list[BreakerTrip]:
    """The trips among breaker changes, as the backtest's report lists them."""
    return [BreakerTrip(c.ts.isoformat(), c.name, c.reason) for c in changes if c.tripped]


def step_uncovered(engine: Engine) -> str | None:
    """Why ``BarStep`` cannot stand in for ``engine``'s bar path (None when it can)."""
    if engine.mode is not Mode.BACKTEST:
        return "not a backtest engine"
    if engine.hold:
        return "confirm mode holds orders"
    if engine.attendance.after_seconds is not None:
        return "the unattended pause is armed"
    if not engine.allow_fractional:
        return "whole-share sizing"
    return None


class BarStep:
    """The engine's bar path without events, for a backtest on a SimBroker."""

    def __init__(self, engine: Engine, broker: SimBroker) -> None:
        config = engine.config
        self._engine = engine
        self._broker = broker
        self._gate = engine.gate
        self._watch_staleness = engine.gate.watch_staleness
        self._entry_qty = engine.strategy.entry_qty
        self._symbol = engine.symbol
        self._name = config.strategy_name
        self._oversold = config.strategy.rsi_oversold
        self._overbought = config.strategy.rsi_overbought
        self.fills: list[Fill] = []
        self.trips: list[BreakerTrip] = []
        self.denied = 0
        broker.set_listener(self._on_broker_event)

    def _on_broker_event(self, event: Event) -> None:
        if type(event) is OrderFilled:
            self.fills.append(event.fill)

    def record(self, changes: list[BreakerChanged]) -> None:
        self.trips.extend(trips_among(changes))

    async def __call__(
        self, bar: Bar, now: datetime, rsi: float | None, sma: float | None
    ) -> tuple[float, bool]:
        """Fill pending orders at the open, mark, let the breakers see the equity, then apply
        the rule; returns the equity at the close and whether a position is held."""
        broker = self._broker
        gate = self._gate
        symbol = self._symbol
        await broker.on_bar(bar)
        portfolio = broker.portfolio
        equity = portfolio.equity
        exposed = bool(portfolio.positions)
        if self._watch_staleness:  # history keeps no stale watch (see backtest/gaps.py)
            gate.on_bar(now)  # the bar's close
        changes = gate.on_equity(equity, now)
        if changes:
            self.record(changes)
            if gate.drawdown.tripped and gate.drawdown.action == "flatten":
                await self._flatten(now)
        position = portfolio.positions.get(symbol)
        position_qty = position.qty if position is not None else 0.0
        # Exposure is the position plus open buys; on a SimBroker the only order that can be
        # working here is a flatten's sell, submitted above, so exposure is the position.
        action = rule_action(rsi, sma, bar.close, position_qty, self._oversold, self._overbought)
        if action == "hold" or symbol in broker.pending_symbols:
            return equity, exposed  # one open order per symbol: a signal meanwhile waits
        if action == "buy":
            qty = self._entry_qty(equity, bar.close)
            if qty <= 0:
                return equity, exposed
            side, intent = Side.BUY, Intent.ENTRY
        else:
            qty = position_qty  # nothing is pending here, so no open sell to subtract
            if qty <= MIN_EXIT_QTY:
                return equity, exposed
            side, intent = Side.SELL, Intent.EXIT
        request = OrderRequest(
            client_order_id=client_order_id(self._name, symbol, bar.ts, intent),
            symbol=symbol,
            side=side,
            qty=qty,
            intent=intent,
            bar_ts=bar.ts,
            estimated_price=bar.close,
        )
        if gate.check(request, position_qty).allowed:
            await broker.submit_order(request)
        else:
            self.denied += 1
        return equity, exposed

    async def _flatten(self, now: datetime) -> None:
        """The drawdown breaker's flatten: cancel what works, close every position."""
        broker = self._broker
        await broker.cancel_all_orders()
        for symbol, pos in sorted(broker.portfolio.positions.items()):
            if abs(pos.qty) < MIN_FLATTEN_QTY:
                continue
            cid = client_order_id(self._name, symbol, now, Intent.FLATTEN)
            request = OrderRequest(
                client_order_id=f"{cid}-0",
                symbol=symbol,
                side=Side.SELL if pos.qty > 0 else Side.BUY,
                qty=abs(pos.qty),
                intent=Intent.FLATTEN,
                bar_ts=now,
                estimated_price=pos.last_price or None,
            )
            await broker.submit_order(request)
