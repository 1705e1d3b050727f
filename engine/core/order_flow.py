"""The engine's order flow: write-ahead submits, settlement with the broker, the order watch.

Split from ``engine.core.engine`` so each file has one job: ``Engine`` decides (bars, strategy,
risk, commands); this base class keeps the promises about orders once one is decided — the intent is
journaled before the broker hears of it, an unknown outcome is looked up and never resent, every
fill the broker made reaches the journal as a fill (engine.orderbook merges every answer
forward), and no broker call holds the bar loop longer than its deadline.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TypeVar

from tapewatch.engine.core.broker import Broker, BrokerError, DuplicateClientOrderId
from tapewatch.engine.core.bus import EventBus
from tapewatch.engine.core.clock import Clock
from tapewatch.engine.core.feed import Feed
from tapewatch.engine.core.orderbook import OrderBook, Tracked
from tapewatch.engine.core.pnl import RealizedPnl
from tapewatch.engine.core.portfolio import PortfolioState, apply_fill
from tapewatch.engine.core.state import EngineState, OrderRow
from tapewatch.engine.model.events import (
    Event,
    Notice,
    OrderFilled,
    OrderIntended,
    OrderSubmitted,
    OrderUpdated,
)
from tapewatch.engine.model.types import Intent, Order, OrderRequest, OrderStatus
from tapewatch.engine.observability.latency import LatencyRecorder
from tapewatch.engine.settings.config import EngineConfig
from tapewatch.engine.storage.journal import EventJournal, JournalError

log = logging.getLogger("tapewatch.engine")

T = TypeVar("T")

# Kinds written to the journal. Everything else is published but not persisted.
JOURNALED = frozenset(
    {
        "session_started",
        "session_stopped",
        "bar",
        "signal",
        "intent",
        "risk_denied",
        "order_submitted",
        "order_updated",
        "fill",
        "breaker",
        "trading_state",
        "day_started",
        "equity",
        "operator",
        "account_adopted",
        "notice",
    }
)

WATCH_EVERY = 2.0  # seconds between checks of open orders in paper and live sessions
UNRESOLVED_GRACE = 60.0  # seconds before an intent the broker never heard of is given up
UNRESOLVED_MISSES = 3  # look-ups that must find nothing before that
INLINE_SUBMIT_WAIT = 2.0  # seconds a bar waits for a submit before it goes on without it


class OrderFlow:
    """Orders after the decision; ``Engine`` builds on it (the attributes below are its)."""

    config: EngineConfig
    clock: Clock
    broker: Broker
    journal: EventJournal | None
    bus: EventBus
    latency: LatencyRecorder
    state: EngineState
    portfolio: PortfolioState
    on_entry_stalled: Callable[[], None] | None
    _busy: bool
    _stopping: bool
    _feed: Feed | None

    def _init_order_flow(self) -> None:
        self.book = OrderBook()  # our orders: intents, merged broker views, journaled fills
        self._unwritten: list[Event] = []
        self._fatal: JournalError | None = None
        self._acked: dict[str, float] = {}  # client_order_id -> perf_counter at ack (latency)
        self._submitting: set[str] = set()  # client order ids whose submit has not returned
        self._watcher: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Order | None]] = set()  # sends a storm outlasted
        self.realized = RealizedPnl()  # each closing fill's P&L, for the order log

    # ------------------------------------------------------------------ the journal
    def _journal_sink(self, event: Event) -> None:
        """Collect events for the journal; ``_flush`` writes them in one transaction.

        Intents are flushed before the order is sent (the write-ahead rule), operator actions
        and broker updates at once, and a bar's records once the bar is decided, so the
        decision never waits on a disk sync and a bar costs one commit, not one per record.
        """
        if event.kind in JOURNALED:
            self._unwritten.append(event)

    def _flush(self) -> None:
        if self._unwritten and self.journal is not None:
            batch = self._unwritten
            self._unwritten = []
            self.journal.append_many(batch)

    def _flush_or_fail(self) -> None:
        """Flush from a callback (stream fill, timer) where nobody could catch an error: a
        journal that cannot record stops trading at once, and ``run`` then raises the error."""
        try:
            self._flush()
        except JournalError as exc:
            if self._fatal is None:
                self._fatal = exc
                log.error("journal failed outside a bar; trading stopped: %s", exc)
                self._stopping = True  # no new orders from here on
                if self._feed is not None:
                    self._feed.stop()

    def _emit(self, event: Event) -> None:
        self.bus.publish(event)

    # ------------------------------------------------------------------ settlement
    async def _resolve_in_flight_intents(self, history: list[Event]) -> None:
        """After a restart, settle every order the journal left open against the broker: its
        fills are journaled as fills, an intent the broker never received is closed."""
        await self.settle_open_orders("start-up")

    async def settle_open_orders(self, reason: str = "check") -> int:
        """Look up every open or unresolved order of ours (not one being submitted) and journal
        what the broker says, fills included. Returns how many are still open."""
        for tracked in self.book.open_orders():
            if tracked.client_order_id in self._submitting or self._stopping:
                continue
            await self._settle(tracked, reason)
        self._flush_or_fail()
        self._sync_in_flight()
        return self.book.open_count()

    async def _settle(self, tracked: Tracked, reason: str) -> None:
        cid = tracked.client_order_id
        try:
            order = await self._deadline(self.broker.get_order_by_client_id(cid))
        except (BrokerError, TimeoutError) as exc:
            text = str(exc) or "no answer in time"
            self._emit(Notice(ts=self.clock.now(), level="warning", message=f"{cid}: {text}"))
            return
        if order is None:
            self._settle_missing(tracked, reason)
            return
        self._record_view(order)

    def _settle_missing(self, tracked: Tracked, reason: str) -> None:
        """The broker has no such order. At start-up (one writer, the old process is gone) it
        never reached the broker; in a running session only after repeated misses."""
        if tracked.order is not None:
            return  # the broker knew it once: a miss now is a glitch, keep looking
        misses = self.book.missed(tracked.client_order_id)
        now = self.clock.now()
        age = (now - tracked.intended_at).total_seconds() if tracked.intended_at else 1e9
        if reason != "start-up" and (misses < UNRESOLVED_MISSES or age < UNRESOLVED_GRACE):
            return
        order = Order(
            order_id="",
            client_order_id=tracked.client_order_id,
            symbol=tracked.symbol,
            side=tracked.side,
            qty=tracked.qty,
            status=OrderStatus.REJECTED,
            reason="never reached the broker; not resent",
        )
        self.book.observe(order)
        self._emit(OrderUpdated(ts=now, order=order))
        self._update_row(order)

    def _record_view(self, order: Order) -> None:
        """Merge a broker view found by a look-up and journal what it adds: the fills the
        journal lacks (as fills), or the order's end."""
        tracked = self.book.get(order.client_order_id)
        before = tracked.order if tracked is not None else None
        merged = self.book.observe(order)
        now = self.clock.now()
        fill = self.book.unjournaled_fill(merged, now)
        if fill is not None:
            self._apply_fill_event(OrderFilled(ts=now, fill=fill, order=merged))
        elif before is None or before.status is not merged.status:
            self._emit(OrderUpdated(ts=now, order=merged))
        self._update_row(merged)

    def _apply_fill_event(self, event: OrderFilled) -> bool:
        """Book and portfolio take a fill once; a duplicate (more than the order's size) is
        dropped with a warning. Returns whether it was applied."""
        fill = event.fill
        tracked = self.book.get(fill.client_order_id)
        size = max(tracked.qty, event.order.qty) if tracked is not None else 0.0
        if tracked is not None and tracked.journaled_qty + fill.qty > size + 1e-6:
            message = f"{fill.client_order_id}: ignored a fill beyond the order's quantity"
            self._emit(Notice(ts=self.clock.now(), level="warning", message=message))
            return False
        if tracked is None:  # an order we never sent (say, a manual trade on the stream)
            self.book.observe(replace(event.order, filled_qty=0.0, filled_avg_price=None))
        gain = self.realized.on_fill(self.portfolio.positions.get(fill.symbol), fill)
        apply_fill(self.portfolio, fill)
        if gain is not None:
            row = self.state.order_row(fill.client_order_id)
            if row is not None:
                row.realized_pnl = (row.realized_pnl or 0.0) + gain
        self.book.record_fill(fill)
        self._emit(event)
        return True

    def _sync_in_flight(self) -> None:
        self.state.in_flight = self.book.open_count()

    async def _deadline(self, awaitable: Awaitable[T]) -> T:
        """A broker call bounded by ``order_deadline_seconds``: a storm never holds the bar loop."""
        return await asyncio.wait_for(awaitable, self.config.risk.order_deadline_seconds)

    def _update_row(self, order: Order) -> None:
        row = self.state.order_row(order.client_order_id)
        if row is not None:
            self._apply_order_to_row(row, order)

    # -- the watcher (paper and live): unresolved intents, silent orders, stale entries --------
    def start_watch(self, every: float = WATCH_EVERY) -> None:
        """Check our open orders every ``every`` seconds (a task on the running loop)."""
        if self._watcher is None:
            self._watcher = asyncio.get_running_loop().create_task(
                self._watch_forever(every), name="tapewatch-order-watch"
            )

    async def _watch_forever(self, every: float) -> None:
        while not self._stopping:
            await asyncio.sleep(every)
            try:
                await self.watch_once()
            except Exception:  # a bug here must not end the watching for good
                log.exception("order watch failed")

    async def watch_once(self) -> None:
        """Settle unresolved intents; cancel entries unfilled for ``entry_timeout_seconds``."""
        if self._stopping or self._busy:
            return
        now = self.clock.now()
        timeout = self.config.risk.entry_timeout_seconds
        for tracked in self.book.open_orders():
            cid = tracked.client_order_id
            if cid in self._submitting or self._stopping:
                continue
            if tracked.unresolved:
                await self._settle(tracked, "watch")
                continue
            age = (now - tracked.intended_at).total_seconds() if tracked.intended_at else 0.0
            if tracked.intent is Intent.ENTRY and age >= timeout and tracked.journaled_qty == 0:
                await self._cancel_stale_entry(tracked, age)
        self._flush_or_fail()
        self._sync_in_flight()
        self.state.touch()

    async def _cancel_stale_entry(self, tracked: Tracked, age: float) -> None:
        cid = tracked.client_order_id
        self._emit(
            Notice(
                ts=self.clock.now(),
                level="warning",
                message=f"{cid}: entry unfilled after {age:.0f} s (market closed?); cancelling",
            )
        )
        if self.on_entry_stalled is not None:
            self.on_entry_stalled()
        try:
            order = await self._deadline(self.broker.cancel_order(cid))
        except (BrokerError, TimeoutError) as exc:
            text = str(exc) or "no answer in time"
            self._emit(Notice(ts=self.clock.now(), level="warning", message=f"{cid}: {text}"))
            return
        if order is not None:
            self._record_view(order)

    # ------------------------------------------------------------------ submitting
    async def _submit(
        self, request: OrderRequest, decided: float | None = None, *, why: str = ""
    ) -> Order | None:
        """Journal the intent, then send; an unknown outcome is looked up, never resent.

        The order is in the book (open, outcome unknown) from the moment its intent is
        journaled, so exposure counts it whatever the broker does next. ``why`` is the decision
        behind it (the rule's values, the operator's flatten), for the order log."""
        now = self.clock.now()
        if self._stopping:
            self._emit(
                Notice(
                    ts=now, level="info", message=f"stopping: {request.client_order_id} not sent"
                )
            )
            return None
        cid = request.client_order_id
        if cid in self.book:
            self._emit(
                Notice(ts=now, level="warning", message=f"{cid} was already sent; not resent")
            )
            return None
        self._emit(OrderIntended(ts=now, request=request))
        self.book.intend(request, now)
        self._flush()  # durable before the broker hears of it
        row = OrderRow(
            time=now,
            client_order_id=cid,
            side=request.side.value,
            qty=request.qty,
            symbol=request.symbol,
            status="new",
            intent=request.intent.value,
            why=why,
        )
        self.state.orders.appendleft(row)
        self._sync_in_flight()
        sent = time.perf_counter()
        if decided is not None:  # risk gate + write-ahead journal, the cost of being careful
            self.latency.record("decision_to_submit", sent - decided)
        send = asyncio.get_running_loop().create_task(self._send(request, row, sent))
        done, _ = await asyncio.wait({send}, timeout=min(INLINE_SUBMIT_WAIT, self._deadline_s))
        if send in done:
            return send.result()
        # A storm: the bar loop goes on; the order stays open (outcome unknown) in the book and
        # the send finishes, or gives up at its deadline, in the background.
        self._background.add(send)
        send.add_done_callback(self._background.discard)
        message = f"{cid}: the broker is slow to answer; bars go on, the order counts as open"
        self._emit(Notice(ts=self.clock.now(), level="warning", message=message))
        return None

    @property
    def _deadline_s(self) -> float:
        return self.config.risk.order_deadline_seconds

    async def _send(self, request: OrderRequest, row: OrderRow, sent: float) -> Order | None:
        """Submit within the deadline; an error or no answer means "look it up", never resend."""
        cid = request.client_order_id
        order: Order | None
        self._submitting.add(cid)
        try:
            order = await self._deadline(self.broker.submit_order(request))
        except DuplicateClientOrderId:
            order = await self._lookup(cid)
        except (BrokerError, TimeoutError) as exc:
            text = str(exc) or f"no answer in {self._deadline_s:g} s"
            message = f"{cid}: {text}; looking it up"
            self._emit(Notice(ts=self.clock.now(), level="warning", message=message))
            order = await self._lookup(cid)
        finally:
            self._submitting.discard(cid)
        ack = time.perf_counter()
        latency = ack - sent
        self.latency.record("submit_to_ack", latency)
        row.latency = latency
        if order is None:
            row.status = "unknown"
            row.reason = "outcome unknown; counted as open until the broker answers"
            self._flush_or_fail()
            self.state.touch()
            return None
        merged = self.book.observe(order)
        self._emit(OrderSubmitted(ts=self.clock.now(), order=order, latency=latency))
        self._flush_or_fail()
        if merged.status.is_open:
            self._acked[cid] = ack
        self._sync_in_flight()
        self._apply_order_to_row(row, merged)
        self.state.touch()
        return merged

    async def _lookup(self, cid: str) -> Order | None:
        try:
            return await self._deadline(self.broker.get_order_by_client_id(cid))
        except (BrokerError, TimeoutError) as exc:
            text = str(exc) or "no answer in time"
            self._emit(Notice(ts=self.clock.now(), level="error", message=f"{cid}: {text}"))
            return None

    @staticmethod
    def _apply_order_to_row(row: OrderRow, order: Order) -> None:
        row.status = order.status.value
        if order.filled_avg_price is not None:
            row.fill_price = order.filled_avg_price
        if order.reason:
            row.reason = order.reason

    def _on_broker_event(self, event: Event) -> None:
        """Order updates and fills from the broker (SimBroker inline, Alpaca from its stream),
        merged into the book so a late or repeated answer never moves an order back."""
        if isinstance(event, OrderFilled):
            if not self._apply_fill_event(event):
                return
            merged = self.book.observe(event.order)
            acked = self._acked.get(event.order.client_order_id)
            if acked is not None and not merged.status.is_open:
                del self._acked[event.order.client_order_id]
                self.latency.record("ack_to_fill", time.perf_counter() - acked)
            self._update_row(merged)
        elif isinstance(event, OrderUpdated):
            tracked = self.book.get(event.order.client_order_id)
            before = tracked.order.status if tracked is not None and tracked.order else None
            merged = self.book.observe(event.order)
            if before is merged.status and tracked is not None and tracked.order is not None:
                return  # nothing new (a replay, or an answer older than what we know)
            if not merged.status.is_open:
                self._acked.pop(merged.client_order_id, None)
            self._update_row(merged)
            self._emit(OrderUpdated(ts=event.ts, order=merged))
        else:
            self._emit(event)
        self._sync_in_flight()
        if not self._busy:
            self._flush_or_fail()  # outside a bar (Alpaca's stream): record it now
        self.state.touch()
