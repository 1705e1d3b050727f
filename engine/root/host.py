"""What only the engine host may do: hold the keys, build brokers, switch the account traded.

A console (in-process today, across a socket next) asks for an account by mode; it never holds
a broker or a key. ``SessionHost`` is the ``engine.api.handle.SessionHost`` an
``InProcessHandle`` takes: ``switch_account(mode, who)`` connects the other account through its
``BrokerSource`` (keys read once at start-up, brokers built by ``engine.root.live``) and hands
the broker to the engine, which refuses while HALTED or with orders in flight.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from tapewatch.engine.model.types import Mode
from tapewatch.engine.settings.errors import TapewatchError

if TYPE_CHECKING:  # console.accounts imports this module before the first frame: keep it light
    from tapewatch.engine.api.commands import Choice
    from tapewatch.engine.api.replies import Reply
    from tapewatch.engine.api.snapshot import Reconciliation
    from tapewatch.engine.core.broker import Broker
    from tapewatch.engine.core.engine import Engine
    from tapewatch.engine.core.reconcile import Difference, Reconciler


class AccountUnavailable(TapewatchError):
    """The requested account cannot be used; the message says why and what to do."""


class BrokerSource(Protocol):
    """Connects the broker of an account (``engine.root.alpaca_accounts.AlpacaAccounts``)."""

    def live_available(self) -> bool: ...

    def paper_available(self) -> bool: ...

    def describe(self, mode: Mode) -> str: ...

    async def connect(self, mode: Mode) -> tuple[Broker, str, str]:
        """A started broker for ``mode``, its account label and endpoint; raises
        ``AccountUnavailable`` with one line saying why not."""
        ...


class NoBrokers:
    """No keys stored: only the offline demo is available."""

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


class SessionHost:
    """``engine.api.handle.SessionHost`` for a session: account switches by mode, and the
    reconciler's questions (paper/live)."""

    def __init__(
        self,
        engine: Engine,
        accounts: BrokerSource | None = None,
        reconciler: Reconciler | None = None,
    ) -> None:
        self.engine = engine
        self.accounts: BrokerSource = accounts or NoBrokers()
        self._reconciler = reconciler
        self._asks = 0
        if reconciler is not None:  # differences wait for a person instead of adoption
            reconciler.headless = False
            reconciler.set_listener(self._asked)
            if reconciler.pending:  # found at start-up, before anyone attached
                self._asked(list(reconciler.pending))

    def _asked(self, _differences: list[Difference]) -> None:
        self._asks += 1

    def available(self, mode: Mode) -> bool:
        if mode is Mode.LIVE:
            return self.accounts.live_available()
        if mode is Mode.PAPER:
            return self.accounts.paper_available()
        return False

    def describe_account(self, mode: Mode) -> str | None:
        return self.accounts.describe(mode) if self.available(mode) else None

    async def switch_account(self, mode: Mode, who: str) -> Reply:
        """Trade ``mode``'s account from now on; refused (with the reason) when it has no
        keys, Alpaca refuses or cannot be reached, or the engine refuses (HALTED, orders in
        flight) — the new broker is then closed again."""
        from tapewatch.engine.api.replies import Accepted, AccountSwitched, Refused
        from tapewatch.engine.core.broker import BrokerError
        from tapewatch.engine.core.engine import EngineCommandError

        try:
            broker, account, endpoint = await self.accounts.connect(mode)
        except (AccountUnavailable, BrokerError) as exc:
            return Refused(f"Cannot switch to {mode.value}: {exc}")
        try:
            await self.engine.switch_account(
                mode=mode, broker=broker, account=account, endpoint=endpoint, who=who
            )
        except EngineCommandError as exc:
            await broker.close()
            return Refused(f"Switch refused: {exc}")
        return Accepted(f"Now trading {mode.value}: {account}", AccountSwitched(mode, account))

    def reconciliation(self) -> Reconciliation | None:
        from tapewatch.engine.api.snapshot import Reconciliation

        if self._reconciler is None:
            return None
        return Reconciliation(self._asks, tuple(self._reconciler.pending))

    async def resolve_reconciliation(self, choice: Choice, who: str) -> Reply:
        from tapewatch.engine.api.replies import Accepted, Refused
        from tapewatch.engine.core.broker import BrokerError

        reconciler = self._reconciler
        if reconciler is None:
            return Refused("Nothing to reconcile: this session has no broker to compare with")
        try:
            if choice == "adopt":
                await reconciler.adopt(who)
            elif choice == "flatten":
                await reconciler.flatten(who)
            else:
                reconciler.keep_paused()
        except BrokerError as exc:
            return Refused(str(exc))
        return Accepted(choice)
