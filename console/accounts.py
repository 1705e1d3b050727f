"""Which broker accounts the console may trade, behind one small seam.

The console never reads credentials itself: an ``AccountDirectory`` says whether paper and live
accounts are available, describes them for the confirmation screens, and connects a broker when
asked. Until the Alpaca adapter provides a real directory, ``NoAccounts`` is used and the console
opens the offline demo.
"""

from __future__ import annotations

from typing import Protocol

from tapewatch.engine.core.broker import Broker
from tapewatch.engine.model.types import Mode
from tapewatch.engine.root.host import AccountUnavailable

__all__ = ["AccountDirectory", "AccountUnavailable", "NoAccounts"]


class AccountDirectory(Protocol):
    def live_available(self) -> bool:
        """True when live credentials are stored."""
        ...

    def paper_available(self) -> bool:
        """True when paper credentials are stored."""
        ...

    def describe(self, mode: Mode) -> str:
        """One line naming the account (fingerprint) and endpoint that ``connect(mode)`` trades."""
        ...

    async def connect(self, mode: Mode) -> tuple[Broker, str, str]:
        """A connected broker for ``mode`` plus its account label and endpoint."""
        ...


class NoAccounts:
    """No credentials stored: only the offline demo is available."""

    def live_available(self) -> bool:
        return False

    def paper_available(self) -> bool:
        return False

    def describe(self, mode: Mode) -> str:
        return f"no {mode.value.lower()} credentials stored"

    async def connect(self, mode: Mode) -> tuple[Broker, str, str]:
        raise AccountUnavailable(
            f"no {mode.value.lower()} credentials are stored; add Alpaca keys first"
        )
