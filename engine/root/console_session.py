"""What an embedded console's host runs: an engine, its feed, the market calendar, the journal.

``engine.root.demo.DemoSession`` fits this shape; ``AlpacaConsoleSession`` wraps a paper or live
``engine.root.live.LiveSession`` into it. The root builds these (``LiveSessionFactory`` in the
console's loading thread); the console itself sees only the handle ``engine.root.embed`` puts
over them (``engine.api.sessions``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from tapewatch.engine.core.engine import Engine
from tapewatch.engine.core.feed import Feed
from tapewatch.engine.model.types import Bar, Mode
from tapewatch.engine.settings.config import EngineConfig

if TYPE_CHECKING:  # alpaca-py and pandas load in the build thread, never at import
    from tapewatch.engine.adapters.alpaca.hours import SessionHours
    from tapewatch.engine.market.calendar import MarketCalendar
    from tapewatch.engine.root.alpaca_accounts import AlpacaAccounts
    from tapewatch.engine.root.live import LiveOptions, LiveSession
    from tapewatch.engine.storage.journal import Journal
    from tapewatch.engine.storage.writer_lock import WriterLock
CONSOLE_START_PATIENCE = 10.0  # seconds the loading screen waits out a 429/5xx storm in all


class MarketHours(Protocol):
    def is_open(self, now: datetime) -> bool: ...

    def next_open(self, now: datetime) -> datetime: ...

    def next_close(self, now: datetime) -> datetime: ...


class Closable(Protocol):
    def close(self) -> None: ...


class ConsoleSession(Protocol):
    @property
    def engine(self) -> Engine: ...

    @property
    def feed(self) -> Feed: ...

    @property
    def calendar(self) -> MarketHours | None: ...

    @property
    def journal(self) -> Closable | None: ...


SessionFactory = Callable[[], ConsoleSession]
"""Builds a session; called in a thread after the first frame because of its heavy imports."""


async def prime(session: ConsoleSession, bars: int = 0) -> None:
    """Start the engine, warm it from history and trade ``bars`` closed bars, unpaced.

    For snapshots and screenshots (with ``create_app(..., drive=False)``): the same seed gives
    the same screen. Needs a replay feed (``iter_sync``); the bars go through the engine's own
    ``on_bar``, exactly as ``Engine.run`` would deliver them.
    """
    engine = session.engine
    feed = session.feed
    iter_sync = getattr(feed, "iter_sync", None)
    if iter_sync is None:
        raise TypeError("prime() needs a replay feed (one with iter_sync())")
    await engine.start()
    engine.warm(feed.warmup())
    source: Iterator[Bar] = iter_sync()
    for _ in range(bars):
        bar = next(source, None)
        if bar is None:
            break
        await engine.on_bar(bar)


# -- paper and live sessions ----------------------------------------------------------------


class AlpacaHours:
    """Market hours for the header: Alpaca's clock while its reading covers now, else XNYS."""

    def __init__(self, hours: SessionHours) -> None:
        self._hours = hours

    def is_open(self, now: datetime) -> bool:
        return self._hours.in_session(now)

    def next_open(self, now: datetime) -> datetime:
        reading = self._hours.reading
        if reading is not None and not self._hours.needs_refresh(now) and now < reading.next_open:
            return reading.next_open
        return self._hours.calendar.next_open(now)

    def next_close(self, now: datetime) -> datetime:
        reading = self._hours.reading
        if reading is not None and not self._hours.needs_refresh(now) and now < reading.next_close:
            return reading.next_close
        return self._hours.calendar.next_close(now)


@dataclass(slots=True)
class AlpacaConsoleSession:
    """A ``LiveSession`` in the console's shape; ``aclose`` closes sockets, threads, journal."""

    live: LiveSession

    @property
    def engine(self) -> Engine:
        return self.live.engine

    @property
    def feed(self) -> Feed:
        return self.live.feed

    @property
    def calendar(self) -> MarketHours:
        return AlpacaHours(self.live.hours)

    @property
    def journal(self) -> Journal:
        return self.live.journal

    @property
    def reconciler(self) -> Any:
        """The session's ``engine.core.reconcile.Reconciler`` (for the reconcile modal)."""
        return getattr(self.live, "reconciler", None)

    async def aclose(self) -> None:
        """After ``engine.stop``. The ``m`` switch may have swapped the broker: close that too."""
        current = self.live.engine.broker
        await self.live.aclose()
        if current is not self.live.broker:
            await current.close()


class LiveSessionFactory:
    """Builds the paper (or live) session for the console; the app calls it in a thread.

    The heavy imports and the XNYS calendar load in that thread. The connection itself must
    live on the app's event loop (trade_updates, the data stream and the clock keeper are tasks
    there), so the build coroutine is handed to the loop with ``bind``'s ``call_from_thread``
    and the thread waits for it. A failure to connect becomes ``AccountUnavailable``: one line
    and exit 2, never a silent fall-back to the demo while the user has keys.
    """

    def __init__(
        self,
        config: EngineConfig,
        accounts: AlpacaAccounts,
        data_dir: Path,
        *,
        mode: Mode = Mode.PAPER,
        options: LiveOptions | None = None,
    ) -> None:
        self.config = config
        self.accounts = accounts
        self.data_dir = data_dir
        self.mode = mode
        self.options = options
        self.writer: WriterLock | None = None
        self._call: Callable[..., Any] | None = None

    def lock_journal(self) -> WriterLock:
        """Take the one-writer lock of this mode's journal folder before anything connects;
        ``DataDirBusy`` (one line naming the holder's PID) if another tapewatch has it."""
        from tapewatch.engine.storage.writer_lock import WriterLock

        if self.writer is None:
            folder = self.data_dir / self.mode.value.lower()  # engine.root.live.journal_path
            self.writer = WriterLock.acquire(folder, holder="the tapewatch console")
        return self.writer

    def bind(self, call_from_thread: Callable[..., Any]) -> None:
        """Give the app's ``call_from_thread`` (the app is built after this factory)."""
        self._call = call_from_thread

    def __call__(self) -> AlpacaConsoleSession:
        if self._call is None:
            raise RuntimeError("LiveSessionFactory.bind(app.call_from_thread) was not called")
        import tapewatch.engine.root.live  # noqa: F401 - alpaca-py, pandas: in this thread
        from tapewatch.engine.market.calendar import MarketCalendar

        calendar = MarketCalendar()
        session: AlpacaConsoleSession = self._call(self._build, calendar)
        return session

    async def _build(self, calendar: MarketCalendar) -> AlpacaConsoleSession:
        from dataclasses import replace

        from tapewatch.engine.adapters.alpaca.startup import StartupWait
        from tapewatch.engine.core.broker import BrokerError
        from tapewatch.engine.root.alpaca_accounts import rejected, unreachable
        from tapewatch.engine.root.host import AccountUnavailable
        from tapewatch.engine.root.live import LiveOptions, build_live_session

        mode = self.mode
        keys = self.accounts.keys(mode)
        if keys is None:
            raise AccountUnavailable(self.accounts.describe(mode))
        endpoints = self.accounts.endpoints(mode)
        # Differences found at start-up wait, paused, for the reconcile modal.
        options = self.options or LiveOptions(endpoints=endpoints, reconcile_headless=False)
        if options.endpoints is None:
            options = replace(options, endpoints=endpoints)
        if options.startup_wait is None:  # a person watches the loading screen: not for ever
            patience = StartupWait(give_up_after=CONSOLE_START_PATIENCE)
            options = replace(options, startup_wait=patience)
        url = options.endpoints.trading if options.endpoints is not None else endpoints.trading
        try:
            live = await build_live_session(
                self.config, mode, keys, self.data_dir, options=options, calendar=calendar
            )
        except BrokerError as exc:
            if exc.status == 401:
                raise AccountUnavailable(rejected(mode, url)) from None
            raise AccountUnavailable(unreachable(mode, url, exc)) from None
        self.accounts.use_clock(live.clock)
        other = Mode.LIVE if mode is Mode.PAPER else Mode.PAPER
        self.accounts.look_up_soon(other)  # for the m switch's confirmation screen
        return AlpacaConsoleSession(live)
