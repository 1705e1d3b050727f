"""AlpacaBroker: the Broker protocol over Alpaca's trading REST API and its trade_updates stream.

The engine does not know which broker it has, so this one behaves like the others (the
conformance suite in tests/ checks it against the local sandbox): submit returns the
acknowledged order, fills arrive later through the listener as ``OrderFilled``, rejections come
back as REJECTED orders with a reason, a duplicate client order id raises
``DuplicateClientOrderId``.

Orders are market, DAY (fractional quantities are refused with any other time in force), with
the engine's deterministic ``client_order_id`` (journaled before this is called). The POST is
sent once: a 429 means nothing happened, so after backing off it is looked up and, if absent,
sent again with the same id (Alpaca refuses a second order with it anyway); a timeout, a 5xx
or a dropped connection means the outcome is unknown, so the order is looked up by client
order id and never sent again. Fills come from ``trade_updates``; an open order not heard of
for ``poll_after`` seconds is looked up over REST (backing off to once a minute), so a silent
or reconnecting stream loses nothing.

``get_account`` answers from the ``AccountBook`` (no REST on the bar path) and refreshes it in
the background; ``get_positions``, ``open_orders`` and look-ups always ask Alpaca.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from typing import Any

from alpaca.common.enums import Sort
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import QueryOrderStatus
from alpaca.trading.requests import GetOrdersRequest

from tapewatch.engine.adapters.alpaca.account import AccountBook
from tapewatch.engine.adapters.alpaca.endpoints import Endpoints
from tapewatch.engine.adapters.alpaca.errors import AlpacaApiError
from tapewatch.engine.adapters.alpaca.mapping import (
    AssetInfo,
    ClockReading,
    field_of,
    fractional_trading,
    market_order,
    order_status,
    to_account,
    to_asset,
    to_clock,
    to_order,
    to_position,
)
from tapewatch.engine.adapters.alpaca.orders import OrderTracker
from tapewatch.engine.adapters.alpaca.rate import RequestBudget
from tapewatch.engine.adapters.alpaca.rest import DEFAULT_TIMEOUT, RestCaller, RetryPolicy
from tapewatch.engine.adapters.alpaca.streams import TradeSocket, stop_task
from tapewatch.engine.core.broker import BrokerError, BrokerListener, DuplicateClientOrderId
from tapewatch.engine.core.clock import Clock, LiveClock
from tapewatch.engine.model.events import Event, OrderFilled
from tapewatch.engine.model.types import (
    AccountSnapshot,
    Bar,
    Order,
    OrderRequest,
    OrderStatus,
    Position,
    floor_qty,
)
from tapewatch.engine.observability.health import CallHealth, StreamHealth
from tapewatch.engine.observability.latency import LatencyRecorder
from tapewatch.engine.settings.config import ConfigError

log = logging.getLogger("tapewatch.alpaca.broker")

_REJECTING_STATUSES = frozenset({400, 403, 404, 422})


REST_PROBE_EVERY = 5.0  # seconds; with the trade stream failing, REST is asked at this pace


def _ignore(_event: Event) -> None:
    """Listener used until the engine registers one."""


class AlpacaBroker:
    name = "alpaca"

    def __init__(
        self,
        key_id: str,
        secret: str,
        endpoints: Endpoints,
        *,
        clock: Clock | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        policy: RetryPolicy | None = None,
        poll_after: float = 3.0,
        account_refresh: float = 60.0,
        rate_limit_per_minute: int = 200,
        trade_stream: bool = True,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        self.endpoints = endpoints
        self._clock = clock or LiveClock()
        self._listener: BrokerListener = _ignore
        self._sleep = sleep
        self._rng = random.Random()
        self.policy = policy or RetryPolicy()
        self.budget = RequestBudget(rate_limit_per_minute)
        url = endpoints.trading

        def factory() -> TradingClient:
            return TradingClient(key_id, secret, paper=endpoints.paper, url_override=url)

        self._rest: RestCaller[TradingClient] = RestCaller(
            "trading",
            factory,
            budget=self.budget,
            timeout=timeout,
            policy=self.policy,
            sleep=sleep,
            secrets=(key_id, secret),
        )
        self._rest_health = CallHealth(self._clock.now)
        self._rest.on_outcome = lambda error: self._rest_health.record(
            None if error is None else str(error), None if error is None else error.status
        )
        self.book = AccountBook(account_refresh)
        self._tracker = OrderTracker(self._deliver, self._clock.now, poll_after=poll_after)
        self._socket: TradeSocket | None = None
        if trade_stream:
            self._socket = TradeSocket(
                key_id,
                secret,
                endpoints.trade_stream,
                paper=endpoints.paper,
                on_update=self._on_trade_update,
                clock_now=self._clock.now,
            )
        self._poll_tick = max(0.05, min(0.5, poll_after / 2))
        self._poller: asyncio.Task[None] | None = None
        self._refresh: asyncio.Task[None] | None = None
        self._closed = False

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Open trade_updates and start watching open orders (before the first order)."""
        if self._socket is not None:
            await self._socket.start()
        if self._poller is None:
            self._poller = asyncio.get_running_loop().create_task(
                self._poll_forever(), name="tapewatch-order-poller"
            )

    async def close(self) -> None:
        self._closed = True
        for task in (self._poller, self._refresh):
            await stop_task(task)
        self._poller = self._refresh = None
        if self._socket is not None:
            await self._socket.stop()
        self._rest.close()

    # -- events -------------------------------------------------------------------------------

    def set_listener(self, listener: BrokerListener) -> None:
        self._listener = listener

    def record_latency_to(self, recorder: LatencyRecorder) -> None:
        """Every successful trading REST call's round trip goes to ``rest_roundtrip``."""
        self._rest.on_roundtrip = lambda seconds: recorder.record("rest_roundtrip", seconds)

    def set_stream_reporter(self, report: Callable[[str, str], None] | None) -> None:
        """trade_updates failures and recoveries, one line each, go to ``report(level, line)``."""
        if self._socket is not None:
            self._socket.set_report(report)

    def stream_health(self) -> StreamHealth | None:
        """The trade_updates socket now: ok, connecting, reconnecting or down, and why."""
        return None if self._socket is None else self._socket.health()

    def rest_health(self) -> StreamHealth:
        """The trading REST endpoint from its calls' outcomes: ok, reconnecting or down."""
        return self._rest_health.health()

    def set_on_reconnect(self, callback: Callable[[], None] | None) -> None:
        """Tell ``callback`` whenever trade_updates reconnects (fills may have been missed)."""
        if self._socket is not None:
            self._socket.set_on_reconnect(callback)

    def _deliver(self, event: Event) -> None:
        if isinstance(event, OrderFilled):
            self.book.apply_fill(event.fill)
        self._listener(event)

    def _on_trade_update(self, update: Any) -> None:
        order = field_of(update, "order")
        if order is not None:
            self._tracker.observe(order)

    async def on_bar(self, bar: Bar) -> None:
        self.book.mark(bar.symbol, bar.close)

    # -- orders -------------------------------------------------------------------------------

    @staticmethod
    def _rejected(request: OrderRequest, reason: str) -> Order:
        return Order(
            order_id="",
            client_order_id=request.client_order_id,
            symbol=request.symbol,
            side=request.side,
            qty=request.qty,
            status=OrderStatus.REJECTED,
            reason=reason,
        )

    async def submit_order(self, request: OrderRequest) -> Order:
        """Send a market DAY order once; see the module docstring for what errors mean."""
        if self._closed:
            raise BrokerError("the Alpaca broker is closed")
        qty = request.qty
        if not math.isfinite(qty) or qty <= 0:
            return self._rejected(request, "quantity must be positive")
        if floor_qty(qty) <= 0:
            return self._rejected(request, "quantity rounds to zero at 9 decimals")
        cid = request.client_order_id
        new = self._tracker.begin_submit(cid)
        try:
            order = await self._submit(request)
        except DuplicateClientOrderId:
            if new:  # an order from before this process: adopt it as found, no phantom fill
                self._tracker.discard(cid)
            raise
        finally:
            self._tracker.end_submit(cid)
        if order.status is OrderStatus.REJECTED and not order.order_id:
            self._tracker.discard(cid)
        return order

    async def _submit(self, request: OrderRequest) -> Order:
        cid = request.client_order_id
        body = market_order(request)
        what = f"POST /v2/orders ({cid})"
        attempt = 1
        while True:
            try:
                raw = await self._rest.once(what, lambda c: c.submit_order(body))
            except AlpacaApiError as exc:
                if exc.duplicate_client_order_id:
                    raise DuplicateClientOrderId(cid) from None
                if exc.status == 429 and attempt < self.policy.rate_limit_attempts:
                    await self._sleep(self.policy.wait(429, attempt, self._rng))
                    found = await self._find(cid)
                    if found is not None:
                        return found
                    attempt += 1
                    continue  # nothing was created; the same client order id guards a resend
                if exc.status in _REJECTING_STATUSES:
                    return self._rejected(request, exc.api_message or str(exc))
                if exc.status is not None and exc.status < 500 and exc.status != 429:
                    raise
                return await self._resolve_unknown(cid, exc)
            except BrokerError as exc:  # timeout or connection error: the outcome is unknown
                return await self._resolve_unknown(cid, exc)
            self._tracker.observe(raw)
            return to_order(raw)

    async def _resolve_unknown(self, cid: str, cause: BrokerError) -> Order:
        """The POST may or may not have landed: look it up, never send it again."""
        found = await self._find(cid)
        if found is not None:
            log.warning("%s; found the order by its client order id", cause)
            return found
        raise BrokerError(
            f"{cause}; no order with client id {cid} was found (yet); it is not resent and "
            "will be looked up again",
            status=cause.status,
            retryable=True,
        )

    async def _find(self, cid: str) -> Order | None:
        try:
            return await self.get_order_by_client_id(cid)
        except BrokerError as exc:
            log.warning("look-up of %s failed: %s", cid, exc)
            return None

    async def get_order_by_client_id(self, client_order_id: str) -> Order | None:
        try:
            raw = await self._rest.call(
                f"GET order {client_order_id}",
                lambda c: c.get_order_by_client_id(client_order_id),
            )
        except AlpacaApiError as exc:
            if exc.status == 404:
                self._tracker.missed(client_order_id)
                return None
            raise
        self._tracker.observe(raw, baseline=True)
        return to_order(raw)

    async def open_orders(self) -> list[Order]:
        request = GetOrdersRequest(status=QueryOrderStatus.OPEN, limit=500, direction=Sort.ASC)
        raw = await self._rest.call("GET /v2/orders", lambda c: c.get_orders(request))
        return [to_order(o) for o in raw]

    async def cancel_all_orders(self) -> list[Order]:
        """DELETE /v2/orders (HTTP 207, one entry per order); returns the orders cancelled.

        An entry with status 200 means Alpaca took the cancel; its body may still say
        ``pending_cancel``, which is reported as CANCELLED (a fill that races the cancel still
        arrives as a fill). Failed entries are logged and left out."""
        answers = await self._rest.call("DELETE /v2/orders", lambda c: c.cancel_orders())
        cancelled: list[Order] = []
        for answer in answers:
            status = field_of(answer, "status")
            body = field_of(answer, "body")
            order_id = str(field_of(answer, "id") or "")
            if status != 200:
                log.warning("cancel of order %s failed with HTTP %s", order_id, status)
                continue
            if not isinstance(body, dict) or "client_order_id" not in body:
                body = await self._order_by_id(order_id)
            order = to_order(body)
            if order_status(field_of(body, "status")).is_open:
                order = replace(order, status=OrderStatus.CANCELLED, reason="cancel accepted")
            self._tracker.observe(body)
            cancelled.append(order)
        return cancelled

    async def cancel_order(self, client_order_id: str) -> Order | None:
        """DELETE /v2/orders/{id} for one of our orders, then its state as Alpaca now has it.
        422 (not cancelable: it filled or ended first) is not an error: the look-up says why."""
        order = await self.get_order_by_client_id(client_order_id)
        if order is None or not order.status.is_open or not order.order_id:
            return order
        order_id = order.order_id
        try:
            await self._rest.call(
                f"DELETE /v2/orders/{order_id}", lambda c: c.cancel_order_by_id(order_id)
            )
        except AlpacaApiError as exc:
            if exc.status not in (404, 422):
                raise
        return await self.get_order_by_client_id(client_order_id)

    async def _order_by_id(self, order_id: str) -> Any:
        return await self._rest.call(f"GET order {order_id}", lambda c: c.get_order_by_id(order_id))

    async def _poll_forever(self) -> None:
        """The fallback for fills: look up open orders the stream has been quiet about."""
        while True:
            await asyncio.sleep(self._poll_tick)
            for cid in self._tracker.due_for_poll():
                try:
                    await self.get_order_by_client_id(cid)
                except BrokerError as exc:
                    log.warning("polling order %s: %s", cid, exc)
            await self._probe_rest()

    async def _probe_rest(self) -> None:
        """While trade_updates is failing, one cheap call (GET /v2/clock) every
        ``REST_PROBE_EVERY`` seconds without other REST traffic, so the REST health says
        whether the endpoint answers now, not what the last call saw minutes ago. Nothing is
        spent while the stream is healthy."""
        socket = self._socket
        if socket is None or socket.health().state not in ("reconnecting", "down"):
            return
        if (self._clock.now() - self._rest_health.last_at).total_seconds() < REST_PROBE_EVERY:
            return
        try:
            await self._rest.once("GET /v2/clock", lambda c: c.get_clock())
        except BrokerError as exc:
            log.debug("REST probe: %s", exc)

    # -- account ------------------------------------------------------------------------------

    async def get_positions(self) -> dict[str, Position]:
        raw = await self._rest.call("GET /v2/positions", lambda c: c.get_all_positions())
        positions = [to_position(p) for p in raw]
        return {p.symbol: p for p in positions}

    async def get_position(self, symbol: str) -> Position | None:
        """One position; Alpaca answers 404 (not an empty position) when there is none."""
        try:
            raw = await self._rest.call(
                f"GET /v2/positions/{symbol}", lambda c: c.get_open_position(symbol)
            )
        except AlpacaApiError as exc:
            if exc.status == 404:
                return None
            raise
        return to_position(raw)

    async def fetch_account(self) -> AccountSnapshot:
        """Account and positions from Alpaca now (two REST calls, concurrently)."""
        generation = self.book.generation
        account, positions = await asyncio.gather(
            self._rest.call("GET /v2/account", lambda c: c.get_account()),
            self.get_positions(),
        )
        snapshot = to_account(account, tuple(positions.values()))
        self.book.replace(snapshot, generation)
        return snapshot

    async def get_account(self) -> AccountSnapshot:
        """The account book (refreshed in the background when old); Alpaca on first use."""
        snapshot = self.book.snapshot()
        if snapshot is None:
            return await self.fetch_account()
        if self.book.stale() and (self._refresh is None or self._refresh.done()):
            self._refresh = asyncio.get_running_loop().create_task(self._refresh_quietly())
        return snapshot

    async def _refresh_quietly(self) -> None:
        try:
            await self.fetch_account()
        except BrokerError as exc:
            log.warning("account refresh failed: %s", exc)

    async def check_symbol(self, symbol: str) -> AssetInfo:
        """The asset (tradable, fractionable); refuse, in one line, a symbol Alpaca does not
        know or will not trade."""
        try:
            raw = await self._rest.call(f"GET /v2/assets/{symbol}", lambda c: c.get_asset(symbol))
        except BrokerError as exc:
            if exc.status == 404:
                raise ConfigError(
                    f"Alpaca does not know the symbol {symbol!r}; check --symbol (e.g. SPY)"
                ) from None
            raise
        asset = to_asset(raw)
        if not asset.tradable:
            raise ConfigError(f"{symbol} is not tradable on Alpaca; choose another --symbol")
        return asset

    async def fractional_trading(self) -> bool | None:
        """Whether the account may trade fractional shares (its configuration); None when
        Alpaca does not say (no such endpoint or field: the asset's flag then decides)."""
        try:
            raw = await self._rest.call(
                "GET /v2/account/configurations", lambda c: c.get_account_configurations()
            )
        except AlpacaApiError as exc:
            if exc.status == 404:
                return None
            raise
        return fractional_trading(raw)

    @contextmanager
    def tried_once(self) -> Iterator[None]:
        """Trading REST calls in this block get one attempt each: start-up's wait does the
        retrying there, and says so on each wait (engine.alpaca.startup)."""
        before = self._rest.policy
        self._rest.policy = replace(before, rate_limit_attempts=1, server_error_attempts=1)
        try:
            yield
        finally:
            self._rest.policy = before

    async def get_clock(self) -> ClockReading:
        raw = await self._rest.call("GET /v2/clock", lambda c: c.get_clock())
        return to_clock(raw)

    # -- metrics ------------------------------------------------------------------------------

    def rate_limit_used_ratio(self) -> float:
        return self.budget.used_ratio()

    def api_error_counts(self) -> dict[str, int]:
        return dict(self._rest.errors)

    def api_request_count(self) -> int:
        return self._rest.request_count

    def websocket_connected(self) -> bool:
        return self._socket is not None and self._socket.connected()

    def websocket_last_message_age(self, now: datetime | float | None = None) -> float | None:
        return None if self._socket is None else self._socket.last_message_age(now)
