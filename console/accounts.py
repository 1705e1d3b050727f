"""Which broker accounts the console may trade, behind one small seam.

The console never reads credentials itself: an account directory says whether paper and live
accounts are available, describes them for the confirmation screens, and connects a broker when
asked. It is the composition root's ``BrokerSource`` (``engine.root.host``), named here for the
console: ``AlpacaAccounts`` (``engine.api.accounts``) with keys, ``NoAccounts`` without, when
the console opens the offline demo.
"""

from __future__ import annotations

from tapewatch.engine.api.sessions import AccountUnavailable, BrokerSource, NoBrokers

AccountDirectory = BrokerSource
NoAccounts = NoBrokers

__all__ = ["AccountDirectory", "AccountUnavailable", "NoAccounts"]
