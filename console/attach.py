"""A console attached to a served engine: connect, follow, and reconnect when the socket goes.

``Attachment`` is what ``TapewatchApp(attach=...)`` runs instead of building a session: it
connects through the handle factory it was given (a ``SocketHandle`` to ``tapewatch run
--headless`` or ``tapewatch demo --headless``), hands the handle to the app (a snapshot first,
then events), and waits for the socket to end. A lost socket raises the banner and retries with
backoff until the engine answers again (a restarted engine comes back, its versions counted
afresh); the first connection failing ends the console with one line. Detaching closes the
socket only: the engine keeps trading.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from tapewatch.engine.api.handle import EngineHandle
from tapewatch.engine.api.replies import Reply
from tapewatch.engine.api.socket_client import READ_ONLY_ATTACH, ControlChange
from tapewatch.engine.api.wire import EngineUnavailable, ProtocolMismatch

log = logging.getLogger("tapewatch.attach")

BACKOFF = (0.5, 1.0, 2.0, 4.0, 5.0)  # seconds before each retry; the last one repeats
DETACHED = "detached; the engine keeps trading"
NOT_ENGINE = 1  # exit status: no engine answered the first time
MISMATCH = 2  # exit status: another protocol (one line naming both)


class AttachedHandle(EngineHandle, Protocol):
    """What an attached console needs beyond ``EngineHandle`` (``SocketHandle`` has it)."""

    lost: str | None
    control: bool
    controller: str | None
    on_control: Callable[[ControlChange], None] | None
    on_snapshot: Callable[[], None] | None

    @property
    def read_only(self) -> str | None: ...

    async def take_control(self) -> Reply: ...

    async def wait_lost(self) -> str: ...

    async def close(self) -> None: ...


Connect = Callable[[bool], Awaitable[AttachedHandle]]
"""``connect(take_control)``: a new attached handle (raises EngineUnavailable/ProtocolMismatch)."""


class AttachHost(Protocol):
    """The app's side: what an attachment tells it (``TapewatchApp`` implements it)."""

    def use_handle(self, handle: AttachedHandle, *, again: bool) -> None: ...

    def show_link(self, text: str | None) -> None: ...

    def attach_failed(self, line: str, code: int) -> None: ...

    def notify_control(self, change: ControlChange) -> None: ...

    def request_frame(self) -> None: ...

    @property
    def quitting(self) -> bool: ...


def attached_as(handle: AttachedHandle) -> str:
    """The start-up note's words: controller, or a viewer and who controls."""
    if handle.control:
        return "you control it"
    if handle.read_only == READ_ONLY_ATTACH:
        return "a viewer (attached --read-only)"
    return f"a viewer, {handle.controller or 'nobody'} controls (C takes control)"


class Attachment:
    """Keeps one console attached: ``run(host)`` until it detaches (``detach()``)."""

    def __init__(
        self,
        connect: Connect,
        *,
        take_control: bool = False,
        backoff: Sequence[float] = BACKOFF,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        where: str = "the engine",
    ) -> None:
        self._connect = connect
        self._take_control = take_control
        self._backoff = tuple(backoff) or BACKOFF
        self._sleep = sleep
        self.where = where
        self.handle: AttachedHandle | None = None
        self.reconnects = 0  # how many times a lost socket came back
        self._detached = False

    async def run(self, host: AttachHost) -> None:
        """Connect, follow until the socket ends, reconnect; return once detached."""
        try:
            handle = await self._connect(self._take_control)
        except (EngineUnavailable, ProtocolMismatch) as exc:
            code = MISMATCH if isinstance(exc, ProtocolMismatch) else NOT_ENGINE
            host.attach_failed(str(exc), code)
            return
        self._adopt(host, handle, again=False)
        while not self._detached and not host.quitting:
            reason = await handle.wait_lost()
            if self._detached or host.quitting:
                return
            log.warning("lost the engine: %s", reason)
            again = await self._reconnect(host, reason)
            if again is None:
                return
            handle = again
            self.reconnects += 1
            self._adopt(host, handle, again=True)

    def _adopt(self, host: AttachHost, handle: AttachedHandle, *, again: bool) -> None:
        self.handle = handle
        handle.on_control = host.notify_control
        handle.on_snapshot = host.request_frame
        host.show_link(None)
        host.use_handle(handle, again=again)

    async def _reconnect(self, host: AttachHost, reason: str) -> AttachedHandle | None:
        """Retry with backoff until the engine answers (None once detached meanwhile)."""
        attempt = 0
        while not self._detached and not host.quitting:
            delay = self._backoff[min(attempt, len(self._backoff) - 1)]
            host.show_link(
                f"LOST THE ENGINE ({reason}): reconnecting in {delay:g} s, attempt {attempt + 1}"
                " · q detaches"
            )
            await self._sleep(delay)
            if self._detached or host.quitting:
                return None
            try:
                return await self._connect(False)  # control is taken back only if free
            except ProtocolMismatch as exc:  # the engine came back as another version
                host.attach_failed(str(exc), MISMATCH)
                return None
            except EngineUnavailable as exc:
                reason = str(exc).split(": ", 1)[-1]
                attempt += 1
        return None

    async def detach(self) -> None:
        """Close the socket only: the engine keeps trading."""
        self._detached = True
        handle = self.handle
        if handle is not None:
            await handle.close()
