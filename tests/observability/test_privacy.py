"""Private by default: a 0700 data directory, 0600 journal/logs/audit whatever the umask; the
audit trail records sessions and is anchored in the journal; metrics stay on loopback."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tapewatch.console.observability_cli import check_metrics_args
from tapewatch.engine.model.events import AuditAnchored, Notice
from tapewatch.engine.observability.audit import AuditLog, attach_audit, default_audit_path, verify
from tapewatch.engine.observability.audit_anchor import read_anchors
from tapewatch.engine.observability.logs import setup_logging, teardown_logging
from tapewatch.engine.settings.config import ConfigError
from tapewatch.engine.storage.datadir import DataDirError, prepare_data_dir
from tapewatch.engine.storage.journal import Journal
from tests.helpers import make_engine

ROOT = Path(__file__).resolve().parents[2]
T = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
UMASKS = [0o022, 0o000]


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=UMASKS, ids=lambda m: f"umask{m:03o}")
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


@pytest.fixture
def fresh_logging() -> Iterator[None]:
    yield
    teardown_logging()


# ---- file modes ------------------------------------------------------------------------------


def test_the_journal_and_its_wal_and_shm_are_0600_in_a_0700_folder(
    tmp_path: Path, umask: int
) -> None:
    data = tmp_path / "new" / "data"
    path = data / "paper" / "journal.sqlite3"
    with Journal(path) as journal:
        journal.append(Notice(ts=T, level="info", message="hello"))
        wal, shm = Path(f"{path}-wal"), Path(f"{path}-shm")
        assert wal.exists() and shm.exists()  # WAL mode: both exist while it is open
        assert [mode_of(p) for p in (path, wal, shm)] == [0o600] * 3
    for folder in (tmp_path / "new", data, data / "paper"):  # every folder it created
        assert mode_of(folder) == 0o700


def test_a_journal_left_world_readable_is_tightened_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    Journal(path).close()
    os.chmod(path, 0o644)
    with Journal(path):
        assert mode_of(path) == 0o600


def test_logs_are_0600_including_after_a_rollover(tmp_path: Path, umask: int) -> None:
    data = tmp_path / "data"
    try:
        path = setup_logging(data, max_bytes=200, backups=2)
        for i in range(20):
            logging.getLogger("tapewatch.test").warning("line %d %s", i, "x" * 40)
        rolled = path.with_name(path.name + ".1")
        assert rolled.exists()  # the handler rolled over and opened a new file
        assert mode_of(path) == mode_of(rolled) == 0o600
        assert mode_of(path.parent) == mode_of(data) == 0o700
    finally:
        teardown_logging()


def test_the_audit_file_is_0600(tmp_path: Path, umask: int) -> None:
    path = default_audit_path(tmp_path / "data")
    AuditLog(path).append(ts=T, who="ops@local", action="pause")
    assert mode_of(path) == 0o600
    assert mode_of(path.parent) == mode_of(tmp_path / "data") == 0o700


def test_an_existing_data_directory_is_made_private(tmp_path: Path, umask: int) -> None:
    data = tmp_path / "data"
    data.mkdir()
    os.chmod(data, 0o755)
    assert prepare_data_dir(data) == data
    assert mode_of(data) == 0o700


def test_a_file_in_place_of_the_data_directory_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("mine")
    with pytest.raises(DataDirError) as caught:
        prepare_data_dir(blocker / "data")
    text = str(caught.value)
    assert "\n" not in text and str(blocker) in text and "--data-dir" in text
    assert blocker.read_text() == "mine"


# ---- the audit trail: sessions, the user, the journal's anchor -------------------------------


async def _session(data: Path, reason: str) -> Path:
    """A started engine with a journal and an audit trail, stopped with ``reason``."""
    journal = Journal(data / "paper" / "journal.sqlite3")
    engine, _, _ = make_engine(journal=journal)
    path = default_audit_path(data)
    trail = attach_audit(engine, path, settle=0.01)
    await engine.start()
    await engine.pause(who="alice@203.0.113.7")
    await engine.stop(reason)
    trail.close()
    journal.close()
    return path


def records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_session_start_and_stop_name_the_user_and_the_signal(tmp_path: Path) -> None:
    path = await _session(tmp_path, "received SIGTERM")
    rows = records(path)
    assert [r["action"] for r in rows] == ["session_start", "pause", "session_stop"]
    start, pause, stop = rows
    assert start["who"] == stop["who"] == "tester@local"  # the engine's operator identity
    assert f"pid {os.getpid()}" in str(start["detail"])
    assert pause["who"] == "alice@203.0.113.7"
    assert stop["detail"] == "received SIGTERM (signal SIGTERM)"
    assert verify(path, anchors=read_anchors(tmp_path)).ok


async def test_a_stop_without_a_signal_and_a_session_that_never_stopped(tmp_path: Path) -> None:
    path = await _session(tmp_path, "feed ended")
    assert records(path)[-1]["detail"] == "feed ended"
    engine, _, _ = make_engine()
    trail = attach_audit(engine, path)
    await engine.start()
    trail.close()  # the process ends without engine.stop
    last = records(path)[-1]
    assert (last["action"], last["detail"]) == ("session_stop", "ended without a clean stop")


async def test_every_audit_record_is_anchored_in_the_journal(tmp_path: Path) -> None:
    path = await _session(tmp_path, "received SIGINT")
    with Journal(tmp_path / "paper" / "journal.sqlite3") as journal:
        anchors = [e for _, e in journal.events(kinds={"audit_anchor"})]
    rows = records(path)
    assert anchors == [
        AuditAnchored(ts=anchors[i].ts, audit_seq=int(str(r["seq"])), audit_hash=str(r["hash"]))
        for i, r in enumerate(rows)
    ]
    (newest,) = read_anchors(tmp_path)
    assert (newest.seq, newest.hash) == (3, rows[-1]["hash"])


@pytest.mark.parametrize("cut", ["last_record", "emptied", "deleted", "replaced"])
async def test_cutting_the_audit_file_fails_verify(tmp_path: Path, cut: str) -> None:
    path = await _session(tmp_path, "received SIGTERM")
    lines = path.read_bytes().splitlines(keepends=True)
    if cut == "last_record":
        path.write_bytes(b"".join(lines[:-1]))  # whole records: the chain alone still holds
        assert verify(path).ok
    elif cut == "emptied":
        path.write_bytes(b"")
        assert verify(path).ok
    elif cut == "deleted":
        path.unlink()
    else:  # a fresh, valid chain of the same length in its place
        path.unlink()
        log = AuditLog(path)
        for _ in lines:
            log.append(ts=T, who="mallory@local", action="pause")
        assert verify(path).ok
    result = verify(path, anchors=read_anchors(tmp_path))
    assert not result.ok
    assert "\n" not in result.message and "journal" in result.message
    assert str(tmp_path / "paper" / "journal.sqlite3") in result.message


def test_anchors_are_read_without_writing_to_the_journal(tmp_path: Path) -> None:
    path = tmp_path / "paper" / "journal.sqlite3"
    with Journal(path) as journal:
        journal.append(AuditAnchored(ts=T, audit_seq=4, audit_hash="ab" * 32))
    before = path.read_bytes()
    (anchor,) = read_anchors(tmp_path)
    assert (anchor.seq, anchor.hash, anchor.journal) == (4, "ab" * 32, path)
    assert path.read_bytes() == before
    for sidecar in path.parent.glob("*.sqlite3-*"):  # SQLite's read-side WAL index
        assert mode_of(sidecar) == 0o600
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "journal-x.sqlite3").write_text("not a database")
    assert len(read_anchors(tmp_path)) == 1  # an unreadable file anchors nothing


# ---- metrics stay on loopback unless asked ---------------------------------------------------


def _metrics_args(*flags: str) -> argparse.Namespace:
    from tapewatch.console.cli import build_parser

    return build_parser().parse_args(["demo", "--headless", *flags])


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_metrics_hosts_need_no_flag(host: str) -> None:
    assert check_metrics_args(_metrics_args("--metrics-port", "0", "--metrics-host", host)) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::", "metrics.example"])
def test_a_remote_metrics_host_needs_the_explicit_flag(host: str) -> None:
    with pytest.raises(ConfigError) as caught:
        check_metrics_args(_metrics_args("--metrics-port", "9464", "--metrics-host", host))
    text = str(caught.value)
    assert "\n" not in text and host in text and "--metrics-allow-remote" in text
    flags = ("--metrics-port", "9464", "--metrics-host", host, "--metrics-allow-remote")
    warning = check_metrics_args(_metrics_args(*flags))
    assert warning is not None and warning.startswith("warning:") and host in warning


def test_a_bad_metrics_port_and_a_long_host_are_one_short_line() -> None:
    with pytest.raises(ConfigError, match="--metrics-port must be 0-65535"):
        check_metrics_args(_metrics_args("--metrics-port", "70000"))
    with pytest.raises(ConfigError) as caught:
        check_metrics_args(_metrics_args("--metrics-port", "1", "--metrics-host", "h" * 500))
    assert "h" * 41 not in str(caught.value)


class _Listener:
    """A TCP port that only counts connections: where a broker would be."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.setblocking(False)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def connections(self) -> int:
        count = 0
        while True:
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError:
                return count
            conn.close()
            count += 1


@pytest.mark.usefixtures("fresh_logging")
def test_metrics_options_are_checked_before_any_broker_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tapewatch.console.cli import main

    broker = _Listener()
    for name in ("TRADING_URL", "DATA_URL"):
        monkeypatch.setenv(f"TAPEWATCH_ALPACA_{name}", broker.url)
    for name in ("STREAM_URL", "TRADE_STREAM_URL"):
        monkeypatch.setenv(f"TAPEWATCH_ALPACA_{name}", broker.url.replace("http", "ws"))
    monkeypatch.setenv("APCA_API_KEY_ID", "PKTESTKEY123")
    monkeypatch.setenv("APCA_API_SECRET_KEY", "test-secret-123")
    data = tmp_path / "data"
    argv = ["run", "--headless", "--data-dir", str(data), "--metrics-port", "0"]
    try:
        code = main([*argv, "--metrics-host", "0.0.0.0"])
        err = capsys.readouterr().err
        assert code == 2
        assert err.count("\n") == 1 and "--metrics-allow-remote" in err
        assert broker.connections() == 0  # nothing was asked of the broker
        assert not (data / "paper" / "journal.sqlite3").exists()
    finally:
        broker.sock.close()


def test_the_console_checks_metrics_before_opening(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import tapewatch.console.launch as launch

    monkeypatch.setattr(launch, "has_terminal", lambda: True)
    args = _metrics_args("--metrics-port", "0", "--metrics-host", "0.0.0.0")
    args.data_dir = str(tmp_path / "data")
    assert launch.launch_console(args, demo=True, config=None) == 2
    assert "--metrics-allow-remote" in capsys.readouterr().err


def test_metrics_port_0_prints_the_port_chosen(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, "-m", "tapewatch.console.cli", "demo", "--headless", "--speed", "3000"]
    argv += ["--data-dir", str(tmp_path / "data"), "--metrics-port", "0"]
    proc = subprocess.Popen(
        argv, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        line = ""
        for _ in range(200):
            line = proc.stdout.readline()
            if not line or line.startswith("metrics: serving on"):
                break
        match = re.fullmatch(r"metrics: serving on (http://127\.0\.0\.1:(\d+)/metrics)\n", line)
        assert match is not None, line
        assert int(match.group(2)) > 0
        with urllib.request.urlopen(match.group(1), timeout=10) as answer:
            assert answer.status == 200 and b"tapewatch" in answer.read()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


# ---- audit verify on the command line --------------------------------------------------------


async def test_audit_verify_fails_in_one_line_when_the_file_is_emptied(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tapewatch.console.cli import main

    path = await _session(tmp_path, "received SIGTERM")
    assert main(["audit", "verify", "--data-dir", str(tmp_path)]) == 0
    assert "3 record(s), chain intact, 1 journal anchor(s) match" in capsys.readouterr().out
    path.write_bytes(b"")
    assert main(["audit", "verify", "--data-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "has 0 record(s)" in out and "anchors 3" in out
    assert main(["audit", "verify", "--file", str(path)]) == 1  # the data dir is found from it
    path.unlink()
    assert main(["audit", "verify", "--data-dir", str(tmp_path)]) == 1
    assert "deleted or moved" in capsys.readouterr().out


async def test_a_console_stopped_by_a_signal_audits_the_signal(tmp_path: Path) -> None:
    from tests.console.conftest import make_app, make_session, until

    session = make_session(tmp_path, [10.0, 9.0, 10.5])
    path = default_audit_path(tmp_path / "data")
    app = make_app(session, observe=lambda built: attach_audit(built.engine, path, settle=0.01))
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: session.engine.state.running)
        app._stop_from_outside("received SIGTERM")  # what the SIGTERM handler calls
        await until(pilot, lambda: not session.engine.state.running, "engine stopped")
    rows = records(path)
    assert [r["action"] for r in rows] == ["session_start", "quit", "session_stop"]
    assert rows[-1]["detail"] == "received SIGTERM (signal SIGTERM)"
    assert rows[0]["who"] == rows[-1]["who"] == session.engine.who
