"""Order snapshots in, engine events out, each fill exactly once.

Alpaca tells us about an order several ways: the POST answer, ``trade_updates`` events, REST
look-ups (the fallback when the stream is silent, reconnecting or was never told), and a
cancel-all answer. Each is a snapshot with a cumulative ``filled_qty``/``filled_avg_price``;
the tracker keeps, per client order id, what it has already reported and emits only the
difference: an ``OrderFilled`` for new quantity (priced exactly from the notional difference,
in Decimal) and an ``OrderUpdated`` when the order ends without (more) fill. Replays and
duplicates after a reconnect therefore cost nothing.

While an order is being submitted its events are held back and released on the next loop turn
after the submit returns, so the engine always sees OrderSubmitted before that order's fill.
Open orders not heard of for a while are listed by ``due_for_poll`` with a growing interval.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from tapewatch.engine.adapters.alpaca.mapping import (
    dec,
    field_of,
    filled_notional,
    order_status,
    to_order,
)
from tapewatch.engine.core.orderbook import rank
from tapewatch.engine.model.events import Event, OrderFilled, OrderUpdated
from tapewatch.engine.model.types import Fill, OrderStatus

ZERO = Decimal(0)
KEEP_FINISHED = 2000  # finished orders remembered, so a late replay of their events is ignored


def _behind(incoming: OrderStatus, known: OrderStatus | None) -> bool:
    """Whether ``incoming`` is an earlier stage than ``known``: status never moves back, and a
    final status is final (with no more filled, a later "canceled" cannot undo "filled")."""
    if known is None:
        return False
    return rank(incoming) < rank(known) or (not known.is_open and incoming is not known)


@dataclass(slots=True)
class _State:
    filled_qty: Decimal = ZERO
    filled_notional: Decimal = ZERO
    status: OrderStatus | None = None
    heard_at: float = 0.0
    poll_interval: float = 0.0
    misses: int = 0  # look-ups that found nothing (an order that never landed)
    held: list[object] = field(default_factory=list)
    submitting: bool = False


class OrderTracker:
    def __init__(
        self,
        emit: Callable[[Event], None],
        now: Callable[[], datetime],
        *,
        poll_after: float = 3.0,
        poll_max: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._emit = emit
        self._now = now
        self.poll_after = poll_after
        self.poll_max = poll_max
        self._monotonic = monotonic
        self._orders: dict[str, _State] = {}
        self._finished = 0

    # -- submit bracketing -------------------------------------------------------------------

    def begin_submit(self, client_order_id: str) -> bool:
        """A new order of ours: nothing of it has filled yet; hold its events until sent.
        Returns False when the id is already known (the submit will meet a duplicate)."""
        known = client_order_id in self._orders
        state = self._orders.setdefault(client_order_id, _State())
        state.submitting = True
        state.heard_at = self._monotonic()
        state.poll_interval = self.poll_after
        return not known

    def end_submit(self, client_order_id: str) -> None:
        state = self._orders.get(client_order_id)
        if state is None:
            return
        state.submitting = False
        held, state.held = state.held, []
        if held:
            loop = asyncio.get_running_loop()
            for snapshot in held:
                loop.call_soon(self.observe, snapshot)

    # -- snapshots ---------------------------------------------------------------------------

    def knows(self, client_order_id: str) -> bool:
        return client_order_id in self._orders

    def observe(self, snapshot: object, *, baseline: bool = False) -> None:
        """One order snapshot (SDK Order or dict). With ``baseline`` an order we did not know
        is adopted as it stands (a look-up after a restart: no phantom fill); otherwise an
        unknown order counts from zero (a manual order seen on the stream)."""
        cid = str(field_of(snapshot, "client_order_id") or "")
        if not cid:
            return
        state = self._orders.get(cid)
        status = order_status(field_of(snapshot, "status"))
        qty = dec(field_of(snapshot, "filled_qty")) or ZERO
        notional = filled_notional(snapshot)
        if state is None:
            state = self._orders[cid] = _State(poll_interval=self.poll_after)
            if baseline:
                state.filled_qty, state.filled_notional, state.status = qty, notional, status
                state.heard_at = self._monotonic()
                return
        if state.submitting:
            state.held.append(snapshot)
            return
        state.heard_at = self._monotonic()
        state.misses = 0
        delta = qty - state.filled_qty
        if delta < 0 or (delta == 0 and _behind(status, state.status)):
            return  # an older answer (a held POST reply after the stream's fill): nothing new
        changed = status is not state.status
        if changed:
            state.poll_interval = self.poll_after
        state.status = status
        if delta > 0:
            price = (notional - state.filled_notional) / delta
            state.filled_qty, state.filled_notional = qty, notional
            order = to_order(snapshot)
            fill = Fill(
                order_id=order.order_id,
                client_order_id=cid,
                symbol=order.symbol,
                side=order.side,
                qty=float(delta),
                price=float(price),
                fee=0.0,  # Alpaca charges no commission on US equities
                ts=self._now(),
            )
            self._emit(OrderFilled(ts=fill.ts, fill=fill, order=order))
        elif changed and not status.is_open:
            self._emit(OrderUpdated(ts=self._now(), order=to_order(snapshot)))
        if changed and not status.is_open:
            self._finished += 1
            if self._finished > KEEP_FINISHED:
                self._forget_oldest_finished()

    def _forget_oldest_finished(self) -> None:
        for cid, state in list(self._orders.items()):
            if state.status is not None and not state.status.is_open and not state.submitting:
                del self._orders[cid]
                self._finished -= 1
                if self._finished <= KEEP_FINISHED // 2:
                    return

    def discard(self, client_order_id: str) -> None:
        """Alpaca refused the order outright: there is nothing to watch."""
        self._orders.pop(client_order_id, None)

    def missed(self, client_order_id: str, give_up_after: int = 5) -> None:
        """A look-up found no such order; after a few misses stop looking."""
        state = self._orders.get(client_order_id)
        if state is None:
            return
        state.misses += 1
        if state.misses >= give_up_after and state.status is None:
            del self._orders[client_order_id]

    # -- polling -----------------------------------------------------------------------------

    def open_ids(self) -> list[str]:
        return [
            cid
            for cid, s in self._orders.items()
            if not s.submitting and (s.status is None or s.status.is_open)
        ]

    def due_for_poll(self) -> list[str]:
        """Open orders not heard of for their poll interval; each interval then doubles."""
        now = self._monotonic()
        due = []
        for cid in self.open_ids():
            state = self._orders[cid]
            if now - state.heard_at >= state.poll_interval:
                due.append(cid)
                state.heard_at = now
                state.poll_interval = min(self.poll_max, state.poll_interval * 2)
        return due
