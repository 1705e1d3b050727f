"""The journal: exact serde round trips, durability, append-only, and one-line errors."""

from __future__ import annotations

import dataclasses
import sqlite3
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from enum import Enum
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tapewatch.engine.model.events import (
    EVENT_TYPES,
    BarClosed,
    Event,
    Notice,
    OperatorAction,
)
from tapewatch.engine.model.serde import UnknownEventError, event_from_json, event_to_json
from tapewatch.engine.model.types import Bar
from tapewatch.engine.storage import journal as journal_module
from tapewatch.engine.storage.journal import (
    SCHEMA_VERSION,
    EventJournal,
    Journal,
    JournalError,
    MemoryJournal,
    SchemaTooNewError,
)

T0 = datetime(2024, 3, 8, 14, 35, 12, 345678, tzinfo=UTC)


# ---- a generic sample of every event type (new event classes are covered automatically) ----


def _sample(hint: Any, with_none: bool) -> Any:
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if with_none and len(args) < len(typing.get_args(hint)):
            return None
        return _sample(args[0], with_none)
    if origin is tuple:
        item = typing.get_args(hint)[0]
        return (_sample(item, with_none), _sample(item, not with_none))
    if hint is float:
        return 0.1 + 0.2  # 0.30000000000000004: any rounding in the JSON would show
    if hint is bool:
        return True
    if hint is int:
        return 7
    if hint is str:
        return 'a "quoted" ünïcode\nline'
    if hint is datetime:
        return T0
    if isinstance(hint, type) and issubclass(hint, Enum):
        return list(hint)[-1]
    if dataclasses.is_dataclass(hint):
        return _build(hint, with_none)
    raise AssertionError(f"no sample for {hint!r}; extend _sample")


def _build(cls: Any, with_none: bool) -> Any:
    hints = typing.get_type_hints(cls)
    return cls(**{f.name: _sample(hints[f.name], with_none) for f in dataclasses.fields(cls)})


def sample_events() -> list[Event]:
    return [_build(cls, with_none) for cls in EVENT_TYPES.values() for with_none in (False, True)]


def notice(i: int, level: str = "info") -> Notice:
    return Notice(ts=T0 + timedelta(seconds=i), level=level, message=f"message {i}")


@pytest.fixture(params=["sqlite", "memory"])
def journal(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventJournal]:
    j: EventJournal = (
        Journal(tmp_path / "j.sqlite3") if request.param == "sqlite" else MemoryJournal()
    )
    yield j
    j.close()


def one_line(exc: pytest.ExceptionInfo[BaseException], path: Path) -> str:
    text = str(exc.value)
    assert "\n" not in text
    assert str(path) in text
    return text


# ---- serde ---------------------------------------------------------------------------------


@pytest.mark.parametrize("event", sample_events(), ids=lambda e: type(e).__name__)
def test_serde_round_trips_every_event_type(event: Event) -> None:
    text = event_to_json(event)
    assert event_from_json(event.kind, text) == event
    assert event_to_json(event_from_json(event.kind, text)) == text


@given(
    price=st.floats(allow_nan=False),
    qty=st.floats(min_value=0, allow_nan=False, allow_infinity=False),
    offset_minutes=st.integers(min_value=-14 * 60, max_value=14 * 60),
    micros=st.integers(min_value=0, max_value=999_999),
)
def test_serde_keeps_float_bits_and_utc_offsets(
    price: float, qty: float, offset_minutes: int, micros: int
) -> None:
    ts = datetime(2024, 1, 2, 3, 4, 5, micros, tzinfo=timezone(timedelta(minutes=offset_minutes)))
    event = BarClosed(ts=ts, bar=Bar("SPY", ts, price, price, price, price, qty))
    back = event_from_json("bar", event_to_json(event))
    assert back == event
    assert back.bar.close.hex() == price.hex()
    assert back.ts.utcoffset() == ts.utcoffset()


def test_serde_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        event_to_json(Notice(ts=datetime(2024, 1, 1), level="info", message="x"))


def test_serde_flags_data_from_a_newer_writer() -> None:
    with pytest.raises(UnknownEventError):
        event_from_json("from_the_future", "{}")
    text = event_to_json(notice(1)).replace('"level"', '"new_field":1,"level"')
    with pytest.raises(UnknownEventError, match="new_field"):
        event_from_json("notice", text)


def test_serde_fills_defaults_missing_from_older_records() -> None:
    text = event_to_json(OperatorAction(ts=T0, action="pause", who="me", detail="x"))
    old = text.replace(',"detail":"x"', "")
    assert event_from_json("operator", old) == OperatorAction(ts=T0, action="pause", who="me")


# ---- the API, identical for the SQLite and the memory journal ------------------------------


def test_append_events_last_and_last_seq(journal: EventJournal) -> None:
    assert journal.last_seq == 0
    assert journal.last("notice") is None
    assert list(journal.events()) == []
    events = sample_events()
    seqs = [journal.append(e) for e in events[:5]]
    seqs += journal.append_many(events[5:])
    assert seqs == list(range(1, len(events) + 1))
    assert journal.last_seq == len(events)
    assert list(journal.events()) == list(zip(seqs, events, strict=True))
    assert [s for s, _ in journal.events(after_seq=10)] == seqs[10:]
    only = list(journal.events(kinds={"notice", "bar"}))
    assert [e for _, e in only] == [e for e in events if e.kind in ("notice", "bar")]
    assert list(journal.events(kinds=())) == []
    assert journal.last("notice") == [e for e in events if e.kind == "notice"][-1]
    assert journal.append_many([]) == []


def test_unregistered_event_classes_are_refused(journal: EventJournal) -> None:
    @dataclass(frozen=True, slots=True)
    class Stray(Event):
        kind: ClassVar[str] = "stray"

    with pytest.raises(TypeError, match="EVENT_TYPES"):
        journal.append(Stray(ts=T0))
    assert journal.last_seq == 0


def test_append_many_is_all_or_nothing(journal: EventJournal) -> None:
    journal.append(notice(0))
    bad = Notice(ts=datetime(2024, 1, 1), level="info", message="naive")
    with pytest.raises(ValueError):
        journal.append_many([notice(1), notice(2), bad])
    assert [e for _, e in journal.events()] == [notice(0)]
    assert journal.append(notice(3)) == 2


def test_iteration_pages_and_sees_appends_made_while_iterating(journal: EventJournal) -> None:
    total = journal_module._PAGE * 2 + 3

    def event(i: int) -> Event:
        return OperatorAction(ts=T0, action="pause", who=str(i)) if i % 3 == 0 else notice(i)

    journal.append_many(event(i) for i in range(total))
    seen = []
    for seq, _ in journal.events(after_seq=5):
        seen.append(seq)
        if seq == total:
            journal.append(notice(total))
    assert seen == list(range(6, total + 2))
    operator = [(s, e) for s, e in journal.events(kinds=["operator"], after_seq=3)]
    assert operator == [(i + 1, event(i)) for i in range(3, total, 3)]


def test_closed_journal_refuses_use(journal: EventJournal) -> None:
    with journal as j:
        j.append(notice(0))
    with pytest.raises(JournalError, match="closed"):
        journal.append(notice(1))


def test_memory_journal_can_insist_on_a_clean_round_trip() -> None:
    j = MemoryJournal(check_serde=True)
    for event in sample_events():
        j.append(event)
    assert j.path is None
    assert j.last_seq == len(sample_events())


# ---- the SQLite file -----------------------------------------------------------------------


def test_reopen_keeps_everything_and_seq_continues(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "journal.sqlite3"
    events = sample_events()
    with Journal(path) as j:
        j.append_many(events)
        assert j.path == path
    with Journal(path) as j:
        assert [e for _, e in j.events()] == events
        assert j.append(notice(99)) == len(events) + 1
        assert j.last("notice") == notice(99)
    with Journal.in_data_dir(tmp_path / "deep" / "er") as j:
        assert j.last_seq == len(events) + 1
        assert j.path == path


def test_wal_mode_and_full_sync_are_on(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    with Journal(path) as j:
        j.append(notice(0))
        assert j._conn is not None
        assert j._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    row = raw.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    assert row == (str(SCHEMA_VERSION),)
    raw.close()


def test_database_itself_rejects_update_and_delete(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    with Journal(path) as j:
        j.append_many([notice(0), notice(1)])
    raw = sqlite3.connect(path)
    for sql in (
        "UPDATE events SET payload = '{}' WHERE seq = 1",
        "UPDATE events SET seq = 9 WHERE seq = 2",
        "DELETE FROM events WHERE seq = 1",
        "DELETE FROM events",
    ):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            raw.execute(sql)
    raw.commit()
    raw.close()
    with Journal(path) as j:
        assert list(j.events()) == [(1, notice(0)), (2, notice(1))]


def test_seq_strictly_increasing_across_sessions(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    seqs: list[int] = []
    for session in range(3):
        with Journal(path) as j:
            seqs.append(j.append(notice(session)))
            seqs += j.append_many([notice(session), notice(session)])
    assert seqs == list(range(1, 10))
    with Journal(path) as j:
        assert [s for s, _ in j.events()] == seqs


def test_not_a_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    content = b"this is my shopping list, not a journal\n" * 200
    path.write_bytes(content)
    with pytest.raises(JournalError) as exc:
        Journal(path)
    assert not isinstance(exc.value, SchemaTooNewError)
    assert "move it aside" in one_line(exc, path)
    assert path.read_bytes() == content


def test_foreign_sqlite_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "bars.sqlite3"
    raw = sqlite3.connect(path)
    raw.execute("CREATE TABLE bars (ts TEXT)")
    raw.commit()
    raw.close()
    content = path.read_bytes()
    with pytest.raises(JournalError) as exc:
        Journal(path)
    assert "not a tapewatch journal" in one_line(exc, path)
    assert path.read_bytes() == content


def test_newer_schema_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    with Journal(path) as j:
        j.append(notice(0))
    raw = sqlite3.connect(path)
    raw.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION + 1,))
    raw.commit()
    raw.execute("PRAGMA journal_mode = DELETE")  # so the file must stay byte-identical
    raw.close()
    content = path.read_bytes()
    with pytest.raises(SchemaTooNewError) as exc:
        Journal(path)
    assert "upgrade tapewatch" in one_line(exc, path)
    assert path.read_bytes() == content
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    raw.close()


def _insert_raw(path: Path, kind: str, payload: str) -> None:
    raw = sqlite3.connect(path)
    raw.execute(
        "INSERT INTO events (ts, kind, payload) VALUES (?, ?, ?)", (T0.isoformat(), kind, payload)
    )
    raw.commit()
    raw.close()


def test_records_from_a_newer_version_raise_schema_too_new(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    with Journal(path) as j:
        j.append(notice(0))
    _insert_raw(path, "hologram", '{"ts": "2024-01-01T00:00:00+00:00"}')
    newer_notice = event_to_json(notice(2)).replace('"level"', '"colour":"red","level"')
    _insert_raw(path, "notice", newer_notice)
    with Journal(path) as j:
        events = j.events()
        assert next(events) == (1, notice(0))
        with pytest.raises(SchemaTooNewError) as exc:
            next(events)
        assert "hologram" in one_line(exc, path)
        assert "upgrade tapewatch" in str(exc.value)
        with pytest.raises(SchemaTooNewError, match="colour"):
            j.last("notice")
        assert list(j.events(kinds=["bar"])) == []


def test_corrupt_record_raises_journal_error(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    with Journal(path) as j:
        j.append(notice(0))
    _insert_raw(path, "notice", "{not json")
    _insert_raw(path, "bar", '{"ts": "2024-01-01T00:00:00+00:00"}')  # required field missing
    with Journal(path) as j:
        with pytest.raises(JournalError) as exc:
            list(j.events())
        assert not isinstance(exc.value, SchemaTooNewError)
        assert "record 2" in one_line(exc, path)
        with pytest.raises(JournalError, match="record 3"):
            j.last("bar")


def test_unwritable_locations_raise_one_clear_line(tmp_path: Path) -> None:
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    under_file = a_file / "journal.sqlite3"
    with pytest.raises(JournalError) as exc:
        Journal(under_file)
    assert "--data-dir" in one_line(exc, under_file)
    with pytest.raises(JournalError) as exc:
        Journal.in_data_dir(a_file / "sub")
    assert "--data-dir" in one_line(exc, a_file / "sub")
    a_dir = tmp_path / "a_dir"
    a_dir.mkdir()
    with pytest.raises(JournalError) as exc:
        Journal(a_dir)
    assert "--data-dir" in one_line(exc, a_dir)
    assert a_file.read_text() == "x"


def test_read_only_database_raises_and_keeps_what_was_recorded(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    with Journal(path) as j:
        j.append(notice(0))
        assert j._conn is not None
        j._conn.execute("PRAGMA query_only = ON")  # what a read-only mount looks like to SQLite
        with pytest.raises(JournalError) as exc:
            j.append(notice(1))
        assert "writable" in one_line(exc, path)
        with pytest.raises(JournalError, match="writable"):
            j.append_many([notice(1), notice(2)])
        assert list(j.events()) == [(1, notice(0))]
    with Journal(path) as j:
        assert list(j.events()) == [(1, notice(0))]


def test_full_disk_raises_keeps_history_and_recovers(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    with Journal(path) as j:
        j.append_many(notice(i) for i in range(10))
        assert j._conn is not None
        pages = j._conn.execute("PRAGMA page_count").fetchone()[0]
        j._conn.execute(f"PRAGMA max_page_count = {pages}")
        big = Notice(ts=T0, level="info", message="x" * 20_000)
        with pytest.raises(JournalError) as exc:
            j.append(big)
        assert "disk is full" in one_line(exc, path)
        with pytest.raises(JournalError, match="disk is full"):
            j.append_many([notice(10), big])
        assert [e for _, e in j.events()] == [notice(i) for i in range(10)]
        j._conn.execute(f"PRAGMA max_page_count = {pages * 1000}")  # space freed
        assert j.append(big) == 11
    with Journal(path) as j:
        assert [s for s, _ in j.events()] == list(range(1, 12))
        assert j.last("notice") == big
