"""Building and hosting sessions: the public face of the composition root (``engine.root``).

A front end says what it wants — ``Root(settings).demo()``, ``.live(mode, keys)``,
``.backtest(start)`` — and gets a session; it never constructs an engine, a broker or a
journal itself. ``SessionHost`` is what only the host may do (switch the account by mode).
The embedded console gets its session from a ``SessionFactory`` (``LiveSessionFactory`` for
paper and live, built in its loading thread) and drives it through ``embed``'s handle; the
headless ``run`` and ``demo`` commands hand theirs to ``run_headless``.
"""

from tapewatch.engine.core.engine import Engine
from tapewatch.engine.root import Root
from tapewatch.engine.root.console_session import (
    ConsoleSession,
    LiveSessionFactory,
    SessionFactory,
    prime,
)
from tapewatch.engine.root.embed import Embedded, close_journal, embed
from tapewatch.engine.root.headless import install_stop_signals, run_headless
from tapewatch.engine.root.host import AccountUnavailable, BrokerSource, NoBrokers, SessionHost

__all__ = [
    "AccountUnavailable",
    "BrokerSource",
    "ConsoleSession",
    "Embedded",
    "Engine",
    "LiveSessionFactory",
    "NoBrokers",
    "Root",
    "SessionFactory",
    "SessionHost",
    "close_journal",
    "embed",
    "install_stop_signals",
    "prime",
    "run_headless",
]
