"""``SocketHandle``: the ``EngineHandle`` of an engine served in another process.

The console drives it exactly as it drives the in-process handle: ``await send(command)`` gets
a reply, ``snapshot(newer_than)`` returns the newest picture the engine pushed (kept here, so
it never waits), ``events()`` is a bounded subscription to the events that follow it. A lost
connection is not an exception: later commands get a ``Refused`` naming it, event streams end,
and ``lost`` says why. A viewer (``control`` false: another console controls, or this one
attached read-only) refuses every command here with "read-only: ..." and sends nothing;
``take_control()`` asks for it, and ``on_control`` hears every handover. ``ask_status`` asks
a served engine what it is doing without attaching (connect, hello, ask, disconnect).
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import itertools
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tapewatch.engine.api.commands import Command, command_to_data
from tapewatch.engine.api.replies import Accepted, Refused, Reply, reply_from_data
from tapewatch.engine.api.snapshot import SCHEMA, Snapshot, snapshot_from_data
from tapewatch.engine.api.wire import (
    ATTACH,
    PROTOCOL,
    SERVED_MODES,
    STATUS,
    EngineUnavailable,
    ProtocolError,
    ProtocolMismatch,
    encode,
    event_from_data,
    mismatch_message,
    ours,
    reachable,
    read_message,
    socket_path,
)
from tapewatch.engine.core.bus import Subscription

log = logging.getLogger("tapewatch.attach")

CONNECT_TIMEOUT = 5.0
STREAM_SIZE = 4096  # events a slow reader may fall behind before the oldest are dropped


SocketEvents = Subscription
"""One subscription: the events that arrive after it was made, until the socket closes (the
engine bus's own bounded, drop-oldest subscription, fed from the socket)."""


@dataclass(frozen=True, slots=True)
class Welcome:
    """What the engine said when it let this client in."""

    client: int
    pid: int
    protocol: int
    schema: int
    version: str
    control: bool = False
    read_only: bool = False
    controller: str | None = None


@dataclass(frozen=True, slots=True)
class ControlChange:
    """A handover the engine told every attached console of."""

    control: bool  # this console controls now
    controller: str | None  # who does
    notice: str  # one line for the screen


READ_ONLY_ATTACH = (
    "read-only: this console attached --read-only; attach without it to send commands"
)


def _hello(
    role: str, protocol: int, schema: int, *, read_only: bool = False, take_control: bool = False
) -> dict[str, Any]:
    _p, _s, version = ours()
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    ssh = os.environ.get("SSH_CLIENT", "").split(" ")[0]
    return {
        "type": "hello",
        "protocol": protocol,
        "schema": schema,
        "version": version,
        "role": role,
        "user": user,
        "ssh": ssh,
        "read_only": read_only,
        "take_control": take_control,
    }


async def _open(
    path: Path,
    role: str,
    protocol: int,
    schema: int,
    timeout: float,
    *,
    read_only: bool = False,
    take_control: bool = False,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, Welcome]:
    """Connect and say hello; ``EngineUnavailable`` or ``ProtocolMismatch`` with one line."""
    try:
        with reachable(path) as where:
            reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(where), timeout)
    except FileNotFoundError:
        raise EngineUnavailable(f"no engine is serving {path} (no socket)") from None
    except ConnectionRefusedError:
        raise EngineUnavailable(
            f"no engine is serving {path} (a socket left by a stopped engine)"
        ) from None
    except TimeoutError:
        raise EngineUnavailable(f"the engine at {path} did not answer in {timeout:g} s") from None
    except OSError as exc:
        raise EngineUnavailable(
            f"cannot reach the engine at {path}: {exc.strerror or exc}"
        ) from None
    try:
        hello = _hello(role, protocol, schema, read_only=read_only, take_control=take_control)
        writer.write(encode(hello))
        await writer.drain()
        answer = await asyncio.wait_for(read_message(reader), timeout)
    except TimeoutError:
        writer.close()
        raise EngineUnavailable(f"the engine at {path} did not answer in {timeout:g} s") from None
    except (ProtocolError, ConnectionError, OSError) as exc:
        writer.close()
        raise EngineUnavailable(f"the engine at {path} closed the connection: {exc}") from None
    if answer is None or answer.get("type") not in ("welcome", "refused"):
        writer.close()
        raise EngineUnavailable(f"the engine at {path} did not say hello back")
    engine = (answer.get("protocol"), answer.get("schema"), str(answer.get("version", "?")))
    if answer["type"] == "refused":
        writer.close()
        reason = str(answer.get("reason", "refused"))
        if engine[:2] != (protocol, schema):
            raise ProtocolMismatch(reason)
        raise EngineUnavailable(f"the engine at {path} refused this client: {reason}")
    mine = (protocol, schema, ours()[2])
    if engine[:2] != mine[:2]:  # an engine that let us in regardless: still not readable
        writer.close()
        raise ProtocolMismatch(mismatch_message(engine, mine))  # type: ignore[arg-type]
    welcome = Welcome(
        int(answer.get("client", 0)),
        int(answer.get("pid", 0)),
        int(answer["protocol"]),
        int(answer["schema"]),
        engine[2],
        control=bool(answer.get("control")),
        read_only=bool(answer.get("read_only")),
        controller=answer.get("controller"),
    )
    return reader, writer, welcome


class SocketHandle:
    """An ``EngineHandle`` over a served engine's Unix socket; make one with ``connect``."""

    def __init__(
        self,
        path: Path,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        welcome: Welcome,
        first: Snapshot,
    ) -> None:
        self.path = path
        self.welcome = welcome
        self._reader = reader
        self._writer = writer
        self._snapshot = first
        self._streams: list[SocketEvents] = []
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self.lost: str | None = None
        self.control = welcome.control
        self.controller = welcome.controller
        self.on_control: Callable[[ControlChange], None] | None = None
        # Told when a newer snapshot arrived: the console draws it now, not at its next 1 Hz look
        # (an event usually comes before the snapshot that holds it).
        self.on_snapshot: Callable[[], None] | None = None
        self._reading = asyncio.create_task(self._read(), name="tapewatch-attach-reader")

    @classmethod
    async def connect(
        cls,
        path: Path,
        *,
        timeout: float = CONNECT_TIMEOUT,
        protocol: int = PROTOCOL,
        schema: int = SCHEMA,
        read_only: bool = False,
        take_control: bool = False,
    ) -> SocketHandle:
        """Attach: hello, then the first snapshot (so ``snapshot()`` has one at once).
        ``read_only`` never controls; ``take_control`` takes it from whoever has it."""
        path = Path(path)
        reader, writer, welcome = await _open(
            path,
            ATTACH,
            protocol,
            schema,
            timeout,
            read_only=read_only,
            take_control=take_control,
        )
        try:
            first = await asyncio.wait_for(read_message(reader), timeout)
            if first is None or first.get("type") != "snapshot":
                raise EngineUnavailable(f"the engine at {path} sent no snapshot")
            snap = snapshot_from_data(first["snapshot"])
        except TimeoutError:
            writer.close()
            raise EngineUnavailable(f"the engine at {path} sent no snapshot in time") from None
        except (ProtocolError, ValueError, TypeError, KeyError) as exc:
            writer.close()
            raise ProtocolMismatch(
                f"cannot read the engine's snapshot ({exc}): attach with the tapewatch the "
                "engine runs"
            ) from None
        except BaseException:
            writer.close()
            raise
        return cls(path, reader, writer, welcome, snap)

    # ------------------------------------------------------------------ EngineHandle
    def snapshot(self, newer_than: int | None = None) -> Snapshot | None:
        snap = self._snapshot
        if newer_than is not None and snap.version <= newer_than:
            return None
        return snap

    def events(self) -> SocketEvents:
        stream = SocketEvents(self, STREAM_SIZE)
        if self.lost is not None:
            stream.offer(None)
        else:
            self._streams.append(stream)
        return stream

    @property
    def read_only(self) -> str | None:
        """Why this console may not send commands now ("read-only: ..."); None when it may."""
        if self.control or self.lost is not None:  # a lost engine answers "not connected"
            return None
        if self.welcome.read_only:
            return READ_ONLY_ATTACH
        holder = (
            f"{self.controller} controls this engine" if self.controller else ("nobody controls")
        )
        return f"read-only: {holder}; take control (C, or attach --take-control) to send commands"

    async def take_control(self) -> Reply:
        """Ask the engine for control (journaled there; every console is told)."""
        if self.welcome.read_only:
            return Refused(READ_ONLY_ATTACH)
        try:
            answer = await self._ask({"type": "take_control"})
        except EngineUnavailable as exc:
            return Refused(str(exc))
        if not answer.get("ok"):
            return Refused(str(answer.get("reason", "the engine kept control where it was")))
        self.control = True
        self.controller = answer.get("controller")
        return Accepted(f"you control the engine now ({self.controller})")

    async def send(self, command: Command) -> Reply:
        refusal = self.read_only
        if refusal is not None:  # a viewer sends nothing (the engine would refuse it too)
            return Refused(refusal)
        try:
            answer = await self._ask({"type": "command", "command": command_to_data(command)})
        except EngineUnavailable as exc:
            return Refused(str(exc))
        if answer.get("type") != "reply":
            return Refused(str(answer.get("reason", "the engine could not answer")))
        try:
            return reply_from_data(answer["reply"])
        except (ValueError, TypeError, KeyError) as exc:
            return Refused(f"the engine's reply is not readable here ({exc})")

    async def latency_histograms(self, buckets: int) -> dict[str, tuple[int, ...]]:
        try:
            answer = await self._ask({"type": "latency", "buckets": buckets})
        except EngineUnavailable:
            return {}
        raw = answer.get("histograms") or {}
        return {str(stage): tuple(int(n) for n in counts) for stage, counts in raw.items()}

    async def status(self) -> dict[str, Any]:
        answer = await self._ask({"type": "status"})
        status: dict[str, Any] = answer.get("status") or {}
        return status

    async def wait_lost(self) -> str:
        """Until the connection ends (the engine went, or ``close``); why it ended."""
        await asyncio.wait({self._reading})  # never raises: the reader's end is its own
        return self.lost or "the connection ended"

    async def close(self) -> None:
        """Detach: the engine goes on; our streams end."""
        self._lose("detached")
        self._reading.cancel()
        with contextlib.suppress(BaseException):
            await self._reading
        self._writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._writer.wait_closed(), 1.0)

    # ------------------------------------------------------------------ plumbing
    async def _ask(self, message: dict[str, Any]) -> dict[str, Any]:
        if self.lost is not None:
            raise EngineUnavailable(f"not connected to the engine at {self.path}: {self.lost}")
        ident = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[ident] = future
        try:
            self._writer.write(encode({**message, "id": ident}))
            await self._writer.drain()
            return await future
        except (ConnectionError, OSError) as exc:
            self._lose(f"the connection broke ({exc})")
            raise EngineUnavailable(f"lost the engine at {self.path}: {self.lost}") from None
        finally:
            self._waiting.pop(ident, None)

    def unsubscribe(self, stream: SocketEvents) -> None:
        if stream in self._streams:
            self._streams.remove(stream)

    async def _read(self) -> None:
        reason = "the engine closed the connection"
        try:
            while True:
                message = await read_message(self._reader)
                if message is None:
                    break
                kind = message["type"]
                if kind == "snapshot":
                    self._snapshot = snapshot_from_data(message["snapshot"])
                    if self.on_snapshot is not None:
                        self.on_snapshot()
                elif kind == "event":
                    self._event(message)
                elif kind == "control" and message.get("id") is None:
                    self._control(message)
                elif kind == "bye":
                    reason = str(message.get("reason", reason))
                    break
                else:
                    future = self._waiting.get(message.get("id", -1))
                    if future is not None and not future.done():
                        future.set_result(message)
        except (ProtocolError, ConnectionError, OSError, ValueError, KeyError) as exc:
            reason = f"the connection broke ({exc})"
        finally:
            self._lose(reason)

    def _control(self, message: dict[str, Any]) -> None:
        self.control = bool(message.get("control"))
        self.controller = message.get("controller")
        change = ControlChange(self.control, self.controller, str(message.get("notice", "")))
        if self.on_control is not None:
            try:
                self.on_control(change)
            except Exception:  # the listener's trouble, not the connection's
                log.exception("a control listener failed")

    def _event(self, message: dict[str, Any]) -> None:
        try:
            event = event_from_data(message)
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("an event this version cannot read: %s", exc)
            return
        for stream in self._streams:
            stream.offer(event)

    def _lose(self, reason: str) -> None:
        if self.lost is not None:
            return
        self.lost = reason
        for stream in self._streams:
            stream.offer(None)
        self._streams.clear()
        gone = EngineUnavailable(f"lost the engine at {self.path}: {reason}")
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(gone)


@dataclass(frozen=True, slots=True)
class EngineStatus:
    """One served engine's answer to ``tapewatch status`` (``details`` as the engine said)."""

    socket: Path
    details: dict[str, Any]


async def ask_status(path: Path, *, timeout: float = CONNECT_TIMEOUT) -> EngineStatus:
    """Connect, hello as a status client, ask, disconnect: nothing is attached."""
    reader, writer, _welcome = await _open(Path(path), STATUS, PROTOCOL, SCHEMA, timeout)
    try:
        writer.write(encode({"type": "status", "id": 1}))
        await writer.drain()
        answer = await asyncio.wait_for(read_message(reader), timeout)
    except TimeoutError:
        raise EngineUnavailable(f"the engine at {path} did not answer in {timeout:g} s") from None
    except (ProtocolError, ConnectionError, OSError) as exc:
        raise EngineUnavailable(f"the engine at {path} closed the connection: {exc}") from None
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 1.0)
    if answer is None or answer.get("type") != "status":
        raise EngineUnavailable(f"the engine at {path} did not answer the status question")
    return EngineStatus(Path(path), dict(answer.get("status") or {}))


def served_sockets(data_dir: Path) -> list[Path]:
    """The socket files present under ``data_dir`` (one per mode folder that has one)."""
    out = []
    for mode in SERVED_MODES:
        path = socket_path(data_dir, mode)
        if os.path.lexists(path):
            out.append(path)
    return out
