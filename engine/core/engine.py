"""The trading engine: closed bars in, decisions through the risk gate, orders to the broker.

One engine serves backtest, demo, paper and live alike; they differ only in the feed, broker,
clock and journal plugged in (see engine/wiring.py). The per-bar path is kept lean because the
backtester drives it a million times. Commands (pause, resume, flatten, reset, switch) are the
only way in from outside; events and ``state`` are the only way out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from tapewatch.engine.core.attendance import Attendance
from tapewatch.engine.core.broker import Broker, BrokerError
from tapewatch.engine.core.bus import EventBus, Subscription
from tapewatch.engine.core.clock import Clock
from tapewatch.engine.core.confirm import CONFIRM_MODES, HeldOrder, OrderHold
from tapewatch.engine.core.feed import Feed, PacedFeed, SignalSkippingFeed
from tapewatch.engine.core.operator import operator_identity
from tapewatch.engine.core.order_flow import OrderFlow
from tapewatch.engine.core.orderbook import OrderBook
from tapewatch.engine.core.portfolio import PortfolioState, rebuild
from tapewatch.engine.core.state import EngineState, OrderRow
from tapewatch.engine.model.events import (
    AccountAdopted,
    BarClosed,
    BreakerChanged,
    DayStarted,
    EquitySnapshot,
    Event,
    Notice,
    OperatorAction,
    RiskDenied,
    SessionStarted,
    SessionStopped,
    SignalEvaluated,
    TradingStateChanged,
)
from tapewatch.engine.model.types import (
    AccountSnapshot,
    Bar,
    Intent,
    Mode,
    Order,
    OrderRequest,
    Side,
    TradingState,
    client_order_id,
)
from tapewatch.engine.observability.health import ReportsHealth, StreamHealth
from tapewatch.engine.observability.latency import LatencyRecorder
from tapewatch.engine.risk.base import BreakerStatus, RiskDecision
from tapewatch.engine.risk.gate import LatchedBreaker, RiskGate
from tapewatch.engine.settings.config import EngineConfig
from tapewatch.engine.settings.errors import TapewatchError
from tapewatch.engine.storage.journal import EventJournal
from tapewatch.engine.strategy.bar_checks import bar_problem
from tapewatch.engine.strategy.rsi_sma import RsiSmaStrategy

log = logging.getLogger("tapewatch.engine")

T = TypeVar("T")

ET = ZoneInfo("America/New_York")

STOP_WAIT = 5.0  # seconds stop() waits for the bar in hand
MIN_EXIT_QTY = 1e-9  # an exit of this many shares or fewer is not sent
MIN_FLATTEN_QTY = 1e-12  # flatten leaves a position smaller than this alone


class EngineCommandError(TapewatchError):
    """A command was refused; the message says why and what to do instead. The handle turns
    it into a ``Refused`` reply at the API boundary, so no front end ever catches it."""


def _always_open(_: datetime) -> bool:
    return True


class Engine(OrderFlow):
    def __init__(
        self,
        config: EngineConfig,
        *,
        clock: Clock,
        broker: Broker,
        journal: EventJournal | None = None,
        mode: Mode = Mode.BACKTEST,
        account: str = "",
        endpoint: str = "",
        in_session: Callable[[datetime], bool] = _always_open,
        latency: LatencyRecorder | None = None,
        who: str | None = None,
        entry_hours: Callable[[datetime], bool] | None = None,
        history: bool = False,
    ) -> None:
        """``in_session`` tells the stale-data breaker when silence matters; ``entry_hours``
        (paper/live) refuses new entries outside the regular session. ``history`` (a
        backtest) changes two things a supervised session would do differently: holes in
        old data are not a silent feed (no stale-data trips), and a tripped breaker re-arms
        at the next session, as the operator's morning reset would, with a notice."""
        self.config = config
        self.clock = clock
        self.broker = broker
        self.journal = journal
        self.mode = mode
        self.latency = latency or LatencyRecorder()
        self.who = who or operator_identity()
        self._entry_hours = entry_hours
        strat = config.strategy
        self.symbol = strat.symbol
        self.timeframe = strat.tf
        self.strategy = RsiSmaStrategy(strat)
        self.gate = RiskGate(
            config.risk, self.timeframe.seconds, in_session, watch_staleness=not history
        )
        self._rearm_each_session = history
        self._in_session = in_session
        self.attendance = Attendance(None, clock.now())  # armed by a host that can be attached
        # Confirm mode: strategy orders wait for the operator (never in a backtest: nobody
        # is there to answer).
        confirm = config.confirm
        self.hold = OrderHold("off" if history else confirm.orders, confirm.timeout_seconds)
        self._hold_tasks: set[asyncio.Task[None]] = set()
        self.bus = EventBus()
        self._init_order_flow()
        if journal is not None:
            self.bus.add_sink(self._journal_sink)
        self.portfolio = PortfolioState(cash=config.starting_cash, positions={})
        self.state = EngineState(
            mode=mode,
            account=account,
            endpoint=endpoint,
            symbol=self.symbol,
            timeframe=self.timeframe.label,
        )
        self._next_day_boundary: datetime | None = None
        self._day = ""  # the New York trading day of the last bar, ISO date
        self._stale_margin = timedelta(seconds=config.risk.stale_bars * self.timeframe.seconds)
        self._feed: Feed | None = None
        self._stopping = False
        self._started = False
        self._busy = False
        self._last_bar_ts: datetime | None = None
        # The newest operator action (not a quit), for the header: what, when and who.
        self.last_action: OperatorAction | None = None
        # False when the asset or the account cannot trade fractional shares (live wiring
        # reads both at start-up): entries are then sized in whole shares.
        self.allow_fractional = True
        # Told when an entry sat unfilled past its timeout: the market may have closed (live
        # wiring re-reads Alpaca's clock, whose answer then refuses new entries).
        self.on_entry_stalled: Callable[[], None] | None = None
        broker.set_listener(self._on_broker_event)

    # ------------------------------------------------------------------ plumbing
    def subscribe(self, maxsize: int = 4096) -> Subscription:
        return self.bus.subscribe(maxsize)

    def _emit_breakers(self, changes: list[BreakerChanged]) -> None:
        if not changes:
            return

        before = self.state.trading_state
        for change in changes:
            self._emit(change)
        after = self.gate.state
        self.state.paused = self.gate.operator_pause.status(self.clock.now()).tripped
        if after != before:
            self.state.trading_state = after
            reason = changes[-1].reason
            self._emit(
                TradingStateChanged(ts=self.clock.now(), old=before, new=after, reason=reason)
            )
        if not self._busy:
            self._flush_or_fail()
        self.state.touch()

    # ------------------------------------------------------------------ lifecycle
    async def start(self, *, starting_cash: float | None = None) -> None:
        """Restore what the journal knows (portfolio, breakers, day), then announce the session."""
        now = self.clock.now()
        account = await self.broker.get_account()
        cash = starting_cash if starting_cash is not None else account.cash
        history = self._restore_from_journal()
        if not history:
            self.portfolio = PortfolioState(cash=cash, positions={})
        self._emit(
            SessionStarted(
                ts=now,
                mode=self.mode.value,
                account=self.state.account,
                starting_cash=cash,
                symbol=self.symbol,
                timeframe=self.timeframe.label,
            )
        )
        self._flush()
        await self._resolve_in_flight_intents(history)
        self._flush()
        self.state.cash = account.cash
        self.state.equity = account.equity
        if not self.gate.day_start_equity:
            self.gate.start_day("", account.equity)
        self.state.day_start_equity = self.gate.day_start_equity or 0.0
        self.state.trading_state = self.gate.state
        self.state.paused = self.gate.operator_pause.status(now).tripped
        self.state.running = True
        self._started = True
        self.state.touch()

    def _restore_from_journal(self) -> list[Event]:
        """Portfolio, breakers, the day and the newest bar used, from the journal's events
        (returned, so start-up reads the journal once)."""
        if self.journal is None:
            return []
        events = [event for _, event in self.journal.events()]
        if not events:
            return []
        self.portfolio = rebuild(events)
        self.book = OrderBook.from_events(events)
        symbol = self.symbol
        used = [e.bar.ts for e in events if isinstance(e, BarClosed) and e.bar.symbol == symbol]
        if used:
            self._last_bar_ts = max(used)  # a bar resent after a restart was already decided
        breakers = [e for e in events if isinstance(e, BreakerChanged)]
        self.gate.restore(breakers)
        days = [e for e in events if isinstance(e, DayStarted)]
        if days:
            self.gate.start_day(days[-1].day, days[-1].starting_equity)
            self._day = days[-1].day
        self.realized.replay(events)
        acts = [e for e in events if isinstance(e, OperatorAction) and e.action != "quit"]
        if acts:
            self.last_action = acts[-1]  # a restored pause still says who paused, and when
        return events

    async def run(self, feed: Feed) -> None:
        """Warm up from the feed's history, then trade each closed bar until the feed ends."""
        self._feed = feed
        if not self._started:
            await self.start()
        self.warm(feed.warmup())
        if self.mode in (Mode.PAPER, Mode.LIVE):
            self.start_watch()
        async for bar in feed.bars():
            if self._stopping:
                break
            await self.on_bar(bar)
        if self._fatal is not None:
            raise self._fatal

    def warm(self, bars: Iterable[Bar]) -> None:
        """Prime the indicators (and the charts) from history: no orders, nothing journaled."""
        strategy = self.strategy
        state = self.state
        for bar in bars:
            if bar_problem(bar, None) is not None:
                continue  # a bad history bar must not poison the indicators
            strategy.warm(bar)
            if self._last_bar_ts is None or bar.ts > self._last_bar_ts:
                self._last_bar_ts = bar.ts  # never back: history older than the journal's newest
            state.bars.append(bar)
            state.rsi.append(strategy.rsi)
            state.sma.append(strategy.sma)
            self.gate.on_bar(bar.ts + self.timeframe.delta)
        state.touch()

    async def stop(self, reason: str = "stopped", *, who: str | None = None) -> None:
        """Stop taking bars; no new orders after this returns. Pending orders are left as they are.

        ``who`` marks an operator's quit, journaled as an operator action."""
        if self._stopping:
            return
        if who is not None:
            self._operator("quit", who, reason)
        self._stopping = True
        if self._feed is not None:
            self._feed.stop()
        # Let the bar in hand finish so the journal stays consistent, but never wait long: its
        # intent is already journaled, and whatever the broker did is settled at the next start.
        # The stop record is written even if whoever awaits this gives up first (cancels it).
        loop = asyncio.get_running_loop()
        until = loop.time() + STOP_WAIT
        try:
            while self._busy and loop.time() < until:
                await asyncio.sleep(0.005)
        finally:
            watcher, self._watcher = self._watcher, None
            if watcher is not None:
                watcher.cancel()
            for send in list(self._background):  # journaled intents: settled at the next start
                send.cancel()
            for task in list(self._hold_tasks):
                task.cancel()
            for held in self.hold.clear():
                self._skip_held(held, f"not sent: {reason}")
            self.state.running = False
            self._emit(SessionStopped(ts=self.clock.now(), reason=reason))
            self._flush()
            self.state.touch()
            self.bus.close()

    # ------------------------------------------------------------------ the bar path
    async def on_bar(self, bar: Bar) -> None:
        if bar.symbol != self.symbol or self._stopping:
            return
        problem = bar_problem(bar, self._last_bar_ts)
        if problem is not None:
            stamp = bar.ts.isoformat()
            message = f"ignored the {bar.symbol} bar of {stamp}: {problem}"
            self._emit(Notice(ts=self.clock.now(), level="warning", message=message))
            self._flush_or_fail()
            self.state.touch()
            return
        late = (self.clock.now() - (bar.ts + self.timeframe.delta)).total_seconds()
        if late > self.config.risk.late_bar_seconds:
            self._take_late_bar(bar, late)
            return
        self._busy = True
        try:
            await self.process_bar(bar)
        finally:
            self._busy = False

    def _take_late_bar(self, bar: Bar, late: float) -> None:
        """A bar closed long ago (a backlog after an outage, a back-fill): it updates the
        indicators and charts but decides nothing, and the journal says so."""
        self._last_bar_ts = bar.ts
        self.warm([bar])
        self._emit(BarClosed(ts=self.clock.now(), bar=bar, warmup=True))
        message = (
            f"the {bar.symbol} bar of {bar.ts.isoformat()} arrived {late:.0f} s after its close: "
            "indicators updated, no order placed"
        )
        self._emit(Notice(ts=self.clock.now(), level="warning", message=message))
        self._flush_or_fail()

    async def process_bar(
        self,
        bar: Bar,
        indicators: tuple[float | None, float | None] | None = None,
        *,
        schedule_stale_check: bool = True,
    ) -> None:
        """The whole per-bar path. ``indicators`` are (rsi, sma) when the caller (the backtest
        loop) has already fed this bar to the strategy's indicators."""
        started = time.perf_counter()
        now = self.clock.now()
        self._last_bar_ts = bar.ts
        boundary = self._next_day_boundary
        if boundary is None or bar.ts >= boundary:
            self.roll_day(bar.ts, now, self.state.equity or self.portfolio.cash)
        broker = self.broker
        await broker.on_bar(bar)
        if self.hold:  # a deadline passed before this bar closed: after its fills, so an
            await self.expire_held()  # exit sent now fills no earlier than the next open
        account = await broker.get_account()
        equity = account.equity
        state = self.state
        state.cash = account.cash
        state.equity = equity
        gate = self.gate
        close_time = bar.ts + self.timeframe.delta
        gate.on_bar(close_time)
        unattended = self.attendance.due(now, self._in_session(now))
        if unattended is not None:
            self._operator("unattended_pause", "tapewatch", unattended)
            self._emit_breakers(gate.pause(now, unattended))
        changes = gate.on_equity(equity, now)
        if changes:
            self._emit_breakers(changes)
            if gate.drawdown.tripped and gate.drawdown.action == "flatten":
                await self._close_all(self.preview_flatten(), why="drawdown breaker: flatten")
        self._emit(BarClosed(ts=now, bar=bar))
        position = self.portfolio.positions.get(self.symbol)
        position_qty = position.qty if position is not None else 0.0
        # Exposure is position plus open orders: an entry still working (or of unknown
        # outcome) means "not flat", so a second buy signal cannot stack another entry.
        exposure = position_qty + self.book.open_buy_qty(self.symbol)
        if indicators is None:
            signal = self.strategy.evaluate(bar, exposure, ts=now)
        else:
            signal = self.strategy.decide(bar, exposure, *indicators, ts=now)
        state.bars.append(bar)
        state.rsi.append(signal.rsi)
        state.sma.append(signal.sma)
        state.last_signal = signal
        state.positions = {p.symbol: p for p in account.positions}
        self._emit(signal)
        if signal.action != "hold" and self._order_open(signal):
            self.latency.record("bar_to_decision", time.perf_counter() - started)
        elif signal.action != "hold":
            request = self._request_for(signal, bar, position_qty, equity)
            if request is not None:
                self.latency.record("bar_to_decision", time.perf_counter() - started)
                await self._route(request, position_qty, self.strategy.reason(signal))
        else:
            self.latency.record("bar_to_decision", time.perf_counter() - started)
        self._emit(
            EquitySnapshot(
                ts=now,
                cash=account.cash,
                equity=equity,
                day_start_equity=gate.day_start_equity or 0.0,
                positions=account.positions,
            )
        )
        if schedule_stale_check:
            self.clock.call_at(close_time + self._stale_margin + _EPSILON, self._check_stale)
        self._flush()
        state.touch()

    def roll_day(self, bar_ts: datetime, now: datetime, equity: float) -> None:
        """A bar of a new New York day: the drawdown breaker measures from ``equity`` (the
        equity at the previous close). Also used by the backtest loop."""
        local = bar_ts.astimezone(ET)
        day = local.date()
        midnight = datetime(day.year, day.month, day.day, tzinfo=ET) + timedelta(days=1)
        self._next_day_boundary = midnight.astimezone(UTC)
        label = day.isoformat()
        if self._day == label:
            return
        self._day = label
        self.gate.start_day(label, equity)
        self.state.day_start_equity = equity
        self._emit(DayStarted(ts=now, day=label, starting_equity=equity))
        if self._rearm_each_session:
            self._rearm(label, now)

    def _rearm(self, day: str, now: datetime) -> None:
        """History only: re-arm whatever tripped on an earlier day, and say so."""
        changes = self.gate.reset(now)
        if not changes:
            return
        names = ", ".join(change.name for change in changes)
        message = f"{names} breaker re-armed at the start of {day} (as a morning reset would)"
        self._emit(Notice(ts=now, level="info", message=message))
        self._emit_breakers(changes)

    @property
    def next_day_boundary(self) -> datetime | None:
        """Midnight New York time after the current trading day (None before the first bar)."""
        return self._next_day_boundary

    def check_stale(self) -> None:
        """Ask the stale-data breaker now (timers call this; so does the backtest loop)."""
        self._check_stale()

    def _check_stale(self) -> None:
        if self._stopping:
            return
        changes = self.gate.check_staleness(self.clock.now())
        if changes:
            self._emit_breakers(changes)

    def _order_open(self, signal: SignalEvaluated) -> bool:
        """At most one open order per symbol: a signal while one works (or waits for the
        operator's answer) places nothing."""
        working = [t.client_order_id for t in self.book.open_orders(self.symbol)]
        if self.hold:
            waiting = self.hold.pending
            working += [f"{h.client_order_id} (waiting for confirmation)" for h in waiting]
        if not working:
            return False
        cids = ", ".join(working)
        message = f"{signal.action} signal on {self.symbol} not acted on: {cids} still open"
        self._emit(Notice(ts=signal.ts, level="info", message=message))
        return True

    def _request_for(
        self, signal: SignalEvaluated, bar: Bar, position_qty: float, equity: float
    ) -> OrderRequest | None:
        if signal.action == "buy":
            side, intent = Side.BUY, Intent.ENTRY
            whole = not self.allow_fractional
            qty = self.strategy.entry_qty(equity, bar.close, whole_shares=whole)
            if qty <= 0:
                text = "entry size rounds to zero" + (" whole shares" if whole else "")
                self._emit(Notice(ts=signal.ts, level="warning", message=text))
                return None
        else:
            side, intent = Side.SELL, Intent.EXIT
            qty = position_qty - self.book.open_sell_qty(self.symbol)  # never more than held
            if qty <= MIN_EXIT_QTY:
                return None
        return OrderRequest(
            client_order_id=client_order_id(self.config.strategy_name, self.symbol, bar.ts, intent),
            symbol=self.symbol,
            side=side,
            qty=qty,
            intent=intent,
            bar_ts=bar.ts,
            estimated_price=bar.close,
        )

    def _decide(self, request: OrderRequest, position_qty: float) -> RiskDecision:
        """The risk gate's answer, and no new entries outside the session where that applies."""
        decision = self.gate.check(request, position_qty)
        if (
            decision.allowed
            and request.intent is Intent.ENTRY
            and self._entry_hours is not None
            and not self._entry_hours(self.clock.now())
        ):
            decision = RiskDecision(
                False, "session", "market closed: no new entries outside the regular session"
            )
        return decision

    def _deny(self, request: OrderRequest, decision: RiskDecision, why: str) -> None:
        now = self.clock.now()
        self._emit(
            RiskDenied(ts=now, request=request, breaker=decision.breaker, reason=decision.reason)
        )
        self._order_line(request, "denied", decision.reason, why)

    def _order_line(self, request: OrderRequest, status: str, reason: str, why: str) -> None:
        """A line in the order log for an order that never reached the broker."""
        self.state.orders.appendleft(
            OrderRow(
                time=self.clock.now(),
                client_order_id=request.client_order_id,
                side=request.side.value,
                qty=request.qty,
                symbol=request.symbol,
                status=status,
                reason=reason,
                intent=request.intent.value,
                why=why,
            )
        )

    async def _route(
        self, request: OrderRequest, position_qty: float, why: str = ""
    ) -> Order | None:
        decided = time.perf_counter()
        decision = self._decide(request, position_qty)
        if not decision.allowed:
            self._deny(request, decision, why)
            return None
        if self.hold.covers(request.intent):
            self._hold_order(request, why)
            return None
        return await self._submit(request, decided, why=why)

    # ------------------------------------------------------------------ confirm mode
    def _hold_order(self, request: OrderRequest, why: str) -> None:
        """Keep ``request`` until the operator answers or its deadline (engine clock) passes."""
        now = self.clock.now()
        held = self.hold.hold(request, why, now)
        after = "skipped" if not held.is_exit else "sent"
        seconds = self.hold.timeout.total_seconds()
        message = (
            f"{held.describe()} ({request.intent.value}) waits for confirmation: "
            f"{after} if not answered within {seconds:g} s"
        )
        self._emit(Notice(ts=now, level="info", message=message))
        self.clock.call_at(held.deadline, self._held_due)
        self.state.touch()

    def _held_due(self) -> None:
        """The clock's timer: act on whatever deadline has come, off the bar path."""
        if self._stopping or not self.hold:
            return
        task = asyncio.get_running_loop().create_task(self._expire_when_free())
        self._hold_tasks.add(task)
        task.add_done_callback(self._hold_tasks.discard)

    async def _expire_when_free(self) -> None:
        """Not in the middle of a bar: its fills come first (the bar expires what is due after
        them); ask again a moment later in case it had passed that point."""
        if self._busy:
            self.clock.call_at(self.clock.now() + _HOLD_RETRY, self._held_due)
            return
        await self.expire_held()

    async def expire_held(self) -> None:
        """Past its deadline an entry is skipped (never sent late) and an exit is sent."""
        seconds = self.hold.timeout.total_seconds()
        for held in self.hold.due(self.clock.now()):
            if held.is_exit:
                message = (
                    f"{held.describe()} exit not confirmed within {seconds:g} s: sent anyway "
                    "(an exit is never dropped)"
                )
                self._emit(Notice(ts=self.clock.now(), level="warning", message=message))
                await self._release(held)
            else:
                self._skip_held(
                    held, f"not confirmed within {seconds:g} s: skipped, never sent late"
                )
        self._flush_or_fail()
        self.state.touch()

    def _skip_held(self, held: HeldOrder, reason: str) -> None:
        message = f"{held.describe()} {held.request.intent.value} {reason}"
        self._emit(Notice(ts=self.clock.now(), level="warning", message=message))
        self._order_line(held.request, "skipped", reason, held.why)
        self.state.touch()

    async def _release(self, held: HeldOrder) -> Order | None:
        """Send a held order now, through the gate again: the state may have moved since."""
        request = held.request
        position = self.portfolio.positions.get(request.symbol)
        position_qty = position.qty if position is not None else 0.0
        if held.is_exit:
            left = min(request.qty, position_qty - self.book.open_sell_qty(request.symbol))
            if left <= MIN_EXIT_QTY:
                self._skip_held(held, "not sent: nothing left to sell")
                return None
            request = replace(request, qty=left)
        decision = self._decide(request, position_qty)
        if not decision.allowed:
            self._deny(request, decision, held.why)
            return None
        return await self._submit(request, time.perf_counter(), why=held.why)

    async def confirm_order(self, client_order_id: str, who: str | None = None) -> Order | None:
        """The operator's yes: send it now. An entry past its deadline is refused (skipped)."""
        held = self.hold.get(client_order_id)
        if held is None:
            raise EngineCommandError(f"{client_order_id} is not waiting for confirmation")
        if not held.is_exit and self.clock.now() >= held.deadline:
            await self.expire_held()
            raise EngineCommandError(
                f"too late: {held.describe()} was not confirmed in time and is skipped"
            )
        self.hold.take(client_order_id)
        self._operator("confirm_order", who, f"{held.describe()} {client_order_id}")
        order = await self._release(held)
        self._flush_or_fail()
        self.state.touch()
        return order

    async def skip_order(self, client_order_id: str, who: str | None = None) -> None:
        """The operator's no for an entry. An exit is not skipped: it goes at its deadline."""
        held = self.hold.get(client_order_id)
        if held is None:
            raise EngineCommandError(f"{client_order_id} is not waiting for confirmation")
        if held.is_exit:
            raise EngineCommandError(
                "an exit is not skipped: it is sent when its time runs out (y sends it now; "
                "flatten closes at once)"
            )
        self.hold.take(client_order_id)
        self._operator("skip_order", who, f"{held.describe()} {client_order_id}")
        self._skip_held(held, f"skipped by {who or self.who}")
        self._flush_or_fail()

    def set_confirm_mode(self, mode: str, who: str | None = None) -> str:
        """Which strategy orders wait for the operator from the next one on (journaled)."""
        if mode not in CONFIRM_MODES:
            raise EngineCommandError(
                f"confirm mode must be one of {', '.join(CONFIRM_MODES)}, not {mode!r}"
            )
        if self._rearm_each_session:
            raise EngineCommandError("a backtest has nobody to confirm orders")
        old = self.hold.mode
        self.hold.mode = mode
        self._operator("confirm_mode", who, f"{old} -> {mode}")
        self.state.touch()
        return mode

    # ------------------------------------------------------------------ commands
    def _operator(self, action: str, who: str | None, detail: str = "") -> None:
        event = OperatorAction(
            ts=self.clock.now(), action=action, who=who or self.who, detail=detail
        )
        if action != "quit":
            self.last_action = event
        self._emit(event)
        self._flush()

    def arm_attendance(self) -> None:
        """A host a console can attach to (the embedded console, a served headless run) arms
        the dead-man's switch: a paper or live engine unwatched for ``[risk]
        unattended_pause_after`` pauses new entries. Simulations are never paused for it."""
        if self.mode in (Mode.PAPER, Mode.LIVE):
            self.attendance.arm(self.config.risk.unattended_seconds, self.clock.now())

    def set_attached(self, clients: int) -> None:
        """The host's count of attached consoles (the dead-man's switch counts from 0)."""
        self.attendance.attached(clients, self.clock.now())

    async def pause(self, who: str | None = None, reason: str = "paused by operator") -> None:
        """No new entries from now on; exits and flatten still go through."""
        self._operator("pause", who, reason)
        self._emit_breakers(self.gate.pause(self.clock.now(), reason))

    async def resume(self, who: str | None = None) -> None:
        self._operator("resume", who)
        self._emit_breakers(self.gate.resume(self.clock.now()))

    async def reset_breaker(self, who: str | None = None, name: str | None = None) -> None:
        """Re-arm tripped breakers (one by name, or all): an explicit, journaled decision."""
        try:
            changes = self.gate.reset(self.clock.now(), name)
        except KeyError as exc:
            raise EngineCommandError(str(exc).strip("'\"")) from None
        self._operator("reset_breaker", who, name or "all")
        self._emit_breakers(changes)

    def adopt_account(self, snapshot: AccountSnapshot, differences: list[str]) -> None:
        """Take the broker's cash and positions as the truth (journaled, so a rebuild agrees)."""
        self._adopt(snapshot, differences)
        now = self.clock.now()
        for line in differences:
            self._emit(Notice(ts=now, level="warning", message=f"reconcile: {line}"))
        self._flush()
        self.state.touch()

    def _adopt(self, snapshot: AccountSnapshot, why: list[str]) -> None:
        """Replace the book with ``snapshot`` and journal it as an AccountAdopted."""
        positions = {p.symbol: p for p in snapshot.positions}
        self.portfolio = PortfolioState(cash=snapshot.cash, positions=dict(positions))
        self.state.cash = snapshot.cash
        self.state.equity = snapshot.equity
        self.state.positions = positions
        self._emit(
            AccountAdopted(
                ts=self.clock.now(),
                cash=snapshot.cash,
                positions=snapshot.positions,
                differences=tuple(why),
            )
        )

    def publish_breakers(self, changes: list[BreakerChanged]) -> None:
        """Publish breaker changes found off the bar path (e.g. the rate-limit poll):
        journaled, with the trading state and its change event kept in step."""
        if not self._stopping:
            self._emit_breakers(changes)

    # ------------------------------------------------------------------ seams for observers
    def add_sink(self, sink: Callable[[Event], None]) -> None:
        """Call ``sink`` with every event as it is published (metrics, audit, logs, reports)."""
        self.bus.add_sink(sink)

    def publish(self, event: Event) -> None:
        """Publish an event from outside the engine (a feed's notice); journaled by kind."""
        self._emit(event)
        if not self._busy:
            self._flush_or_fail()

    def add_breaker(self, breaker: LatchedBreaker) -> None:
        """One more breaker in the risk gate (the composition root adds the rate-limit one)."""
        self.gate.add(breaker)

    def breaker_statuses(self, now: datetime | None = None) -> list[BreakerStatus]:
        """Every breaker's value, threshold and state at ``now`` (default: the engine's now)."""
        return self.gate.statuses(now or self.clock.now())

    def drawdown_breached(self, equity: float) -> bool:
        """Whether ``equity`` crosses the day's drawdown limit (the backtest loop asks)."""
        return self.gate.drawdown.breaches(equity)

    @property
    def day_drawdown(self) -> float:
        """Today's drawdown from the day's starting equity, as the drawdown breaker sees it."""
        return self.gate.drawdown.drawdown

    def data_seen(self, close_time: datetime) -> None:
        """Data up to ``close_time`` arrived (the stale-data breaker's clock)."""
        self.gate.on_bar(close_time)

    def connection_health(self) -> dict[str, StreamHealth]:
        """The market-data and trade-update streams' health, where the feed and broker have
        streams (paper and live); empty for the demo and backtests."""
        found: dict[str, StreamHealth] = {}
        for name, source in (("data", self._feed), ("trades", self.broker)):
            if isinstance(source, ReportsHealth):
                health = source.stream_health()
                if health is not None:
                    found[name] = health
        return found

    def notice(self, level: str, message: str) -> None:
        """Publish a message for the operator (feeds and adapters report through this)."""
        self._emit(Notice(ts=self.clock.now(), level=level, message=message))
        if not self._busy:
            self._flush_or_fail()

    def preview_flatten(self) -> list[OrderRequest]:
        """The exact orders flatten would send now (for the confirmation modal)."""
        now = self.clock.now()
        stamp = self.journal.last_seq if self.journal is not None else 0
        requests = []
        for symbol, pos in sorted(self.portfolio.positions.items()):
            if abs(pos.qty) < MIN_FLATTEN_QTY:
                continue
            side = Side.SELL if pos.qty > 0 else Side.BUY
            last = self.state.positions.get(symbol)
            price = last.last_price if last is not None and last.last_price else pos.last_price
            cid = client_order_id(self.config.strategy_name, symbol, now, Intent.FLATTEN)
            requests.append(
                OrderRequest(
                    client_order_id=f"{cid}-{stamp}",
                    symbol=symbol,
                    side=side,
                    qty=abs(pos.qty),
                    intent=Intent.FLATTEN,
                    bar_ts=now,
                    estimated_price=price or None,
                )
            )
        return requests

    async def flatten(self, who: str | None = None, *, pause: bool = False) -> list[Order]:
        """Cancel open orders and close every position; works even when HALTED.

        ``pause`` pauses new entries before anything is sent (one journaled action,
        ``flatten_and_pause``): the strategy's next buy signal is denied until ``resume``."""
        requests = self.preview_flatten()
        action = "flatten_and_pause" if pause else "flatten"
        self._operator(action, who, f"{len(requests)} order(s)")
        if pause:
            why = f"paused after flatten by {who or self.who}"
            self._emit_breakers(self.gate.pause(self.clock.now(), why))
        why = f"{'flatten + pause' if pause else 'flatten'} by {who or self.who}"
        return await self._close_all(requests, why=why)

    async def _close_all(self, requests: list[OrderRequest], *, why: str) -> list[Order]:
        """Cancel every open order (and drop held ones), then send ``requests``."""
        for held in self.hold.clear():
            self._skip_held(held, f"dropped: {why}")
        try:
            cancelled = await self.broker.cancel_all_orders()
        except BrokerError as exc:
            self._emit(Notice(ts=self.clock.now(), level="error", message=f"cancel failed: {exc}"))
            cancelled = []
        for order in cancelled:
            self.book.observe(order)
            self._update_row(order)
        self._sync_in_flight()
        sent: list[Order] = []
        for request in requests:
            submitted = await self._submit(request, why=why)
            if submitted is not None:
                sent.append(submitted)
        self.state.touch()
        return sent

    async def switch_account(
        self,
        *,
        mode: Mode,
        broker: Broker,
        account: str,
        endpoint: str,
        who: str | None = None,
    ) -> None:
        """Trade another account from now on. Refused while HALTED or with orders in flight."""
        if self.gate.state is TradingState.HALTED:
            raise EngineCommandError(
                "trading is HALTED: reset the breaker before switching accounts"
            )
        if self.book.open_count():
            raise EngineCommandError("orders are in flight: wait until they settle, then switch")
        self._operator("switch_account", who, f"{self.mode.value} -> {mode.value} {account}")
        old = self.broker
        self.broker = broker
        broker.set_listener(self._on_broker_event)
        self.mode = mode
        self.state.mode = mode
        self.state.account = account
        self.state.endpoint = endpoint
        snapshot = await broker.get_account()
        # The journal carries on across the switch: record the new account's book so a
        # rebuild from the journal follows the account actually traded.
        self._adopt(snapshot, [f"switched to {mode.value} account {account}"])
        now = self.clock.now()
        # Another account: the day's drawdown is measured from its equity, not the old one's.
        day = self._day or now.astimezone(ET).date().isoformat()
        self.gate.start_day(day, snapshot.equity)
        self.state.day_start_equity = snapshot.equity
        self._emit(DayStarted(ts=now, day=day, starting_equity=snapshot.equity))
        self._flush()
        self.state.touch()
        if old is not broker:
            await old.close()

    def set_speed(self, speed: float) -> float | None:
        """Demo pacing (bars per real bar interval); returns the speed now in force."""
        feed = self._feed
        if not isinstance(feed, PacedFeed):
            return None
        feed.set_speed(speed)
        self.state.speed = feed.speed
        self.state.touch()
        return self.state.speed

    def skip_to_signal(self) -> bool | None:
        """Demo: fast-forward to just before the next signal. None when the feed cannot look
        ahead; False when the next bar already is a signal."""
        feed = self._feed
        if not isinstance(feed, SignalSkippingFeed) or not feed.can_skip:
            return None
        return feed.skip_to_signal()


_EPSILON = timedelta(milliseconds=1)
_HOLD_RETRY = timedelta(milliseconds=50)
