"""Everything one sandbox knows, wired together: market, account, faults, limits, streams.

The handlers and the ticker all run on the server's one event loop, so the state needs no
locks. Order execution is scheduled here because it needs the loop, the clock and the faults:
accepted -> new on the next loop turn, then ``partial_fills`` fills ``fill_delay`` apart. While
the market is closed (the calendar or the ``market_closed`` fault) orders wait ``accepted`` and
fill at the next open; at a close, DAY orders the venue holds expire, as Alpaca's do.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from aiohttp import web

from tapewatch.sandbox.accounts import Account
from tapewatch.sandbox.auth import KeyPolicy
from tapewatch.sandbox.config import SandboxConfig
from tapewatch.sandbox.data_stream import DataStreamHub
from tapewatch.sandbox.faults import Faults
from tapewatch.sandbox.market import Market, start_minute
from tapewatch.sandbox.orders import AT_VENUE, IdSource, Order
from tapewatch.sandbox.ratelimit import RateLimiter
from tapewatch.sandbox.sessions import from_minute
from tapewatch.sandbox.trade_stream import TradeStreamHub
from tapewatch.sandbox.wire import ApiError

_COUNTERS = (
    "rest_requests",
    "rate_limited",
    "lost_order_responses",
    "data_connections",
    "trade_connections",
)


class SandboxState:
    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.market = Market(config, start_minute(config))
        self.faults = self._initial_faults()
        self.stats: Counter[str] = Counter(dict.fromkeys(_COUNTERS, 0))
        self.keys = KeyPolicy(config.keys, config.live)
        self.trading_limiter = RateLimiter(config.rate_limit, config.time_source)
        self.data_limiter = RateLimiter(
            config.data_rate_limit or config.rate_limit, config.time_source
        )
        self.data_hub = DataStreamHub(
            self.market, self.faults, self.keys, self.stats, config.auth_timeout
        )
        self.trade_hub = TradeStreamHub(self.keys, self.faults, self.stats)
        self._last_tick = time.monotonic()
        self._held: list[Order] = []  # due to fill while hold_fills is on
        self._queued: list[tuple[Order, bool]] = []  # (order, venue has it) until the open
        self.account = self._new_account()
        self.apply_faults(config.faults)

    def _initial_faults(self) -> Faults:
        """The trading switches start as configured; the fault spec may change them."""
        config = self.config
        return Faults(
            partial_fills=config.partial_fills,
            non_fractionable=config.non_fractionable,
            fractional_trading=config.fractional_trading,
        )

    def _new_account(self) -> Account:
        account_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"tapewatch-sandbox/{self.config.seed}"))
        return Account(
            account_id=account_id,
            starting_cash=Decimal(str(self.config.starting_cash)),
            market=self.market,
            ids=IdSource(self.config.seed),
            now=self.now,
            emit=self.trade_hub.publish,
            on_accepted=self._schedule,
            refuse_fraction=self._refuse_fraction,
        )

    def reset(self) -> None:
        """Back to the configured start: clock, prices, account, faults, limits."""
        self.market.reset()
        self.faults.__dict__.update(self._initial_faults().__dict__)
        self.trading_limiter.clear()
        self.data_limiter.clear()
        self._held.clear()
        self._queued.clear()
        self.account = self._new_account()
        self.apply_faults(self.config.faults)

    # -- time ------------------------------------------------------------------------------

    def now(self) -> datetime:
        """Market time with a sub-minute part that grows with real time between ticks."""
        base = self.market.now
        interval = self.config.bar_interval
        if interval <= 0:
            return base
        fraction = min(max((time.monotonic() - self._last_tick) / interval, 0.0), 0.999999)
        return base + timedelta(seconds=60.0 * fraction)

    def tick(self) -> None:
        """One market minute passes: a close expires DAY orders, an open releases queued ones."""
        finished = self.market.step()
        self._last_tick = time.monotonic()
        close = self.market.close_between(finished, self.market.now_minute)
        if close is not None:
            self._session_closed(from_minute(close))
        self._release_queued()
        self.data_hub.publish_minute(finished)

    # -- orders ----------------------------------------------------------------------------

    def _refuse_fraction(self, symbol: str) -> str | None:
        if not self.faults.fractional_trading:
            return "fractional orders are not supported for this account"
        if symbol in self.faults.non_fractionable:
            return "requested asset is not fractionable"
        return None

    def _schedule(self, order: Order) -> None:
        """A new order: to the venue now, or queued ``accepted`` while the market is closed."""
        order.parts = self.faults.partial_fills
        if not self.market.trading(order.symbol):
            self._queued.append((order, False))
            return
        loop = asyncio.get_running_loop()
        loop.call_soon(self.account.activate, order)
        # a late POST answer: the venue fills first, the held answer follows (trading_rest)
        delay = 0.0 if self.faults.late_order_response_ms > 0 else self.config.fill_delay
        loop.call_later(delay, self._fill, order)

    def _fill(self, order: Order, price: Decimal | None = None) -> None:
        """Execute the order's next part, unless held or the market closed meanwhile."""
        if self.account.orders.get(order.id) is not order or not order.is_open:
            return  # reset, canceled or expired since it was scheduled
        if self.faults.hold_fills:
            self._held.append(order)
            return
        if not self.market.trading(order.symbol):
            self._queued.append((order, True))
            return
        self.account.fill(order, price)
        if order.status == "partially_filled":
            asyncio.get_running_loop().call_later(self.config.fill_delay, self._fill, order)

    def _release_queued(self) -> None:
        """The market trades again: queued orders reach the venue and fill at the open price."""
        if not self._queued:
            return
        loop = asyncio.get_running_loop()
        waiting: list[tuple[Order, bool]] = []
        for order, at_venue in self._queued:
            if not order.is_open:
                continue
            if not self.market.trading(order.symbol):
                waiting.append((order, at_venue))
                continue
            if not at_venue:
                self.account.activate(order)
            price = Decimal(str(self.market.price(order.symbol)))
            loop.call_later(self.config.fill_delay, self._fill, order, price)
        self._queued = waiting

    def _session_closed(self, when: datetime) -> None:
        """The close: open DAY orders the venue holds expire (queued ones wait for the open)."""
        if not self.config.day_orders_expire:
            return
        for order in sorted(self.account.orders.values(), key=lambda o: o.seq):
            if (
                order.status in AT_VENUE
                and order.time_in_force == "day"
                and self.market.hours(order.symbol) is self.market.sessions
            ):
                self.account.expire(order, when)
        self._queued = [(o, at_venue) for o, at_venue in self._queued if o.is_open]

    # -- faults ----------------------------------------------------------------------------

    def apply_faults(self, spec: Mapping[str, Any]) -> bool:
        """Apply switches and run market actions; True if the data stream must be dropped."""
        prices, minutes = self._market_actions(spec)
        was_closed = self.faults.market_closed
        actions = self.faults.apply(spec)
        self._apply_market_closed(was_closed)
        for symbol, price in prices.items():
            self.market.set_price(symbol, price)
        for _ in range(minutes):
            self.tick()
        if not self.faults.hold_fills and self._held:
            held, self._held = self._held, []
            loop = asyncio.get_running_loop()
            for order in held:
                loop.call_soon(self._fill, order)
        return bool(actions.get("drop_data_stream"))

    def _apply_market_closed(self, was_closed: bool) -> None:
        """``market_closed`` on: the session closes now; off: it reopens and orders go."""
        closed = self.faults.market_closed
        self.market.halted = closed
        if closed and not was_closed and self.market.sessions.is_open(self.market.now_minute):
            self._session_closed(self.now())
        elif was_closed and not closed:
            self._release_queued()

    def _market_actions(self, spec: Mapping[str, Any]) -> tuple[dict[str, float], int]:
        """Validate set_price and advance_minutes before anything is applied."""
        try:
            prices = {
                str(s).upper(): float(p) for s, p in dict(spec.get("set_price") or {}).items()
            }
            minutes = int(spec.get("advance_minutes") or 0)
        except (TypeError, ValueError) as exc:
            raise ApiError(400, None, f"bad market action: {exc}") from exc
        unknown = sorted(s for s in prices if not self.market.knows(s))
        if unknown or any(p <= 0 for p in prices.values()) or minutes < 0:
            raise ApiError(
                400,
                None,
                "set_price needs known symbols and positive prices; advance_minutes must be >= 0",
            )
        return prices, minutes

    def snapshot(self) -> dict[str, object]:
        """GET /_sandbox/state: what a test or a curious user may want to see."""
        market = self.market
        return {
            "market": {
                "now": market.now.isoformat(),
                "is_open": market.is_open(),
                "prices": {s: market.price(s) for s in market.symbols},
            },
            "account": {
                "cash": str(self.account.cash),
                "positions": {s: str(h.qty) for s, h in sorted(self.account.holdings.items())},
                "orders": len(self.account.orders),
                "open_orders": sum(1 for o in self.account.orders.values() if o.is_open),
                "queued_orders": len(self._queued),  # waiting for the market to open
                "max_exposure_ratio": self.account.max_exposure_ratio,
            },
            "faults": self.faults.to_dict(),
            "streams": {
                "data_clients": len(self.data_hub.clients),
                "data_subscribers": sum(1 for c in self.data_hub.clients if c.key is not None),
                "trade_clients": len(self.trade_hub.clients),
                "trade_listeners": sum(1 for c in self.trade_hub.clients if c.listening),
            },
            "stats": dict(sorted(self.stats.items())),
        }


STATE: web.AppKey[SandboxState] = web.AppKey("sandbox_state", SandboxState)
