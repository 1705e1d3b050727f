"""Reconciliation: does the journal's view of positions and open orders match the broker's?

Local state drifts from the broker after a crash, a missed update or a manual trade in the
broker's web UI, and trading on a wrong position is how a bot doubles or flips by accident. So
the ``Reconciler`` compares at start-up, after every reconnect of the broker's stream and
periodically. Any difference pauses new entries (exits and flatten still go through) until it is
resolved: headless, the broker's state is adopted and logged; in the console a person chooses
(adopt, flatten, or keep trading paused) through the same three methods. ``compare`` is pure so
every case can be tested without a broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from tapewatch.engine.core.broker import Broker, BrokerError, FreshAccount
from tapewatch.engine.core.engine import Engine
from tapewatch.engine.model.differences import (
    BROKER_ONLY_ORDER,
    JOURNAL_ONLY_ORDER,
    POSITION,
    Difference,
)
from tapewatch.engine.model.types import AccountSnapshot, Order, OrderStatus, Position

log = logging.getLogger("tapewatch.reconcile")

WHO = "reconciler"
DEFAULT_INTERVAL = 300.0  # seconds between periodic checks
_EPS = 1e-9


def compare(
    journal_positions: Mapping[str, Position],
    journal_open_orders: Iterable[Order],
    broker_positions: Mapping[str, Position],
    broker_open_orders: Iterable[Order],
) -> list[Difference]:
    """Every difference: positions by symbol (sorted), then orders by client order id."""
    found: list[Difference] = []
    for symbol in sorted(set(journal_positions) | set(broker_positions)):
        ours = journal_positions[symbol].qty if symbol in journal_positions else 0.0
        theirs = broker_positions[symbol].qty if symbol in broker_positions else 0.0
        if abs(ours - theirs) > _EPS:
            found.append(Difference(POSITION, symbol, journal_qty=ours, broker_qty=theirs))
    journal_orders = {o.client_order_id: o for o in journal_open_orders}
    broker_orders = {o.client_order_id: o for o in broker_open_orders}
    for cid in sorted(set(journal_orders) ^ set(broker_orders)):
        if cid in broker_orders:
            o = broker_orders[cid]
            kind, journal_qty, broker_qty = BROKER_ONLY_ORDER, 0.0, o.qty
        else:
            o = journal_orders[cid]
            kind, journal_qty, broker_qty = JOURNAL_ONLY_ORDER, o.qty, 0.0
        found.append(Difference(kind, o.symbol, journal_qty, broker_qty, cid, side=o.side.value))
    return found


def journal_open_orders(engine: Engine) -> list[Order]:
    """Orders the journal last saw open, merged forward (engine.orderbook): an intent with no
    outcome yet counts as open; a late, older answer never reopens a finished order."""
    found = []
    for tracked in engine.book.open_orders():
        if tracked.order is not None:
            found.append(tracked.order)
        else:
            found.append(
                Order(
                    "",
                    tracked.client_order_id,
                    tracked.symbol,
                    tracked.side,
                    tracked.qty,
                    OrderStatus.NEW,
                )
            )
    return found


Listener = Callable[[list[Difference]], None]


class Reconciler:
    """Checks the engine against the broker and keeps trading paused while they disagree.

    ``headless`` adopts the broker's state at once (and resumes only if this paused it); else the
    listener (the console's modal) is told and a person calls ``adopt``, ``flatten`` or
    ``keep_paused``. ``sleep`` is the periodic timer, injected so tests need no real waiting.
    """

    @property
    def broker(self) -> Broker:
        """The broker to compare with: the engine's own once the operator switched accounts."""
        current = self.engine.broker
        return current if current is not self._switched_from else self._broker

    def __init__(
        self,
        engine: Engine,
        broker: Broker,
        *,
        interval: float = DEFAULT_INTERVAL,
        headless: bool = True,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.engine = engine
        self._broker = broker
        self._switched_from = engine.broker
        self.interval = interval
        self.headless = headless
        self._sleep = sleep
        self._listener: Listener | None = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._checks: set[asyncio.Task[Any]] = set()
        self._acknowledged: set[tuple[str, str]] = set()  # order differences decided on
        self.pending: list[Difference] = []
        self.paused_by_me = False
        self.checks = 0

    def set_listener(self, listener: Listener | None) -> None:
        """The console registers its modal here (and sets ``headless = False``)."""
        self._listener = listener

    # -- checking -------------------------------------------------------------------------------

    async def _broker_view(self) -> tuple[AccountSnapshot, list[Order]]:
        broker = self.broker  # Alpaca: a fresh read, not the account book the bar path uses
        account = await (
            broker.fetch_account() if isinstance(broker, FreshAccount) else broker.get_account()
        )
        return account, await self.broker.open_orders()

    async def check(self, reason: str = "periodic") -> list[Difference]:
        """Compare now; pause and report on a difference, resume when a clean check follows."""
        async with self._lock:
            engine = self.engine
            if reason != "start-up":
                # Fills first: what the broker filled while we were not looking is journaled
                # as fills, so only differences that fills do not explain remain.
                await engine.settle_open_orders(reason)
            if reason != "start-up" and engine.state.in_flight > 0:
                log.info("reconcile (%s) deferred: orders are in flight", reason)
                return list(self.pending)
            positions, orders = dict(engine.portfolio.positions), journal_open_orders(engine)
            try:
                account, broker_orders = await self._broker_view()
            except BrokerError as exc:
                engine.notice("warning", f"reconcile ({reason}) could not read the broker: {exc}")
                return list(self.pending)
            if reason != "start-up" and (
                engine.state.in_flight > 0
                or engine.portfolio.positions != positions
                or journal_open_orders(engine) != orders
            ):  # our side moved while the broker was read: the two views are not comparable
                log.info("reconcile (%s) deferred: an order moved during the check", reason)
                return list(self.pending)
            self.checks += 1
            found = compare(
                positions, orders, {p.symbol: p for p in account.positions}, broker_orders
            )
            found = [d for d in found if (d.kind, d.client_order_id) not in self._acknowledged]
            if not found:
                await self._resolved(WHO)
                return []
            already_known = found == self.pending and engine.state.paused
            self.pending = found
            if already_known:
                return found
            if not engine.state.paused:
                await engine.pause(who=WHO, reason="reconcile: the broker's state differs")
                self.paused_by_me = True
            for d in found:
                log.warning("reconcile (%s): %s", reason, d)
            n = len(found)
            engine.notice(
                "warning",
                f"reconcile ({reason}): {n} difference{'s' if n != 1 else ''} with the broker; "
                "trading paused until resolved",
            )
            if self.headless:
                await self._adopt(account, WHO)
            elif self._listener is not None:
                self._listener(list(found))
            # else: paused and pending until a listener (the console) attaches and asks
            return found

    async def _resolved(self, who: str) -> None:
        self.pending = []
        if self.paused_by_me:
            self.paused_by_me = False
            await self.engine.resume(who=who)

    # -- the three decisions --------------------------------------------------------------------

    async def _adopt(self, account: AccountSnapshot, who: str) -> None:
        lines = [str(d) for d in self.pending]
        self.engine.adopt_account(account, lines)
        log.warning("reconcile: adopted the broker's state (%d difference(s))", len(lines))
        self._acknowledge()
        await self._resolved(who)

    def _acknowledge(self) -> None:
        for d in self.pending:
            if d.kind != POSITION:
                self._acknowledged.add((d.kind, d.client_order_id))

    async def adopt(self, who: str | None = None) -> None:
        """Take the broker's positions and cash as the truth; resume if the check paused."""
        async with self._lock:
            account, _ = await self._broker_view()
            await self._adopt(account, who or self.engine.who)

    async def flatten(self, who: str | None = None) -> None:
        """Adopt the broker's positions (so flatten closes what is really held), then flatten.

        Trading stays paused afterwards: the operator resumes by hand."""
        async with self._lock:
            account, _ = await self._broker_view()
            self.engine.adopt_account(account, [str(d) for d in self.pending])
            self._acknowledge()
            self.pending = []
            self.paused_by_me = False
            await self.engine.flatten(who=who)

    def keep_paused(self) -> None:
        """Leave trading paused; the pause is now the operator's (a clean check won't resume)."""
        self.paused_by_me = False
        self.engine.notice("warning", "reconcile: trading stays paused (differences unresolved)")

    # -- when to check --------------------------------------------------------------------------

    def on_reconnect(self) -> None:
        """A stream reconnected: updates may have been missed, so check soon (loop callback)."""
        task = asyncio.get_running_loop().create_task(self.check("reconnect"))
        self._checks.add(task)
        task.add_done_callback(self._checks.discard)

    def start(self) -> None:
        """Check every ``interval`` seconds from now on."""

        async def periodic() -> None:
            while True:
                await self._sleep(self.interval)
                await self.check("periodic")

        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(periodic())

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._checks) if t is not None]
        self._task = None
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
