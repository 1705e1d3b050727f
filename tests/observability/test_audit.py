"""The operator audit trail: chained records, tamper detection, and the engine-bus sink."""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tapewatch.engine.model.types import TradingState
from tapewatch.engine.observability.audit import (
    GENESIS,
    AuditLog,
    attach_audit,
    record_hash,
    verify,
)
from tests.helpers import make_engine

T = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)


def write(path: Path, n: int) -> list[dict[str, object]]:
    log = AuditLog(path)
    return [
        log.append(
            ts=T + timedelta(seconds=i),
            who=f"ops@10.0.0.{i}",
            action=("pause", "resume", "flatten")[i % 3],
            detail=f"step {i} — ünïcode",
            state_before={"trading_state": "ACTIVE", "n": i},
            state_after={"trading_state": "REDUCING", "n": i + 1},
        )
        for i in range(n)
    ]


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def test_records_chain_and_verify(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    records = write(path, 5)
    assert [r["seq"] for r in records] == [1, 2, 3, 4, 5]
    assert records[0]["prev_hash"] == GENESIS
    for prev, rec in itertools.pairwise(records):
        assert rec["prev_hash"] == prev["hash"]
    for rec in records:
        assert rec["hash"] == record_hash(rec)
    first = json.loads(lines(path)[0])
    assert list(first) == [
        "seq", "ts", "who", "action", "detail", "state_before", "state_after", "prev_hash", "hash",
    ]  # fmt: skip
    assert first["ts"] == "2026-01-05T15:00:00+00:00"
    result = verify(path)
    assert (result.ok, result.records, result.first_broken_seq) == (True, 5, None)
    # A second writer (a later session) continues the same chain.
    write(path, 2)
    result = verify(path)
    assert result.ok and result.records == 7


def test_one_changed_byte_in_the_middle_is_reported_at_its_record(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write(path, 9)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    if data[middle : middle + 1] == b"\n":
        middle += 1
    expected_seq = data[:middle].count(b"\n") + 1  # the line holding the byte
    data[middle] = ord("X") if data[middle] != ord("X") else ord("Y")
    path.write_bytes(bytes(data))
    result = verify(path)
    assert not result.ok
    assert result.first_broken_seq == expected_seq
    assert result.records == expected_seq - 1
    assert f"seq {expected_seq}" in result.message


@pytest.mark.parametrize("field", ["detail", "who", "state_after", "hash", "prev_hash", "ts"])
def test_any_field_changed_breaks_that_record(tmp_path: Path, field: str) -> None:
    path = tmp_path / "audit.jsonl"
    write(path, 5)
    rows = lines(path)
    record = json.loads(rows[2])
    forged = {"hash": "0" * 64, "prev_hash": "0" * 64, "state_after": {"x": 1}}
    record[field] = forged.get(field, "forged")
    rows[2] = json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
    path.write_bytes(b"".join(rows))
    result = verify(path)
    assert (result.ok, result.first_broken_seq) == (False, 3)


def test_a_rehashed_forgery_still_breaks_the_next_link(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write(path, 5)
    rows = lines(path)
    record = json.loads(rows[1])
    record["action"] = "flatten"  # was "resume"
    record["hash"] = record_hash(record)  # the forger recomputes this record's own hash
    rows[1] = json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
    path.write_bytes(b"".join(rows))
    result = verify(path)
    assert (result.ok, result.first_broken_seq) == (False, 3)
    assert "prev_hash" in result.message


def test_a_last_line_truncated_half_way_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write(path, 4)
    data = path.read_bytes()
    last_start = data.rstrip(b"\n").rfind(b"\n") + 1
    cut = last_start + (len(data) - last_start) // 2
    path.write_bytes(data[:cut])
    result = verify(path)
    assert (result.ok, result.first_broken_seq, result.records) == (False, 4, 3)
    assert "incomplete" in result.message
    # Appending after a torn line keeps the torn line visible as the break.
    write(path, 1)
    again = verify(path)
    assert (again.ok, again.first_broken_seq) == (False, 4)


def test_a_deleted_middle_line_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write(path, 6)
    rows = lines(path)
    del rows[2]
    path.write_bytes(b"".join(rows))
    result = verify(path)
    assert (result.ok, result.first_broken_seq, result.records) == (False, 3, 2)
    assert "removed" in result.message


def test_swapped_lines_and_a_missing_file_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write(path, 4)
    rows = lines(path)
    rows[1], rows[2] = rows[2], rows[1]
    path.write_bytes(b"".join(rows))
    assert verify(path).first_broken_seq == 2
    missing = verify(tmp_path / "nope.jsonl")
    assert not missing.ok and "no audit file" in missing.message
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    assert verify(empty).ok and verify(empty).records == 0


def test_two_processes_appending_at_once_keep_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from tapewatch.engine.observability.audit import AuditLog\n"
        "log = AuditLog(Path(sys.argv[1]))\n"
        "for i in range(25):\n"
        "    log.append(ts='2026-01-05T15:00:00+00:00', who=sys.argv[2], action='pause')\n"
    )
    root = Path(__file__).resolve().parents[2]
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(path), f"p{i}"], cwd=root)
        for i in range(2)
    ]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    result = verify(path)
    assert result.ok and result.records == 50


async def test_the_bus_sink_writes_each_operator_action_with_state_before_and_after(
    tmp_path: Path,
) -> None:
    engine, _, _ = make_engine()
    path = tmp_path / "audit" / "operator-audit.jsonl"
    trail = attach_audit(engine, path, settle=0.01)
    await engine.start()
    await engine.pause(who="alice@203.0.113.7")
    await asyncio.sleep(0.05)  # the settle timer writes it
    assert trail.written == 2  # the session's start, then the pause
    await engine.resume(who="bob@local")
    await engine.flatten(who="bob@local")  # the next action writes the previous one at once
    assert trail.written == 3
    trail.flush()
    records = [json.loads(line) for line in lines(path)]
    assert [r["action"] for r in records] == ["session_start", "pause", "resume", "flatten"]
    _, pause, resume, flatten = records
    assert pause["who"] == "alice@203.0.113.7"
    assert pause["state_before"]["trading_state"] == TradingState.ACTIVE.value
    assert pause["state_after"]["trading_state"] == TradingState.REDUCING.value
    assert pause["state_before"]["paused"] is False and pause["state_after"]["paused"] is True
    assert resume["state_before"]["trading_state"] == "REDUCING"
    assert resume["state_after"]["trading_state"] == "ACTIVE"
    assert flatten["detail"] == "0 order(s)"
    assert pause["sim_ts"] == engine.clock.now().isoformat()  # the demo's time, kept apart
    assert verify(path).ok


async def test_an_unwritable_audit_file_does_not_stop_the_command(tmp_path: Path) -> None:
    engine, _, _ = make_engine()
    blocker = tmp_path / "file"
    blocker.write_text("")
    trail = attach_audit(engine, blocker / "audit.jsonl")  # parent is a file: cannot write
    await engine.start()
    await engine.pause(who="ops@local")
    trail.flush()
    assert engine.state.paused
    assert (trail.written, trail.failures) == (0, 2)  # the session's start and the pause
