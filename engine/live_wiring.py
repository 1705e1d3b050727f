"""Paper and live sessions: the same Engine as the demo, with Alpaca plugged in.

The twin of ``engine.wiring.build_demo``. Start-up runs in the order a restart needs:

1. read Alpaca's clock (time and session; a 401 here means keys of the other mode) and open
   trade_updates, so no fill can slip by from now on;
2. read the account and open the journal at ``data_dir/<mode>/journal.sqlite3``; the engine
   restores what the journal knows and settles in-flight intents against Alpaca;
3. reconcile: the broker's positions and cash are adopted, and every difference from the
   journal's view (and every open order the journal did not place) is logged, and the
   broker's state is adopted through ``Engine.adopt_account`` (journaled; the reconcile
   modal that lets a person decide is a later issue);
4. back-fill enough history to warm the indicators;
5. the caller then runs ``engine.run(feed)``, which opens the market-data stream.

No entries outside the regular session: ``in_session`` is Alpaca's clock while a reading
covers the moment, else the XNYS calendar; the engine's stale-data breaker uses it, and the
engine's ``entry_hours`` refuses entries outside it (exits still go through).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Protocol

from engine.alpaca.clock import BrokerClock
from engine.alpaca.endpoints import Endpoints, resolve_endpoints
from engine.alpaca.hours import SessionHours
from engine.alpaca.streams import stop_task
from engine.brokers.alpaca import AlpacaBroker
from engine.brokers.base import BrokerError
from engine.calendar import MarketCalendar
from engine.config import ConfigError, EngineConfig
from engine.engine import Engine
from engine.feeds.alpaca import AlpacaFeed
from engine.journal import Journal
from engine.models import AccountSnapshot, Mode, Order, Position

log = logging.getLogger("tapewatch.live")

CLOCK_CHECK_SECONDS = 60.0


class KeyPair(Protocol):
    """What the session needs from ``engine.credentials.Credentials``."""

    @property
    def key_id(self) -> str: ...

    @property
    def secret(self) -> str: ...


@dataclass(frozen=True, slots=True)
class LiveOptions:
    timeout: float = 10.0  # seconds per REST call
    poll_after: float = 3.0  # look an open order up after this long without an update
    account_refresh: float = 30.0  # seconds between background account reads
    data_timeout: float | None = 150.0  # reconnect a market-data socket silent this long
    grace_seconds: float = 10.0  # wait for a period's last minute this long after it ends
    warmup_bars: int | None = None  # None: max(2 × the strategy's warm-up, 120)
    endpoints: Endpoints | None = None  # None: resolved from the environment / config
    endpoint_settings: Mapping[str, str] | None = None  # the config file's URL keys
    env: Mapping[str, str] | None = None


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
    _keeper: asyncio.Task[None] | None = None

    def start_clock_keeper(self, every: float = CLOCK_CHECK_SECONDS) -> None:
        """Re-read Alpaca's clock whenever the last reading no longer covers now."""

        async def keep() -> None:
            while True:
                await asyncio.sleep(every)
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

    async def aclose(self) -> None:
        """Close sockets, threads and the journal (after ``engine.stop``)."""
        await stop_task(self._keeper)
        self._keeper = None
        await self.feed.aclose()
        await self.broker.close()
        self.journal.close()


def journal_path(data_dir: Path, mode: Mode) -> Path:
    """One journal per mode: paper history never mixes with live."""
    return data_dir / mode.value.lower() / "journal.sqlite3"


def _fmt(qty: float) -> str:
    return f"{qty:.9f}".rstrip("0").rstrip(".") or "0"


def position_differences(
    journal_view: Mapping[str, Position], broker_view: Mapping[str, Position]
) -> list[str]:
    """One line per symbol where the journal's position differs from Alpaca's."""
    lines = []
    for symbol in sorted(set(journal_view) | set(broker_view)):
        ours = journal_view[symbol].qty if symbol in journal_view else 0.0
        theirs = broker_view[symbol].qty if symbol in broker_view else 0.0
        if abs(ours - theirs) > 1e-9:
            lines.append(
                f"{symbol}: the journal has {_fmt(ours)}, Alpaca has {_fmt(theirs)}; "
                "adopting Alpaca's position"
            )
    return lines


def order_differences(known: set[str], open_orders: list[Order]) -> list[str]:
    return [
        f"open order {o.client_order_id} ({o.side.value} {_fmt(o.qty)} {o.symbol}) was not "
        "placed by this journal; it is left alone"
        for o in open_orders
        if o.client_order_id not in known
    ]


def _reconcile(engine: Engine, account: AccountSnapshot, open_orders: list[Order]) -> list[str]:
    """Adopt the broker's cash and positions; return the differences found."""
    broker_view = {p.symbol: p for p in account.positions}
    lines = position_differences(engine.portfolio.positions, broker_view)
    known = set()
    if engine.journal is not None:
        for _, event in engine.journal.events(kinds=("intent",)):
            request = getattr(event, "request", None)
            if request is not None:
                known.add(request.client_order_id)
    lines += order_differences(known, open_orders)
    for line in lines:
        log.warning("reconcile: %s", line)
    if lines or engine.portfolio.cash != account.cash:
        engine.adopt_account(account, lines)
    return lines


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
    other mode), ConfigError for bad endpoint settings, JournalError for an unusable journal.
    """
    if mode not in (Mode.PAPER, Mode.LIVE):
        raise ConfigError(f"a live session is PAPER or LIVE, not {mode.value}")
    options = options or LiveOptions()
    endpoints = options.endpoints or resolve_endpoints(
        mode, env=options.env, config=options.endpoint_settings
    )
    calendar = calendar or MarketCalendar()
    clock = BrokerClock()
    broker = AlpacaBroker(
        credentials.key_id,
        credentials.secret,
        endpoints,
        clock=clock,
        timeout=options.timeout,
        poll_after=options.poll_after,
        account_refresh=options.account_refresh,
        rate_limit_per_minute=config.risk.rate_limit_per_minute,
    )
    journal: Journal | None = None
    feed: AlpacaFeed | None = None
    try:
        reading = await broker.get_clock()
        clock.sync(reading.timestamp)
        hours = SessionHours(calendar, reading)
        await broker.start()
        account = await broker.fetch_account()
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
        await engine.start()
        account = await broker.fetch_account()  # after in-flight intents were settled
        differences = _reconcile(engine, account, await broker.open_orders())
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
        await feed.backfill()
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
    )
    session.start_clock_keeper()
    return session
