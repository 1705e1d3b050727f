"""The host side of an embedded console: a built session seen through the engine API.

The app gets an ``engine.api.handle.EngineHandle`` and a few lifecycle calls (run the feed,
serve the API on the data directory's socket, hang up, close the session) from here and nothing
else. The host behind the handle is the composition root's ``SessionHost`` (engine.root.host):
account switches by mode over the console's account directory, and the session's reconciler
when it has one.

The console's process serves the same handle on ``<data dir>/<mode>/engine.sock`` for the
session's life, as ``run --headless`` does, so ``tapewatch attach`` and ``tapewatch status``
work while the console is up and after its terminal hangs up. The dead-man's switch counts the
embedded console (until ``hang_up``) plus the consoles attached over the socket.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from tapewatch.engine.api.commands import HungUp
from tapewatch.engine.api.handle import InProcessHandle
from tapewatch.engine.api.replies import Reply
from tapewatch.engine.root.host import BrokerSource, SessionHost

if TYPE_CHECKING:
    from tapewatch.engine.api.socket_server import EngineServer
    from tapewatch.engine.core.reconcile import Reconciler
    from tapewatch.engine.root.console_session import ConsoleSession


@runtime_checkable
class Reconciling(Protocol):
    """A paper/live session: it compares the journal with the broker."""

    @property
    def reconciler(self) -> Reconciler | None: ...


log = logging.getLogger("tapewatch.console")

SERVER_CLOSE = 2.0
"""Seconds the stop gives the socket server to say bye to attached consoles (the console's
whole stop fits in its shutdown budget)."""


@dataclass(slots=True)
class Embedded:
    """An engine session as the embedded console drives it."""

    handle: InProcessHandle
    run: Callable[[], Awaitable[None]]  # drive the feed until it ends or the engine stops
    session: Any
    server: EngineServer | None = None
    console_attached: bool = True  # the embedded console's own screen, until a hang-up
    remote_clients: int = 0  # consoles attached over the socket

    async def serve(self, path: Path) -> Path:
        """Serve the handle on ``path`` (0600 in a 0700 folder) until ``aclose``.

        Raises ``ServeError`` when another engine answers there, ``OSError`` for an unusable
        folder: the console then runs unserved and says so."""
        from tapewatch.engine.api.socket_server import serve

        self.server = await serve(
            self.handle,
            path,
            on_clients=self._remote,
            info=lambda: {"host": "console", "console": self.console_state},
            journal=self.session.engine._operator,  # a handover is an operator action
        )
        log.info("the embedded console's engine serves its API on %s", path)
        return path

    @property
    def console_state(self) -> str:
        return "attached" if self.console_attached else "hung up"

    def _remote(self, clients: int) -> None:
        self.remote_clients = clients
        self._count()

    def _count(self) -> None:
        self.session.engine.set_attached(int(self.console_attached) + self.remote_clients)

    async def hang_up(self, policy: str, who: str, why: str) -> Reply:
        """The terminal went away: journal it as ``who``'s action with ``policy`` applied,
        and stop counting the embedded console as attached (the dead-man's switch counts
        from now unless a console is attached over the socket)."""
        reply = await self.handle.send(HungUp(who=who, policy=policy, why=why))
        self.console_attached = False
        self._count()
        return reply

    async def aclose(self) -> None:
        """After the stop: the socket says bye to its clients, and a paper/live session closes
        its sockets and threads too."""
        server, self.server = self.server, None
        if server is not None:
            try:
                await asyncio.wait_for(server.close(), SERVER_CLOSE)
            except TimeoutError:
                log.warning("closing the engine socket took over %g s: left", SERVER_CLOSE)
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
