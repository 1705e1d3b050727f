"""The host side of an embedded console: a built session seen through the engine API.

The app gets an ``engine.api.handle.EngineHandle`` and two lifecycle calls (run the feed,
close the session) from here and nothing else. ``ConsoleHost`` is the ``SessionHost`` over
today's account directory and the session's reconciler; the composition root takes this over
(it already builds the brokers and holds the keys).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from tapewatch.console.accounts import AccountDirectory, AccountUnavailable
from tapewatch.engine.api.handle import InProcessHandle
from tapewatch.engine.api.replies import Accepted, AccountSwitched, Refused, Reply
from tapewatch.engine.api.snapshot import Reconciliation
from tapewatch.engine.core.broker import BrokerError
from tapewatch.engine.core.engine import EngineCommandError
from tapewatch.engine.model.types import Mode

if TYPE_CHECKING:
    from tapewatch.console.session import ConsoleSession
    from tapewatch.engine.api.commands import Choice
    from tapewatch.engine.core.reconcile import Difference, Reconciler


@runtime_checkable
class Reconciling(Protocol):
    """A paper/live session: it compares the journal with the broker."""

    @property
    def reconciler(self) -> Reconciler | None: ...


class ConsoleHost:
    """``SessionHost`` for a console session: accounts by mode, the reconciler's questions."""

    def __init__(self, session: ConsoleSession, accounts: AccountDirectory) -> None:
        self._engine = session.engine
        self._accounts = accounts
        self._reconciler = session.reconciler if isinstance(session, Reconciling) else None
        self._asks = 0
        if self._reconciler is not None:  # differences wait for a person instead of adoption
            self._reconciler.headless = False
            self._reconciler.set_listener(self._asked)
            if self._reconciler.pending:  # found at start-up, before the console attached
                self._asked(list(self._reconciler.pending))

    def _asked(self, _differences: list[Difference]) -> None:
        self._asks += 1

    def describe_account(self, mode: Mode) -> str | None:
        available = (
            self._accounts.live_available()
            if mode is Mode.LIVE
            else self._accounts.paper_available()
            if mode is Mode.PAPER
            else False
        )
        return self._accounts.describe(mode) if available else None

    async def switch_account(self, mode: Mode, who: str) -> Reply:
        try:
            broker, account, endpoint = await self._accounts.connect(mode)
        except (AccountUnavailable, BrokerError) as exc:
            return Refused(f"Cannot switch to {mode.value}: {exc}")
        try:
            await self._engine.switch_account(
                mode=mode, broker=broker, account=account, endpoint=endpoint, who=who
            )
        except EngineCommandError as exc:
            await broker.close()
            return Refused(f"Switch refused: {exc}")
        return Accepted(f"Now trading {mode.value}: {account}", AccountSwitched(mode, account))

    def reconciliation(self) -> Reconciliation | None:
        reconciler = self._reconciler
        if reconciler is None:
            return None
        return Reconciliation(self._asks, tuple(reconciler.pending))

    async def resolve_reconciliation(self, choice: Choice, who: str) -> Reply:
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


@dataclass(slots=True)
class Embedded:
    """An engine session as the embedded console drives it."""

    handle: InProcessHandle
    run: Callable[[], Awaitable[None]]  # drive the feed until it ends or the engine stops
    session: Any

    async def aclose(self) -> None:
        """After the stop: a paper/live session closes its sockets and threads too."""
        aclose = getattr(self.session, "aclose", None)
        if aclose is not None:
            await aclose()
        else:
            close_journal(self.session)

    def close_journal(self) -> None:
        close_journal(self.session)


def close_journal(session: object) -> None:
    """Close a built session's journal (every record is already committed)."""
    journal = getattr(session, "journal", None)
    if journal is not None:
        journal.close()


def embed(session: ConsoleSession, accounts: AccountDirectory) -> Embedded:
    """The handle over ``session``'s engine, with its calendar and host; call it on the loop."""
    engine = session.engine
    handle = InProcessHandle(engine, host=ConsoleHost(session, accounts), hours=session.calendar)

    async def run() -> None:
        await engine.run(session.feed)

    return Embedded(handle, run, session)
