"""Paper and live sessions: the same Engine as the demo, with Alpaca plugged in.

Built only through the composition root (``engine.root``); ``engine.root.live`` re-exports
these names for older imports. The twin of ``engine.root.demo.build_demo``. Start-up runs in
the order a restart needs:

1. read Alpaca's clock (time and session; a 401 here means keys of the other mode) and open
   trade_updates, so no fill can slip by from now on;
2. read the account and open the journal at ``data_dir/<mode>/journal.sqlite3``; the engine
   restores what the journal knows and settles in-flight intents against Alpaca;
3. reconcile (engine.reconcile): every difference from the journal's positions and open
   orders is logged and the broker's state is adopted through ``Engine.adopt_account``
   (journaled); the same check then runs after every trade_updates reconnect and every
   ``reconcile_every`` seconds (the console may set ``reconciler.headless = False`` and ask a
   person instead);
4. back-fill enough history to warm the indicators;
5. the caller then runs ``engine.run(feed)``, which opens the market-data stream.

Every start-up read waits out a 429, a 5xx, a timeout or a refused connection (jittered
backoff 1 → 60 s, one "waiting for Alpaca: …" line per wait; engine.alpaca.startup), so a
restart loop under systemd never hammers the API; only refused keys (401/403) and an unknown
symbol end start-up. The asset and the account's configuration are read too: when either
cannot trade fractional shares, entries are sized in whole shares (``allow_fractional``), said
once in a notice.

No entries outside the regular session: ``in_session`` is Alpaca's clock while a reading
covers the moment, else the XNYS calendar; the engine's stale-data breaker uses it, and the
engine's ``entry_hours`` refuses entries outside it (exits still go through).

The rate-limit breaker (engine.risk.ratelimit) sits in the gate, read live from the broker's
request budget: WARN at 80%, no new entries at 95% until the budget recovers; a watcher
publishes its crossings every ``rate_check_every`` seconds. The account is read at most every
``account_refresh`` (60) seconds so the budget goes to orders.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Protocol, TypeVar

from tapewatch.engine.adapters.alpaca.broker import AlpacaBroker
from tapewatch.engine.adapters.alpaca.clock import BrokerClock
from tapewatch.engine.adapters.alpaca.endpoints import Endpoints, resolve_endpoints
from tapewatch.engine.adapters.alpaca.feed import AlpacaFeed
from tapewatch.engine.adapters.alpaca.hours import SessionHours
from tapewatch.engine.adapters.alpaca.mapping import AssetInfo
from tapewatch.engine.adapters.alpaca.rest import RetryPolicy
from tapewatch.engine.adapters.alpaca.startup import StartupWait
from tapewatch.engine.adapters.alpaca.streams import stop_task
from tapewatch.engine.core.broker import BrokerError
from tapewatch.engine.core.clock import Clock
from tapewatch.engine.core.engine import Engine
from tapewatch.engine.core.reconcile import BROKER_ONLY_ORDER, POSITION, Difference, Reconciler
from tapewatch.engine.market.calendar import MarketCalendar
from tapewatch.engine.model.events import BreakerChanged, Event
from tapewatch.engine.model.types import AccountSnapshot, Mode
from tapewatch.engine.risk.ratelimit import RateLimitBreaker, watch
from tapewatch.engine.settings.config import ConfigError, EngineConfig
from tapewatch.engine.storage.journal import Journal

log = logging.getLogger("tapewatch.live")

CLOCK_CHECK_SECONDS = 60.0

T = TypeVar("T")


class KeyPair(Protocol):
    """What the session needs from ``engine.settings.credentials.Credentials``."""

    @property
    def key_id(self) -> str: ...

    @property
    def secret(self) -> str: ...


@dataclass(frozen=True, slots=True)
class LiveOptions:
    timeout: float = 10.0  # seconds per REST call
    poll_after: float = 3.0  # look an open order up after this long without an update
    account_refresh: float = 60.0  # seconds between background account reads (a cached read)
    rate_check_every: float = 1.0  # seconds between rate-limit breaker polls (its events)
    data_timeout: float | None = 150.0  # reconnect a market-data socket silent this long
    grace_seconds: float = 10.0  # wait for a period's last minute this long after it ends
    warmup_bars: int | None = None  # None: max(2 × the strategy's warm-up, 120)
    endpoints: Endpoints | None = None  # None: resolved from the environment / config
    endpoint_settings: Mapping[str, str] | None = None  # the config file's URL keys
    env: Mapping[str, str] | None = None
    reconcile_every: float = 300.0  # seconds between periodic reconciliations
    reconcile_headless: bool = True  # False: differences wait, paused, for the console's modal
    policy: RetryPolicy | None = None  # the broker's per-call retries (None: the default)
    startup_wait: StartupWait | None = None  # how start-up waits out a storm (None: 1 → 60 s)


@dataclass(slots=True)
class LiveSession:
    engine: Engine
    feed: AlpacaFeed
    broker: AlpacaBroker
    journal: Journal
    clock: BrokerClock
    hours: SessionHours
    endpoints: Endpoints
    differences: list[str] = field(default_factory=list)
    reconciler: Reconciler | None = None
    rate_limit: RateLimitBreaker | None = None
    _keeper: asyncio.Task[None] | None = None
    _rate_watch: asyncio.Task[None] | None = None
    _recheck: asyncio.Event = field(default_factory=asyncio.Event)

    def recheck_clock(self) -> None:
        """Read Alpaca's clock now, not at the next tick: an entry sat unfilled, so the market
        may have closed (a halt); if it did, the clock's answer stops new entries."""
        self.hours.doubt()
        self._recheck.set()

    def start_clock_keeper(self, every: float = CLOCK_CHECK_SECONDS) -> None:
        """Re-read Alpaca's clock whenever the last reading no longer covers now (or is in
        doubt: ``recheck_clock``)."""

        async def keep() -> None:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._recheck.wait(), every)
                self._recheck.clear()
                if self.hours.needs_refresh(self.clock.now()):
                    try:
                        reading = await self.broker.get_clock()
                    except BrokerError as exc:
                        log.warning("clock refresh failed (using the calendar): %s", exc)
                        continue
                    self.hours.update(reading)
                    self.clock.sync(reading.timestamp)

        if self._keeper is None:
            self._keeper = asyncio.get_running_loop().create_task(keep())

    def start_rate_watch(self, every: float = 1.0) -> None:
        """Publish the rate-limit breaker's crossings (the gate reads it live regardless)."""
        if self.rate_limit is not None and self._rate_watch is None:
            publish = _breaker_publisher(self.engine)
            self._rate_watch = asyncio.get_running_loop().create_task(
                watch(self.rate_limit, self.clock.now, publish, every)
            )

    async def aclose(self) -> None:
        """Close sockets, threads and the journal (after ``engine.stop``)."""
        await stop_task(self._keeper)
        self._keeper = None
        await stop_task(self._rate_watch)
        self._rate_watch = None
        if self.reconciler is not None:
            await self.reconciler.stop()
        await self.feed.aclose()
        await self.broker.close()
        self.journal.close()


def _breaker_publisher(engine: Engine) -> Callable[[list[Event]], None]:
    """Notices go straight to the bus; breaker changes through the engine, which journals
    them and updates its trading state."""

    def publish(events: list[Event]) -> None:
        for event in events:
            if not isinstance(event, BreakerChanged):
                engine.bus.publish(event)
        engine.publish_breakers([e for e in events if isinstance(e, BreakerChanged)])

    return publish


def _budget_of(engine: Engine) -> Callable[[], float]:
    """The request budget of whichever broker the engine has now (an account switch swaps it)."""

    def used() -> float:
        read = getattr(engine.broker, "rate_limit_used_ratio", None)
        return float(read()) if read is not None else 0.0

    return used


def open_broker(
    credentials: KeyPair,
    endpoints: Endpoints,
    *,
    clock: Clock | None = None,
    timeout: float = 10.0,
    poll_after: float = 3.0,
    account_refresh: float = 60.0,
    rate_limit_per_minute: int = 200,
    policy: RetryPolicy | None = None,
) -> AlpacaBroker:
    """The one place an ``AlpacaBroker`` is made: for a session's start and an account switch
    (not yet connected: the caller ``start()``s it)."""
    return AlpacaBroker(
        credentials.key_id,
        credentials.secret,
        endpoints,
        clock=clock,
        timeout=timeout,
        poll_after=poll_after,
        account_refresh=account_refresh,
        rate_limit_per_minute=rate_limit_per_minute,
        policy=policy,
    )


def journal_path(data_dir: Path, mode: Mode) -> Path:
    """One journal per mode: paper history never mixes with live."""
    return data_dir / mode.value.lower() / "journal.sqlite3"


def describe(difference: Difference) -> str:
    """The start-up report's wording for one difference (printed by ``tapewatch run``)."""
    d = difference
    if d.kind == POSITION:
        return (
            f"{d.symbol}: the journal has {_fmt(d.journal_qty)}, Alpaca has {_fmt(d.broker_qty)}; "
            "adopting Alpaca's position"
        )
    if d.kind == BROKER_ONLY_ORDER:
        return (
            f"open order {d.client_order_id} ({d.side} {_fmt(d.broker_qty)} {d.symbol}) was not "
            "placed by this journal; it is left alone"
        )
    return str(d)


def _fmt(qty: float) -> str:
    return f"{qty:.9f}".rstrip("0").rstrip(".") or "0"


def whole_shares_reason(
    symbol: str, asset: AssetInfo, account_fractional: bool | None
) -> str | None:
    """Why entries must be whole shares (one line), or None when fractions are fine."""
    if not asset.fractionable:
        return f"{symbol} is not fractionable on Alpaca: entries are sized in whole shares"
    if account_fractional is False:
        return (
            "this Alpaca account cannot trade fractional shares: entries are sized in whole shares"
        )
    return None


async def _reconcile(engine: Engine, reconciler: Reconciler, account: AccountSnapshot) -> list[str]:
    """Start-up check (adopts the broker's state headless); cash alone is adopted quietly."""
    found = await reconciler.check("start-up")
    if not found and engine.portfolio.cash != account.cash:
        engine.adopt_account(account, [])
    return [describe(d) for d in found]


async def build_live_session(
    config: EngineConfig,
    mode: Mode,
    credentials: KeyPair,
    data_dir: Path,
    *,
    options: LiveOptions | None = None,
    calendar: MarketCalendar | None = None,
) -> LiveSession:
    """Connect, reconcile and warm up a paper or live session (see the module docstring).

    Raises BrokerError when Alpaca cannot be used (``status == 401``: the keys belong to the
    other mode; transient failures are waited out, never raised), ConfigError for bad endpoint
    settings or an unknown symbol, JournalError for an unusable journal.
    """
    if mode not in (Mode.PAPER, Mode.LIVE):
        raise ConfigError(f"a live session is PAPER or LIVE, not {mode.value}")
    options = options or LiveOptions()
    endpoints = options.endpoints or resolve_endpoints(
        mode, env=options.env, config=options.endpoint_settings
    )
    calendar = calendar or MarketCalendar()
    clock = BrokerClock()
    broker = open_broker(
        credentials,
        endpoints,
        clock=clock,
        timeout=options.timeout,
        poll_after=options.poll_after,
        account_refresh=options.account_refresh,
        rate_limit_per_minute=config.risk.rate_limit_per_minute,
        policy=options.policy,
    )
    wait = options.startup_wait or StartupWait()

    def patiently(call: Callable[[], Awaitable[T]]) -> Awaitable[T]:
        """One attempt per try (so every wait is announced), retried by ``wait``."""

        async def once() -> T:
            with broker.tried_once():
                return await call()

        return wait.run(once)

    symbol = config.strategy.symbol
    journal: Journal | None = None
    feed: AlpacaFeed | None = None
    try:
        reading = await patiently(broker.get_clock)
        clock.sync(reading.timestamp)
        hours = SessionHours(calendar, reading)
        asset = await patiently(lambda: broker.check_symbol(symbol))  # before any socket
        await broker.start()
        account = await patiently(broker.fetch_account)
        fractional = await patiently(broker.fractional_trading)
        journal = Journal(journal_path(data_dir, mode))
        engine = Engine(
            config,
            clock=clock,
            broker=broker,
            journal=journal,
            mode=mode,
            account=account.account_id,
            endpoint=endpoints.trading,
            in_session=hours.in_session,
            entry_hours=hours.in_session,
        )
        broker.record_latency_to(engine.latency)
        broker.set_stream_reporter(engine.notice)  # trade_updates failures: one notice each
        rate_limit = RateLimitBreaker(_budget_of(engine), limit=config.risk.rate_limit_per_minute)
        engine.gate.add(rate_limit)
        whole = whole_shares_reason(symbol, asset, fractional)
        engine.allow_fractional = whole is None
        await engine.start()
        if whole is not None:
            log.warning("%s", whole)
            engine.notice("info", whole)
        account = await patiently(broker.fetch_account)  # after in-flight intents were settled
        await patiently(broker.open_orders)  # the reconcile below reads them: storm over first
        reconciler = Reconciler(
            engine,
            broker,
            interval=options.reconcile_every,
            headless=options.reconcile_headless,
        )
        differences = await _reconcile(engine, reconciler, account)
        strategy = config.strategy
        warmup = options.warmup_bars or max(2 * strategy.warmup_bars, 120)
        feed = AlpacaFeed.connect(
            credentials.key_id,
            credentials.secret,
            endpoints,
            symbol=strategy.symbol,
            timeframe=strategy.tf,
            clock=clock,
            calendar=calendar,
            warmup_bars=warmup,
            timeout=options.timeout,
            data_timeout=options.data_timeout,
            grace=timedelta(seconds=options.grace_seconds),
            on_notice=engine.bus.publish,  # the feed's own Notice events
        )
        feed.latency = engine.latency
        await wait.run(feed.backfill)
    except BaseException:
        if feed is not None:
            await feed.aclose()
        await broker.close()
        if journal is not None:
            journal.close()
        raise
    session = LiveSession(
        engine=engine,
        feed=feed,
        broker=broker,
        journal=journal,
        clock=clock,
        hours=hours,
        endpoints=endpoints,
        differences=differences,
        reconciler=reconciler,
        rate_limit=rate_limit,
    )
    engine.on_entry_stalled = session.recheck_clock
    session.start_clock_keeper()
    session.start_rate_watch(options.rate_check_every)
    broker.set_on_reconnect(reconciler.on_reconnect)
    reconciler.start()
    return session
