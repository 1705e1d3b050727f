"""The host side of an embedded console: a built session seen through the engine API.

The app gets an ``engine.api.handle.EngineHandle`` and two lifecycle calls (run the feed,
close the session) from here and nothing else. The host behind the handle is the composition
root's ``SessionHost`` (engine.root.host): account switches by mode over the console's account
directory, and the session's reconciler when it has one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from tapewatch.engine.api.handle import InProcessHandle
from tapewatch.engine.root.host import BrokerSource, SessionHost

if TYPE_CHECKING:
    from tapewatch.engine.core.reconcile import Reconciler
    from tapewatch.engine.root.console_session import ConsoleSession


@runtime_checkable
class Reconciling(Protocol):
    """A paper/live session: it compares the journal with the broker."""

    @property
    def reconciler(self) -> Reconciler | None: ...


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


def embed(session: ConsoleSession, accounts: BrokerSource) -> Embedded:
    """The handle over ``session``'s engine, with its calendar and host; call it on the loop."""
    engine = session.engine
    reconciler = session.reconciler if isinstance(session, Reconciling) else None
    host = SessionHost(engine, accounts, reconciler)
    handle = InProcessHandle(engine, host=host, hours=session.calendar)
    engine.set_attached(1)  # the embedded console watches it...
    engine.arm_attendance()  # ...and after a hang-up the dead-man's switch counts

    async def run() -> None:
        await engine.run(session.feed)

    return Embedded(handle, run, session)
