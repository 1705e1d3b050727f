"""The composition root: the one place sessions are put together.

``Root(settings)`` builds every kind of session — backtest, demo, paper, live — with its
engine, feed, broker, journal, clock and observers (order log, audit trail, metrics) from one
``engine.settings.model.Settings``. The CLI and the console say what they want (settings and a
kind); nothing outside this package constructs an ``Engine``, a broker or a journal
(tests/test_composition_root.py checks it). What only a host may do — read keys, build
brokers, switch the account traded — is ``engine.root.host.SessionHost``.

Each builder lives in its own module and is imported when first asked for, so importing this
package stays cheap (the console imports it before its first frame).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from tapewatch.engine.model.types import Mode

if TYPE_CHECKING:
    from pathlib import Path

    from tapewatch.engine.core.engine import Engine
    from tapewatch.engine.core.reconcile import Reconciler
    from tapewatch.engine.market.calendar import MarketCalendar
    from tapewatch.engine.root.backtest import BacktestParts
    from tapewatch.engine.root.demo import DemoOptions, DemoSession
    from tapewatch.engine.root.host import BrokerSource, SessionHost
    from tapewatch.engine.root.live import KeyPair, LiveOptions, LiveSession
    from tapewatch.engine.root.observers import Observers
    from tapewatch.engine.settings.model import Settings
__all__ = ["Root"]


class Root:
    """Builds sessions of every kind from one settings object."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def backtest(self, start: datetime) -> BacktestParts:
        """The engine, SimBroker and SimClock a backtest drives (no journal, no sleeping)."""
        from tapewatch.engine.root.backtest import build_backtest

        return build_backtest(self.settings.engine, start)

    def demo(
        self,
        *,
        options: DemoOptions | None = None,
        calendar: MarketCalendar | None = None,
        journal: bool = True,
    ) -> DemoSession:
        """Synthetic bars at the settings' seed and speed against the SimBroker; journaled
        under the data directory unless ``journal`` is False or there is none."""
        from tapewatch.engine.root.demo import DemoOptions, build_demo

        s = self.settings
        chosen = options or DemoOptions(seed=s.seed, speed=s.speed)
        folder = s.data_dir if journal else None
        return build_demo(s.engine, chosen, data_dir=folder, calendar=calendar)

    async def live(
        self,
        mode: Mode,
        credentials: KeyPair,
        *,
        options: LiveOptions | None = None,
        calendar: MarketCalendar | None = None,
    ) -> LiveSession:
        """Connect, reconcile and warm up a paper or live session at the settings' endpoints
        and data feed (the config file's [alpaca] table and the environment)."""
        from tapewatch.engine.root.live import LiveOptions, build_live_session
        from tapewatch.engine.settings.errors import ConfigError

        s = self.settings
        if s.data_dir is None:
            raise ConfigError("a paper or live session needs a data directory for its journal")
        options = options or LiveOptions()
        if options.endpoints is None:
            options = replace(options, endpoints=s.endpoints(mode))
        return await build_live_session(
            s.engine, mode, credentials, s.data_dir, options=options, calendar=calendar
        )

    def observe(self, engine: Engine, *, headless: bool, data_dir: Path | None = None) -> Observers:
        """The order log, audit trail and metrics ([metrics] or --metrics-*) for ``engine``."""
        from tapewatch.engine.root.observers import attach_observers
        from tapewatch.engine.settings.errors import ConfigError

        folder = data_dir or self.settings.data_dir
        if folder is None:
            raise ConfigError("observers need a data directory for the audit trail")
        return attach_observers(engine, self.settings.metrics, folder, headless=headless)

    def host(
        self,
        engine: Engine,
        accounts: BrokerSource | None = None,
        reconciler: Reconciler | None = None,
    ) -> SessionHost:
        """The host side of ``engine``'s session (what ``InProcessHandle`` takes): account
        switches by mode and the reconciler's questions."""
        from tapewatch.engine.root.host import SessionHost

        return SessionHost(engine, accounts, reconciler)
