"""Building sessions: the public face of the composition root (``engine.root``).

A front end says what it wants — ``Root(settings).demo()``, ``.live(mode, keys)``,
``.backtest(start)`` — and gets a session; it never constructs an engine, a broker or a
journal itself. ``SessionHost`` is what only the host may do (switch the account by mode).
"""

from tapewatch.engine.root import Root
from tapewatch.engine.root.host import AccountUnavailable, BrokerSource, NoBrokers, SessionHost

__all__ = ["AccountUnavailable", "BrokerSource", "NoBrokers", "Root", "SessionHost"]
