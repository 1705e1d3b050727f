"""Private by default: a 0700 data directory, 0600 journal/logs/audit whatever the umask; the
audit trail records sessions and is anchored in the journal; metrics stay on loopback."""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine.audit import AuditLog, attach_audit, default_audit_path, verify
from engine.audit_anchor import read_anchors
from engine.datadir import DataDirError, prepare_data_dir
from engine.events import AuditAnchored, Notice
from engine.journal import Journal
from engine.logs import setup_logging, teardown_logging
from tests.helpers import make_engine

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
