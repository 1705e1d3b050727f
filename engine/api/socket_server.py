"""The engine API served on a Unix socket: the same handle, for clients in other processes.

``EngineServer`` fronts an ``EngineHandle`` (the host's ``InProcessHandle``). Each connection
says hello with its protocol version; another version is refused with one line naming both. An
attached client then gets a snapshot, then the engine's events (its own bounded subscription,
taken before that snapshot, so no event is missed and a slow reader loses the oldest, never
holding the engine) and a newer snapshot whenever one exists, at most every ``push_every``
seconds. A status connection only asks questions and is not counted as attached.

One controller, many viewers: the first attached client that did not ask to be read-only
controls; later ones watch. A viewer's commands are refused (``Refused("read-only: ...")``)
here as well as in its console; ``take_control`` hands control over (refused to a client that
attached read-only), is journaled through ``journal`` and told to every attached client as a
``control`` frame. Every command runs with ``who`` rewritten to the attaching user, the SSH
client and the peer's PID, so the journal and the audit trail name the person, not the engine.

Commands run as tasks of the server, not of the connection: a client that vanishes
mid-command leaves the command to finish and the engine trading; only its reply is dropped.
The socket is 0600 in a 0700 folder, and a peer of another user is refused even so. Only one
engine serves a folder: the caller holds its writer lock, and a socket that still answers is
never replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tapewatch.engine import __version__
from tapewatch.engine.api.commands import command_from_data
from tapewatch.engine.api.handle import EngineHandle
from tapewatch.engine.api.replies import Refused, reply_to_data
from tapewatch.engine.api.snapshot import SCHEMA, Snapshot, snapshot_to_data
from tapewatch.engine.api.wire import (
    ATTACH,
    PROTOCOL,
    ROLES,
    ProtocolError,
    encode,
    event_to_data,
    mismatch_message,
    reachable,
    read_message,
)
from tapewatch.engine.model.events import Event
from tapewatch.engine.settings.errors import TapewatchError
from tapewatch.engine.storage.datadir import DIR_MODE, FILE_MODE, private_dir

log = logging.getLogger("tapewatch.serve")

PUSH_EVERY = 0.1  # seconds between snapshot pushes at most (the console draws at a few Hz)
HELLO_TIMEOUT = 5.0  # a peer that says nothing is dropped
DRAIN_TIMEOUT = 10.0  # a client that reads nothing for this long is dropped
CLOSE_GRACE = 1.0  # seconds on close for the last events and commands in hand
BYE_TIMEOUT = 0.2  # seconds on close for each client's last frame
STATUS_ONLY = "a status connection asks questions only: attach to send commands"
READ_ONLY_HELLO = "this console attached --read-only: it cannot take control"
_PEERCRED = struct.Struct("3i")  # pid, uid, gid


class ServeError(TapewatchError):
    """The socket cannot be served (another engine answers on it, the folder is unusable)."""


@dataclass(slots=True)
class Client:
    """One connection as the status answer lists it."""

    id: int
    role: str
    user: str
    ssh: str
    pid: int | None
    since: datetime
    writer: asyncio.StreamWriter
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    events: asyncio.Task[None] | None = None
    snapshots: asyncio.Task[None] | None = None
    pending: Snapshot | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    gone: bool = False
    read_only: bool = False  # asked for in its hello: never controls
    control: bool = False

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "user": self.user,
            "ssh": self.ssh,
            "pid": self.pid,
            "since": self.since.isoformat(),
            "control": self.control,
            "read_only": self.read_only,
        }

    @property
    def who(self) -> str:
        """Who the journal and the audit trail name for this client's commands."""
        where = self.ssh or "local"
        pid = f", pid {self.pid}" if self.pid is not None else ""
        return f"{self.user or '?'}@{where} (attach #{self.id}{pid})"


def read_only_reason(controller: Client | None) -> str:
    """The refusal a viewer's command gets: who controls, and how to take over."""
    holder = f"{controller.who} controls this engine" if controller else "nobody controls"
    return f"read-only: {holder}; take control (C, or attach --take-control) to send commands"


def _peer(writer: asyncio.StreamWriter) -> tuple[int | None, int | None]:
    """(pid, uid) of the connected process from the kernel (SO_PEERCRED), when it says."""
    sock = writer.get_extra_info("socket")
    peercred = getattr(socket, "SO_PEERCRED", None)
    if sock is None or peercred is None:
        return None, None
    try:
        pid, uid, _gid = _PEERCRED.unpack(
            sock.getsockopt(socket.SOL_SOCKET, peercred, _PEERCRED.size)
        )
    except OSError:
        return None, None
    return pid, uid


class EngineServer:
    """Serves ``handle`` on ``path`` until ``close()``; ``info()`` adds to the status answer,
    ``on_clients(n)`` hears the number of attached clients whenever it changes."""

    def __init__(
        self,
        handle: EngineHandle,
        path: Path,
        *,
        info: Callable[[], dict[str, Any]] | None = None,
        on_clients: Callable[[int], None] | None = None,
        journal: Callable[[str, str, str], None] | None = None,
        push_every: float = PUSH_EVERY,
        protocol: int = PROTOCOL,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.handle = handle
        self.path = Path(path)
        self._info = info
        self._on_clients = on_clients
        self._journal = journal  # (action, who, detail): a handover is an operator action
        self._push_every = push_every
        self._protocol = protocol
        self._wall = wall
        self._server: asyncio.base_events.Server | None = None
        self._clients: dict[int, Client] = {}
        self._commands: set[asyncio.Task[None]] = set()
        self._connections: set[asyncio.Task[None]] = set()
        self._ticker: asyncio.Task[None] | None = None
        self._next_id = 1
        self._started = self._wall()
        self._inode: tuple[int, int] | None = None

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> EngineServer:
        """Bind the socket (0600 in a 0700 folder) and accept connections."""
        folder = private_dir(self.path.parent)
        os.chmod(folder, DIR_MODE)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with reachable(self.path) as where:
                await self._clear_stale(where)
                sock.bind(where)
                os.chmod(where, FILE_MODE)
                st = os.stat(where)
            sock.listen(16)
            sock.setblocking(False)
            self._server = await asyncio.start_unix_server(self._connected, sock=sock)
        except BaseException:
            sock.close()
            raise
        self._inode = (st.st_dev, st.st_ino)
        self._ticker = asyncio.create_task(self._tick(), name="tapewatch-serve-snapshots")
        log.info("serving the engine API on %s", self.path)
        return self

    async def _clear_stale(self, where: str) -> None:
        """Remove a socket file no engine answers on (a killed run's); refuse a live one."""
        if not os.path.lexists(where):
            return
        try:
            _reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(where), 2.0)
        except (OSError, TimeoutError):
            os.unlink(where)
            return
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
        raise ServeError(
            f"another engine already serves {self.path}; stop it or choose another --data-dir"
        )

    async def close(self, reason: str = "the engine stopped") -> None:
        """Stop accepting, let the last events and commands out (bounded), say bye, unlink."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        if self._ticker is not None:
            self._ticker.cancel()
        if self._commands:
            await asyncio.wait(set(self._commands), timeout=CLOSE_GRACE)
        clients = list(self._clients.values())
        pumps = [c.events for c in clients if c.events is not None]
        if pumps:  # an ended engine's subscriptions end: the pumps finish on their own
            await asyncio.wait(pumps, timeout=CLOSE_GRACE)
        stuck = [t for c in clients for t in (c.events, c.snapshots) if t is not None]
        for task in stuck:  # a client that stopped reading holds its pump in a write
            task.cancel()
        if stuck:
            await asyncio.wait(stuck, timeout=CLOSE_GRACE)
        for client in clients:
            await self._bye(client, reason)
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.wait(set(self._connections), timeout=CLOSE_GRACE)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), CLOSE_GRACE)
        self._unlink()
        log.info("stopped serving %s", self.path)

    def _unlink(self) -> None:
        """Remove the socket file if it is still ours (not a successor's)."""
        with contextlib.suppress(OSError), reachable(self.path) as where:
            st = os.stat(where)
            if (st.st_dev, st.st_ino) == self._inode:
                os.unlink(where)

    def _counted(self) -> None:
        """Tell the host how many consoles watch now (the dead-man's switch counts them)."""
        if self._on_clients is not None:
            self._on_clients(len(self.clients))

    @property
    def clients(self) -> list[Client]:
        return [c for c in self._clients.values() if c.role == ATTACH]

    @property
    def controller(self) -> Client | None:
        return next((c for c in self.clients if c.control), None)

    # ------------------------------------------------------------------ connections
    async def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        client: Client | None = None
        try:
            client = await self._hello(reader, writer)
            if client is not None:
                await self._serve(client, reader)
        except (ProtocolError, ConnectionError, OSError) as exc:
            log.info("a client left: %s", exc)
        except asyncio.CancelledError:
            pass
        except Exception:  # never the engine's problem: logged, the connection closed
            log.exception("a client connection failed")
        finally:
            self._connections.discard(task)
            if client is not None:
                self._drop(client)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), CLOSE_GRACE)

    async def _hello(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> Client | None:
        pid, uid = _peer(writer)
        try:
            hello = await asyncio.wait_for(read_message(reader), HELLO_TIMEOUT)
        except TimeoutError:
            return None
        if hello is None:
            return None
        mine = (self._protocol, SCHEMA, __version__)
        if uid is not None and uid != os.getuid():
            return await self._refused(writer, "this engine belongs to another user")
        if hello.get("type") != "hello":
            return await self._refused(writer, "the first frame must be a hello")
        theirs = (hello.get("protocol"), hello.get("schema"), str(hello.get("version", "?")))
        if theirs[:2] != mine[:2]:
            line = mismatch_message(mine, theirs)  # type: ignore[arg-type]
            log.warning("refused a client: %s", line)
            return await self._refused(writer, line)
        role = hello.get("role")
        if role not in ROLES:
            return await self._refused(writer, f"unknown role {role!r}: use {' or '.join(ROLES)}")
        client = Client(
            id=self._next_id,
            role=str(role),
            user=str(hello.get("user", ""))[:64],
            ssh=str(hello.get("ssh", ""))[:64],
            pid=pid,
            since=self._wall(),
            writer=writer,
            read_only=bool(hello.get("read_only")),
        )
        self._next_id += 1
        take = bool(hello.get("take_control")) and role == ATTACH
        if take and client.read_only:
            return await self._refused(writer, READ_ONLY_HELLO)
        previous = self.controller
        if role == ATTACH and not client.read_only and (take or previous is None):
            client.control = True
        welcome = {
            "type": "welcome",
            "client": client.id,
            **self._versions(),
            "pid": os.getpid(),
            **self._control_fields(client, client if client.control else previous),
        }
        if role == ATTACH:
            # Subscribe first, then picture: every event after the snapshot reaches this client.
            stream = self.handle.events()
            snap = self.handle.snapshot()
            assert snap is not None
            await self._write(client, encode(welcome))
            await self._write(client, encode({"type": "snapshot", **self._snap(snap)}))
            if client.gone:
                stream.close()
                return None
            self._clients[client.id] = client
            client.events = asyncio.create_task(self._events(client, stream))
            client.snapshots = asyncio.create_task(self._snapshots(client, snap.version))
            self._counted()
            log.info("client %d attached (%s)", client.id, client.who)
            if client.control and previous is not None:
                await self._hand_over(client, previous)
        else:
            await self._write(client, encode(welcome))
            self._clients[client.id] = client
        return client

    def _versions(self) -> dict[str, Any]:
        return {"protocol": self._protocol, "schema": SCHEMA, "version": __version__}

    async def _refused(self, writer: asyncio.StreamWriter, reason: str) -> Client | None:
        """Say why this peer is not let in (one line); no client results."""
        frame = encode({"type": "refused", "reason": reason, **self._versions()})
        with contextlib.suppress(Exception):
            writer.write(frame)
            await asyncio.wait_for(writer.drain(), CLOSE_GRACE)
        return None

    def _snap(self, snap: Snapshot) -> dict[str, Any]:
        return {"snapshot": snapshot_to_data(snap)}

    async def _serve(self, client: Client, reader: asyncio.StreamReader) -> None:
        while True:
            message = await read_message(reader)
            if message is None:
                return
            kind = message.get("type")
            ident = message.get("id")
            if kind == "command":
                self._command(client, ident, message.get("command"))
            elif kind == "status":
                await self._write(
                    client, encode({"type": "status", "id": ident, "status": self.status()})
                )
            elif kind == "latency" and client.role == ATTACH:
                self._latency(client, ident, message.get("buckets"))
            elif kind == "take_control" and client.role == ATTACH:
                await self._take_control(client, ident)
            else:
                await self._write(
                    client,
                    encode({"type": "error", "id": ident, "reason": f"unknown request {kind!r}"}),
                )

    def _command(self, client: Client, ident: Any, raw: Any) -> None:
        """Run the command as the server's task: it finishes even if the client leaves."""

        async def run() -> None:
            if client.role != ATTACH:
                reply: Any = Refused(STATUS_ONLY)
            elif not client.control:
                reply = Refused(read_only_reason(self.controller))
            else:
                try:
                    command = command_from_data(raw if isinstance(raw, dict) else {})
                except (ValueError, TypeError, KeyError) as exc:
                    reply = Refused(f"this engine cannot read that command: {exc}")
                else:
                    # The person at the other end is who acts: journaled and audited so.
                    reply = await self.handle.send(replace(command, who=client.who))
            frame = encode({"type": "reply", "id": ident, "reply": reply_to_data(reply)})
            await self._write(client, frame)

        self._spawn(run())

    # ------------------------------------------------------------------ control
    def _control_fields(self, client: Client, controller: Client | None) -> dict[str, Any]:
        return {
            "control": client.control,
            "read_only": client.read_only,
            "controller": controller.who if controller is not None else None,
        }

    async def _take_control(self, client: Client, ident: Any) -> None:
        """Hand control to ``client`` (journaled, told to everyone); a --read-only one cannot."""
        if client.read_only:
            answer = {"type": "control", "id": ident, "ok": False, "reason": READ_ONLY_HELLO}
            await self._write(client, encode(answer))
            return
        previous = self.controller
        if previous is not client:
            client.control = True
            await self._hand_over(client, previous)
        answer = {
            "type": "control",
            "id": ident,
            "ok": True,
            **self._control_fields(client, client),
        }
        await self._write(client, encode(answer))

    async def _hand_over(self, client: Client, previous: Client | None) -> None:
        """``client`` controls now: the previous controller watches; journaled; all told."""
        if previous is not None and previous is not client:
            previous.control = False
        before = previous.who if previous is not None else "nobody"
        detail = f"control handed from {before} to {client.who}"
        log.info("%s", detail)
        if self._journal is not None:
            try:
                self._journal("take_control", client.who, detail)
            except Exception:  # the handover stands; the journal's trouble is its own alarm
                log.exception("journaling the control handover failed")
        for other in self.clients:
            notice = {
                "type": "control",
                "id": None,
                "notice": detail,
                **self._control_fields(other, client),
            }
            await self._write(other, encode(notice))

    async def _released(self, gone: Client) -> None:
        """The controller left: every viewer is told nobody controls (C takes control)."""
        for other in self.clients:
            notice = {
                "type": "control",
                "id": None,
                "notice": f"{gone.who} detached: nobody controls; C takes control",
                **self._control_fields(other, self.controller),
            }
            await self._write(other, encode(notice))

    def _latency(self, client: Client, ident: Any, buckets: Any) -> None:
        async def run() -> None:
            count = buckets if isinstance(buckets, int) and 0 < buckets <= 1000 else 20
            histograms = await self.handle.latency_histograms(count)
            out = {stage: list(counts) for stage, counts in histograms.items()}
            await self._write(client, encode({"type": "latency", "id": ident, "histograms": out}))

        self._spawn(run())

    def _spawn(self, work: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(work)
        self._commands.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._commands.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("a served request failed", exc_info=task.exception())

    # ------------------------------------------------------------------ pushing
    async def _write(self, client: Client, frame: bytes) -> None:
        """One frame to ``client``; a gone or stuck client is dropped, never an error here."""
        if client.gone:
            return
        async with client.lock:
            try:
                client.writer.write(frame)
                await asyncio.wait_for(client.writer.drain(), DRAIN_TIMEOUT)
            except (ConnectionError, OSError, TimeoutError, RuntimeError) as exc:
                log.info("client %d dropped: %s", client.id, exc or type(exc).__name__)
                self._drop(client)
                client.writer.transport.abort()

    async def _events(self, client: Client, stream: Any) -> None:
        try:
            async for event in stream:
                await self._write(client, self._event_frame(event))
                if client.gone:
                    return
        finally:
            stream.close()

    def _event_frame(self, event: Event) -> bytes:
        return encode({"type": "event", **event_to_data(event)})

    async def _snapshots(self, client: Client, sent: int) -> None:
        while not client.gone:
            await client.wake.wait()
            client.wake.clear()
            snap, client.pending = client.pending, None
            if snap is not None and snap.version > sent:
                await self._write(client, encode({"type": "snapshot", **self._snap(snap)}))
                sent = snap.version

    async def _tick(self) -> None:
        """Offer every attached client the newest snapshot (each sends only the latest)."""
        seen = 0
        while True:
            await asyncio.sleep(self._push_every)
            if not self._clients:
                continue
            try:
                snap = self.handle.snapshot(newer_than=seen)
            except Exception:  # a picture that cannot be drawn now: logged, tried again
                log.exception("building a snapshot for the attached clients failed")
                continue
            if snap is None:
                continue
            seen = snap.version
            for client in self.clients:
                client.pending = snap
                client.wake.set()

    async def _bye(self, client: Client, reason: str) -> None:
        """Tell an attached client why the engine went (briefly: a full pipe is just cut)."""
        if client.role == ATTACH and not client.gone and not client.lock.locked():
            try:
                client.writer.write(encode({"type": "bye", "reason": reason}))
                await asyncio.wait_for(client.writer.drain(), BYE_TIMEOUT)
            except (ConnectionError, OSError, TimeoutError, RuntimeError):
                client.writer.transport.abort()
        self._drop(client)

    def _drop(self, client: Client) -> None:
        if client.gone:
            return
        client.gone = True
        self._clients.pop(client.id, None)
        if client.control:
            log.info("client %d, the controller, left: nobody controls", client.id)
            if self._server is not None and self.clients:  # the viewers hear of it
                self._spawn(self._released(client))
        if client.role == ATTACH:
            self._counted()
        current = asyncio.current_task()
        for task in (client.events, client.snapshots):
            if task is not None and task is not current:
                task.cancel()
        client.wake.set()

    # ------------------------------------------------------------------ status
    def status(self) -> dict[str, Any]:
        """What ``tapewatch status`` prints: the process, the trading state, who is attached."""
        snap = self.handle.snapshot()
        assert snap is not None
        out: dict[str, Any] = {
            "pid": os.getpid(),
            **self._versions(),
            "socket": str(self.path),
            "serving_since": self._started.isoformat(),
            "mode": snap.mode.value,
            "account": snap.account,
            "symbol": snap.symbol,
            "timeframe": snap.timeframe,
            "running": snap.running,
            "trading_state": snap.trading_state.value,
            "paused": snap.paused,
            "in_flight": snap.in_flight,
            "open_positions": len(snap.open_positions),
            "equity": snap.equity,
            "clients": [c.describe() for c in self.clients],
        }
        if self._info is not None:
            out.update(self._info())
        return out


async def serve(handle: EngineHandle, path: Path, **options: Any) -> EngineServer:
    """Start serving ``handle`` on ``path`` (see ``EngineServer``)."""
    return await EngineServer(handle, path, **options).start()
