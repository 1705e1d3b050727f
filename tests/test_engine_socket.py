"""The served engine: its API on a Unix socket, as ``SocketHandle`` clients and ``status`` see it.

Most tests serve the offline demo, built through the composition root and driven by
``run_headless(serve_at=...)`` on this event loop with an injected replay clock (each paced wait
advances a fake monotonic clock and yields briefly), so the bars, and so the fills, are the same
on every run. A client is also a real process here: one is SIGKILLed while its command is in
hand, ``tapewatch status`` asks in a subprocess, and one test trades the sandbox through
``tapewatch run --headless`` as a real subprocess and attaches to it.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tapewatch.console.cli import main
from tapewatch.engine.api.commands import Command, Pause, PreviewFlatten, Resume, Stop
from tapewatch.engine.api.handle import InProcessHandle
from tapewatch.engine.api.replies import Accepted, Refused, Reply
from tapewatch.engine.api.socket_client import SocketHandle, ask_status
from tapewatch.engine.api.socket_server import STATUS_ONLY, EngineServer, ServeError
from tapewatch.engine.api.types import BarClosed, Event, Fill, Mode, OrderFilled
from tapewatch.engine.api.wire import (
    PROTOCOL,
    EngineUnavailable,
    ProtocolError,
    ProtocolMismatch,
    encode,
    read_message,
    socket_path,
)
from tapewatch.engine.root.demo import DemoOptions, DemoSession, build_demo
from tapewatch.engine.root.headless import run_headless
from tapewatch.engine.settings.config import EngineConfig, StrategyConfig
from tests.services import require_root

ROOT = Path(__file__).resolve().parents[1]
QUICK = StrategyConfig(rsi_period=2, sma_period=3, rsi_oversold=90.0, rsi_overbought=95.0)
"""Thresholds that trade nearly every bar, so a short run has many fills."""
QUICK_FLAGS = [
    "--rsi-period",
    "2",
    "--sma-period",
    "3",
    "--rsi-oversold",
    "90",
    "--rsi-overbought",
    "95",
]
WAIT = 20.0  # seconds any one condition may take before the test fails


class ReplayClock:
    """The demo's pace, injected: each wait moves a fake monotonic clock and yields briefly."""

    def __init__(self) -> None:
        self.now = 0.0

    async def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)
        await asyncio.sleep(0.002)

    def monotonic(self) -> float:
        return self.now


@dataclass
class Tally:
    """What the engine did, counted by a journal-like sink from its very first event."""

    bars: int = 0
    last_bar: datetime | None = None
    fills: list[Fill] = field(default_factory=list)


@dataclass
class Served:
    session: DemoSession
    path: Path
    server: EngineServer
    run: asyncio.Task[int]
    tally: Tally

    @property
    def bars(self) -> int:
        return self.tally.bars


def _demo(seed: int = 11) -> DemoSession:
    clock = ReplayClock()
    config = replace(EngineConfig(), strategy=QUICK).validate()
    return build_demo(
        config,
        DemoOptions(seed=seed, speed=600),
        data_dir=None,
        sleep=clock.sleep,
        monotonic=clock.monotonic,
    )


async def until(check: Callable[[], bool], what: str, seconds: float = WAIT) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while not check():
        assert loop.time() < end, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


@asynccontextmanager
async def served(
    data_dir: Path, *, seed: int = 11, stop_after: int | None = None
) -> AsyncIterator[Served]:
    """The demo served on ``<data_dir>/demo/engine.sock`` until the block ends (or its
    ``stop_after``-th bar: the feed then ends, so two runs trade exactly the same bars)."""
    session = _demo(seed)
    path = socket_path(data_dir, Mode.DEMO)
    up: list[EngineServer] = []
    tally = Tally()

    def sink(event: Event) -> None:
        if isinstance(event, BarClosed):
            tally.bars += 1
            tally.last_bar = event.bar.ts
            if stop_after is not None and tally.bars >= stop_after:
                session.feed.stop()
        elif isinstance(event, OrderFilled):
            tally.fills.append(event.fill)

    session.engine.bus.add_sink(sink)
    run = asyncio.create_task(
        run_headless(
            session.engine, session.feed, out=io.StringIO(), serve_at=path, on_serving=up.append
        )
    )
    await until(lambda: bool(up) or run.done(), "the socket")
    assert up, run.result()
    try:
        yield Served(session, path, up[0], run, tally)
    finally:
        if not run.done():
            await session.engine.stop("test over")
        assert await asyncio.wait_for(run, WAIT) == 0


async def raw_hello(path: Path, **hello: Any) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_unix_connection(str(path))
    message = {"type": "hello", "protocol": PROTOCOL, "role": "attach", "user": "raw", **hello}
    if "schema" not in message:
        from tapewatch.engine.api.snapshot import SCHEMA

        message["schema"] = SCHEMA
    writer.write(encode(message))
    await writer.drain()
    return reader, writer


# ---------------------------------------------------------------------- snapshot, events, commands
async def test_a_client_gets_a_snapshot_first_then_the_events_after_it(tmp_path: Path) -> None:
    async with served(tmp_path) as engine:
        await until(lambda: engine.bars >= 3, "a few bars")
        reader, writer = await raw_hello(engine.path)
        welcome = await read_message(reader)
        first = await read_message(reader)
        assert welcome is not None and welcome["type"] == "welcome"
        assert welcome["pid"] == os.getpid()
        assert first is not None and first["type"] == "snapshot"
        newest_bar = first["snapshot"]["bars"][-1]["ts"]
        seen: list[dict[str, Any]] = []
        while not any(m["type"] == "event" and m["kind"] == "bar" for m in seen):
            message = await asyncio.wait_for(read_message(reader), WAIT)
            assert message is not None
            seen.append(message)
        bar_event = next(m for m in seen if m["type"] == "event" and m["kind"] == "bar")
        # The first bar event is a bar the snapshot did not hold yet: nothing was missed or
        # sent twice across the hand-over from picture to events.
        assert bar_event["event"]["bar"]["ts"] > newest_bar
        writer.close()

        handle = await SocketHandle.connect(engine.path)
        try:
            snap = handle.snapshot()
            assert snap is not None and snap.mode is Mode.DEMO and snap.symbol == "SPY"
            assert handle.snapshot(newer_than=snap.version) is None
            stream = handle.events()
            got: list[Event] = []

            async def follow() -> None:
                async for event in stream:
                    got.append(event)
                    if sum(isinstance(e, BarClosed) for e in got) >= 3:
                        return

            await asyncio.wait_for(follow(), WAIT)
            assert all(e.ts >= snap.now for e in got if isinstance(e, BarClosed))
            await until(lambda: handle.snapshot(newer_than=snap.version) is not None, "a newer")
            newer = handle.snapshot()
            assert newer is not None and newer.bars[-1].ts > snap.bars[-1].ts
        finally:
            await handle.close()


async def test_pause_and_resume_round_trip_with_replies_and_reach_the_engine(
    tmp_path: Path,
) -> None:
    async with served(tmp_path) as engine:
        handle = await SocketHandle.connect(engine.path)
        try:
            reply = await handle.send(Pause(who="alice", reason="lunch"))
            assert isinstance(reply, Accepted) and "paused" in reply.detail
            assert engine.session.engine.state.paused
            await until(lambda: bool(handle.snapshot().paused), "the paused snapshot")  # type: ignore[union-attr]
            action = engine.session.engine.last_action
            # The journal names the person attached (user, SSH client, PID), not the command's
            # own say-so.
            (client,) = engine.server.clients
            assert action is not None and action.who == client.who
            assert f"(attach #{client.id}, pid {os.getpid()})" in action.who

            preview = await handle.send(PreviewFlatten(who="alice"))
            assert isinstance(preview, Accepted) and preview.payload is not None

            reply = await handle.send(Resume(who="alice"))
            assert isinstance(reply, Accepted) and "resumed" in reply.detail
            assert not engine.session.engine.state.paused
            await until(lambda: not handle.snapshot().paused, "the resumed snapshot")  # type: ignore[union-attr]
            histograms = await handle.latency_histograms(5)
            assert "bar_to_decision" in histograms
        finally:
            await handle.close()
        after = await handle.send(Pause(who="alice"))
        assert not isinstance(after, Accepted) and "not connected" in after.reason  # type: ignore[union-attr]


async def test_two_clients_at_once_both_follow_and_both_are_listed(tmp_path: Path) -> None:
    async with served(tmp_path) as engine:
        first = await SocketHandle.connect(engine.path)
        second = await SocketHandle.connect(engine.path)
        try:
            assert first.welcome.client != second.welcome.client
            streams = [first.events(), second.events()]
            bars: list[list[Any]] = [[], []]

            async def follow(i: int) -> None:
                async for event in streams[i]:
                    if isinstance(event, BarClosed):
                        bars[i].append(event.bar.ts)
                        if len(bars[i]) >= 4:
                            return

            await asyncio.wait_for(asyncio.gather(follow(0), follow(1)), WAIT)
            common = set(bars[0]) & set(bars[1])
            assert len(common) >= 2  # both saw the same bars, each in order
            assert bars[0] == sorted(bars[0]) and bars[1] == sorted(bars[1])

            reply = await first.send(Pause(who="bob"))  # the first attached controls
            assert isinstance(reply, Accepted)
            await until(lambda: bool(second.snapshot().paused), "the other client's picture")  # type: ignore[union-attr]

            status = (await ask_status(engine.path)).details
            assert [c["id"] for c in status["clients"]] == [
                first.welcome.client,
                second.welcome.client,
            ]
            assert {c["pid"] for c in status["clients"]} == {os.getpid()}
        finally:
            await first.close()
            await second.close()
        await until(lambda: not engine.server.clients, "both detached")
        assert engine.session.engine.attendance.clients == 0  # the switch counts from now


async def test_a_stop_sent_over_the_socket_ends_the_run_and_tells_every_client(
    tmp_path: Path,
) -> None:
    async with served(tmp_path) as engine:
        stopper = await SocketHandle.connect(engine.path)  # the first attached controls
        watcher = await SocketHandle.connect(engine.path)
        stream = watcher.events()
        reply = await stopper.send(Stop(who="alice", reason="end of day"))
        assert isinstance(reply, Accepted)
        assert await asyncio.wait_for(engine.run, WAIT) == 0
        kinds = [event.kind async for event in stream]  # the stream ends with the engine
        assert kinds[-1] == "session_stopped"
        assert watcher.lost == "the engine stopped"
        after = await watcher.send(Pause(who="alice"))
        assert isinstance(after, Refused) and "the engine stopped" in after.reason
        assert not engine.path.exists()
        await watcher.close()
        await stopper.close()


async def test_a_status_connection_cannot_send_commands(tmp_path: Path) -> None:
    async with served(tmp_path) as engine:
        reader, writer = await raw_hello(engine.path, role="status")
        welcome = await read_message(reader)
        assert welcome is not None and welcome["type"] == "welcome"
        writer.write(
            encode({"type": "command", "id": 7, "command": {"command": "Pause", "who": "x"}})
        )
        await writer.drain()
        answer = await asyncio.wait_for(read_message(reader), WAIT)
        assert answer is not None and answer["id"] == 7
        assert answer["reply"] == {"reply": "Refused", "reason": STATUS_ONLY}
        assert not engine.session.engine.state.paused
        assert not engine.server.clients  # and it never counted as attached
        writer.close()


# ---------------------------------------------------------------------- a client that vanishes
class SlowHandle:
    """The engine's handle, but each command waits for ``release`` (a command in hand)."""

    def __init__(self, inner: InProcessHandle) -> None:
        self.inner = inner
        self.arrived = asyncio.Event()
        self.release = asyncio.Event()
        self.replies: list[Reply] = []

    async def send(self, command: Command) -> Reply:
        self.arrived.set()
        await self.release.wait()
        reply = await self.inner.send(command)
        self.replies.append(reply)
        return reply

    def snapshot(self, newer_than: int | None = None) -> Any:
        return self.inner.snapshot(newer_than)

    def events(self) -> Any:
        return self.inner.events()

    async def latency_histograms(self, buckets: int) -> dict[str, tuple[int, ...]]:
        return await self.inner.latency_histograms(buckets)


KILLED_CLIENT = """
import asyncio, os, signal, sys
from pathlib import Path
from tapewatch.engine.api.commands import Pause
from tapewatch.engine.api.socket_client import SocketHandle

async def main():
    handle = await SocketHandle.connect(Path(sys.argv[1]))
    task = asyncio.ensure_future(handle.send(Pause(who="doomed")))
    await asyncio.sleep(0.2)
    print("sent", flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


async def test_a_client_killed_mid_command_leaves_the_engine_trading(tmp_path: Path) -> None:
    session = _demo()
    path = socket_path(tmp_path, Mode.DEMO)
    slow = SlowHandle(InProcessHandle(session.engine, alerts=False))
    server = await EngineServer(slow, path).start()
    bars: list[int] = [0]
    session.engine.bus.add_sink(
        lambda e: bars.__setitem__(0, bars[0] + 1) if isinstance(e, BarClosed) else None
    )
    running = asyncio.create_task(session.engine.run(session.feed))
    try:
        client = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            KILLED_CLIENT,
            str(path),
            stdout=subprocess.PIPE,
            cwd=ROOT,
        )
        assert client.stdout is not None
        assert await asyncio.wait_for(client.stdout.readline(), WAIT) == b"sent\n"
        await asyncio.wait_for(slow.arrived.wait(), WAIT)
        assert len(server.clients) == 1
        client.kill()  # SIGKILL while the engine has its command in hand
        await client.wait()
        assert client.returncode == -signal.SIGKILL
        await until(lambda: not server.clients, "the dead client dropped")
        before = bars[0]
        slow.release.set()  # the command finishes; its reply has nowhere to go
        await until(lambda: bool(slow.replies), "the command's end")
        assert isinstance(slow.replies[0], Accepted)
        assert session.engine.state.paused  # it was carried out all the same
        await until(lambda: bars[0] >= before + 5, "more bars traded")
        assert not running.done()
        # The server still serves: the next client attaches and sees the pause.
        handle = await SocketHandle.connect(path)
        assert handle.snapshot().paused  # type: ignore[union-attr]
        await handle.close()
    finally:
        await session.engine.stop("test over")
        await asyncio.wait_for(running, WAIT)
        await server.close()
    assert not path.exists()


async def test_a_client_that_never_reads_never_holds_the_engine(tmp_path: Path) -> None:
    async with served(tmp_path) as engine:
        _reader, writer = await raw_hello(engine.path)  # says hello, then reads nothing
        await until(lambda: len(engine.server.clients) == 1, "the silent client")
        start = engine.bars
        await until(lambda: engine.bars >= start + 50, "fifty bars with a stuck reader")
        writer.close()


async def test_the_same_seed_trades_the_same_fills_with_and_without_clients(
    tmp_path: Path,
) -> None:
    bars = 120
    async with served(tmp_path / "alone", stop_after=bars) as alone:
        await asyncio.wait_for(alone.run, WAIT * 3)
    watched_dir = tmp_path / "watched"
    async with served(watched_dir, stop_after=bars) as watched:
        clients = [await SocketHandle.connect(watched.path) for _ in range(2)]
        _reader, silent = await raw_hello(watched.path)  # and one that never reads
        streams = [c.events() for c in clients]
        counts = [0, 0]

        async def follow(i: int) -> None:
            async for _event in streams[i]:
                counts[i] += 1
                if counts[i] % 10 == 0:
                    await clients[i].send(PreviewFlatten(who="viewer"))  # read-only command

        followers = [asyncio.create_task(follow(i)) for i in range(2)]
        await asyncio.wait_for(watched.run, WAIT * 3)
        await asyncio.wait(followers, timeout=WAIT)
        assert all(counts)  # the clients really were attached and following
        silent.close()
        for client in clients:
            await client.close()
    assert alone.bars == watched.bars == bars
    assert alone.tally.last_bar == watched.tally.last_bar is not None
    last = alone.tally.last_bar

    def traded(run: Served) -> list[tuple[Any, ...]]:
        """Fills priced before the last bar (the one at its open races the feed's end); order
        ids are the simulated broker's, the rest is the engine's."""
        return [
            (f.client_order_id, f.side, f.qty, f.price, f.fee, f.ts)
            for f in run.tally.fills
            if f.ts < last
        ]

    assert len(traded(alone)) >= 10
    assert traded(alone) == traded(watched)


# ---------------------------------------------------------------------- the socket itself
async def test_the_socket_is_0600_in_a_0700_folder_whatever_the_umask(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)
    old = os.umask(0)
    try:
        async with served(tmp_path) as engine:
            assert engine.path.parent == folder
            assert os.stat(engine.path).st_mode & 0o777 == 0o600
            assert os.stat(folder).st_mode & 0o777 == 0o700
            assert socket.AF_UNIX  # a file system socket: no TCP port anywhere
            assert engine.path.is_socket()
    finally:
        os.umask(old)


async def test_a_long_data_directory_path_is_still_served(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    assert len(os.fsencode(socket_path(deep, Mode.DEMO))) > 107
    async with served(deep) as engine:
        handle = await SocketHandle.connect(engine.path)
        assert handle.snapshot() is not None
        await handle.close()
        assert (await ask_status(engine.path)).details["mode"] == "DEMO"


async def test_a_stale_socket_is_replaced_but_a_live_one_is_never(tmp_path: Path) -> None:
    path = socket_path(tmp_path, Mode.DEMO)
    path.parent.mkdir(mode=0o700)
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(str(path))  # what a SIGKILLed engine leaves: a file nobody listens on
    dead.close()
    with pytest.raises(EngineUnavailable, match="stopped engine"):
        await ask_status(path)
    async with served(tmp_path) as engine:
        assert (await ask_status(engine.path)).details["pid"] == os.getpid()
        second = EngineServer(InProcessHandle(_demo().engine, alerts=False), path)
        with pytest.raises(ServeError, match="another engine already serves"):
            await second.start()
        assert (await ask_status(engine.path)).details["pid"] == os.getpid()


OTHER_USER = """
import socket, sys
sock = socket.socket(socket.AF_UNIX)
try:
    sock.connect(sys.argv[1])
except PermissionError:
    print("refused by the file system")
else:
    print("connected")
"""


async def test_another_user_cannot_reach_the_socket() -> None:
    require_root()
    base = Path(tempfile.mkdtemp(prefix="tapewatch-socket-", dir="/tmp"))
    os.chmod(base, 0o755)  # only the engine's own folder and socket stand in the way

    async def connect_as_nobody(path: Path) -> str:
        other = await asyncio.create_subprocess_exec(
            "/usr/bin/python3",
            "-c",
            OTHER_USER,
            str(path),
            stdout=subprocess.PIPE,
            cwd="/",
            preexec_fn=lambda: os.setuid(65534),  # nobody
        )
        out, _ = await asyncio.wait_for(other.communicate(), WAIT)
        return out.decode().strip()

    try:
        async with served(base) as engine:
            assert await connect_as_nobody(engine.path) == "refused by the file system"
            os.chmod(engine.path.parent, 0o755)  # even through an open folder: the socket is 0600
            assert await connect_as_nobody(engine.path) == "refused by the file system"
            assert not engine.server.clients
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _reader_of(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return reader


async def test_frames_are_length_prefixed_json_and_bad_ones_are_named() -> None:
    frame = encode({"type": "hello", "note": "π"})
    assert frame[:4] == len(frame[4:]).to_bytes(4, "big")
    assert json.loads(frame[4:]) == {"type": "hello", "note": "π"}
    assert await read_message(_reader_of(frame)) == {"type": "hello", "note": "π"}
    assert await read_message(_reader_of(b"")) is None  # closed between frames
    cases = {
        frame[:-1]: "in the middle of a frame",
        frame[:2]: "in the middle of a frame",
        b"\xff\xff\xff\xff": "over the",
        (5).to_bytes(4, "big") + b"nope!": "not UTF-8 JSON",
        (2).to_bytes(4, "big") + b"[]": "not an object with a type",
    }
    for data, problem in cases.items():
        with pytest.raises(ProtocolError, match=problem):
            await read_message(_reader_of(data))


# ---------------------------------------------------------------------- versions
async def test_a_client_of_another_protocol_is_refused_with_one_line(tmp_path: Path) -> None:
    async with served(tmp_path) as engine:
        with pytest.raises(ProtocolMismatch) as refused:
            await SocketHandle.connect(engine.path, protocol=PROTOCOL + 1)
        line = str(refused.value)
        assert "\n" not in line
        assert f"engine speaks protocol {PROTOCOL} " in line
        assert f"client speaks protocol {PROTOCOL + 1} " in line
        assert "restart the engine" in line
        assert not engine.server.clients

        reader, writer = await raw_hello(engine.path, protocol=PROTOCOL + 1)
        answer = await read_message(reader)
        assert answer is not None and answer["type"] == "refused"
        assert answer["protocol"] == PROTOCOL
        assert await read_message(reader) is None  # and the connection is closed
        writer.close()

        garbage_reader, garbage = await asyncio.open_unix_connection(str(engine.path))
        garbage.write(b"GET / HTTP/1.1\r\n\r\n")  # not a frame: dropped, the engine goes on
        await garbage.drain()
        assert await asyncio.wait_for(garbage_reader.read(), WAIT) == b""
        assert not engine.run.done()


async def test_an_engine_of_another_protocol_refuses_this_client(tmp_path: Path) -> None:
    session = _demo()
    path = socket_path(tmp_path, Mode.DEMO)
    server = await EngineServer(
        InProcessHandle(session.engine, alerts=False), path, protocol=PROTOCOL + 1
    ).start()
    try:
        with pytest.raises(ProtocolMismatch, match=f"engine speaks protocol {PROTOCOL + 1} "):
            await SocketHandle.connect(path)
        code, out = await status_cli("--data-dir", str(tmp_path))
        assert code == 1
        assert "no engine is running" in out and f"protocol {PROTOCOL + 1}" in out
        assert len(out.strip().splitlines()) == 1
    finally:
        await server.close()


# ---------------------------------------------------------------------- tapewatch status
async def status_cli(*args: str) -> tuple[int, str]:
    """``tapewatch status`` as a real process (this test's loop keeps serving meanwhile)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tapewatch.console.cli",
        "status",
        *args,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), WAIT * 2)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_status_names_the_running_engine_and_its_clients_without_attaching(
    tmp_path: Path,
) -> None:
    async with served(tmp_path) as engine:
        handle = await SocketHandle.connect(engine.path)
        try:
            code, out = await status_cli("--json", "--data-dir", str(tmp_path))
            assert code == 0, out
            answer = json.loads(out)
            assert answer["running"] is True and answer["problems"] == []
            (running,) = answer["engines"]
            assert running["pid"] == os.getpid()
            assert running["mode"] == "DEMO"
            assert running["trading_state"] == "ACTIVE"
            assert running["protocol"] == PROTOCOL
            # Only the attached console is listed: the status question itself attached nothing.
            assert [c["id"] for c in running["clients"]] == [handle.welcome.client]

            await handle.send(Pause(who="alice"))
            code, out = await status_cli("--data-dir", str(tmp_path))
            assert code == 0, out
            assert f"DEMO engine running: PID {os.getpid()}" in out
            assert "new entries paused" in out
            assert "1 attached" in out
        finally:
            await handle.close()
        await until(lambda: not engine.server.clients, "the console detached")


def test_status_without_an_engine_is_one_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "--data-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert len(out.strip().splitlines()) == 1
    assert f"no engine is running for the data directory {tmp_path}" in out
    assert "tapewatch run --headless" in out

    assert main(["status", "--json", "--data-dir", str(tmp_path)]) == 1
    answer = json.loads(capsys.readouterr().out)
    assert answer == {
        "data_dir": str(tmp_path),
        "running": False,
        "engines": [],
        "problems": [],
    }


def test_status_with_bad_flags_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as bad:
        main(["status", "--jsn"])
    assert bad.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--jsn" in err


# ---------------------------------------------------------------------- the real thing
@pytest.mark.slow
async def test_run_headless_serves_the_sandbox_session_to_clients_and_status(
    tmp_path: Path,
) -> None:
    from tapewatch.sandbox import SandboxThread
    from tests.reliability.soak_helpers import sandbox_config, sandbox_env

    sandbox = SandboxThread(sandbox_config(seed=5, bar_interval=0.05, fill_delay=0.01)).start()
    data = tmp_path / "data"
    env = {
        **os.environ,
        **sandbox_env(sandbox),
        "TAPEWATCH_DATA_DIR": str(data),
        "XDG_DATA_HOME": str(tmp_path / "xdg"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "PYTHONPATH": str(ROOT),
    }
    errors = tmp_path / "stderr.txt"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tapewatch.console.cli",
        "run",
        "--headless",
        *QUICK_FLAGS,
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=errors.open("w"),
    )
    assert proc.stdout is not None
    lines: list[str] = []

    async def line_with(text: str) -> str:
        assert proc.stdout is not None
        end = asyncio.get_running_loop().time() + WAIT
        while True:
            left = end - asyncio.get_running_loop().time()
            try:
                raw = await asyncio.wait_for(proc.stdout.readline(), max(left, 0.01))
            except TimeoutError:
                raise AssertionError(f"no {text!r} in time: {lines[-5:]}") from None
            assert raw, f"exited early: {lines[-5:]} {errors.read_text()}"
            lines.append(raw.decode())
            if text in lines[-1]:
                return lines[-1]

    path = socket_path(data, Mode.PAPER)
    try:
        assert str(path) in await line_with("serving the engine API on")
        assert os.stat(path).st_mode & 0o777 == 0o600
        handle = await SocketHandle.connect(path)
        try:
            snap = handle.snapshot()
            assert snap is not None and snap.mode is Mode.PAPER
            # The sandbox's minutes fly: the dead-man's switch may have paused entries before we
            # attached (a console is attached now, so it stays quiet); lift it, as a person would.
            assert isinstance(await handle.send(Resume(who="carol")), Accepted)
            await line_with(" FILL ")  # it trades the sandbox while we watch
            reply = await handle.send(Pause(who="carol"))
            assert isinstance(reply, Accepted)
            await line_with(f"(attach #1, pid {os.getpid()}): pause")  # who is attached
            code, out = await status_cli("--json", "--data-dir", str(data))
            assert code == 0, out
            (running,) = json.loads(out)["engines"]
            assert running["pid"] == proc.pid
            assert running["mode"] == "PAPER" and running["paused"] is True
            assert [c["pid"] for c in running["clients"]] == [os.getpid()]
        finally:
            await handle.close()
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.communicate(), WAIT)
        assert proc.returncode == 0, errors.read_text()
        assert not path.exists()  # the socket goes with its engine
        code, out = await status_cli("--data-dir", str(data))
        assert code == 1 and "no engine is running" in out
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        sandbox.stop()
