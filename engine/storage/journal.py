"""The append-only event journal: every event the engine publishes, seq-numbered, durable.

SQLite in WAL mode with ``synchronous=FULL``: ``append`` returns only after the record is on
disk, which the write-ahead order record (intent before submit) depends on. Triggers in the
database itself abort any UPDATE or DELETE of an event, so history cannot be rewritten by a bug
in this process or by a hand-run SQL statement. Positions and P&L are projections rebuilt by
replaying it (engine.portfolio).

Failures a user can cause (a corrupt or foreign file, an unwritable folder, a full disk, a
journal from a newer tapewatch) raise a JournalError whose message is one line naming the file
and what to do. Opening never writes to a file it refuses.

``MemoryJournal`` has the same API over a list, for backtests and tests.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

from tapewatch.engine.model.events import EVENT_TYPES, Event
from tapewatch.engine.model.serde import UnknownEventError, event_from_json, event_to_json
from tapewatch.engine.settings.errors import UsageError
from tapewatch.engine.storage.datadir import private_dir, tighten, touch_private

SCHEMA_VERSION = 1

_PAGE = 512  # rows fetched per query while iterating: bounded memory, appends stay possible
_BUSY_TIMEOUT_MS = 2000

_SCHEMA = f"""
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', '{SCHEMA_VERSION}');
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    ts TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_kind_seq ON events (kind, seq);
CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'the journal is append-only: events cannot be updated'); END;
CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'the journal is append-only: events cannot be deleted'); END;
COMMIT;
"""

_OBJECTS = {"meta", "events", "events_kind_seq", "events_no_update", "events_no_delete"}

_INSERT = "INSERT INTO events (ts, kind, payload) VALUES (?, ?, ?)"


def _sidecars(path: Path) -> tuple[Path, Path]:
    """SQLite's write-ahead log and shared-memory index beside the journal."""
    return path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")


class JournalError(UsageError):
    """The journal cannot be used; the message is one line saying what to do."""


class SchemaTooNewError(JournalError):
    """The journal was written by a newer tapewatch; it is left untouched."""


class EventJournal(Protocol):
    """What the engine needs from a journal: the SQLite one and the in-memory one alike."""

    @property
    def path(self) -> Path | None: ...

    @property
    def last_seq(self) -> int: ...

    def append(self, event: Event) -> int: ...

    def append_many(self, events: Iterable[Event]) -> list[int]: ...

    def events(
        self, *, after_seq: int = 0, kinds: Collection[str] | None = None
    ) -> Iterator[tuple[int, Event]]: ...

    def last(self, kind: str) -> Event | None: ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


def _registered_kind(event: Event) -> str:
    """The event's kind, refusing classes the journal could not read back."""
    kind = event.kind
    if EVENT_TYPES.get(kind) is not type(event):
        raise TypeError(
            f"{type(event).__name__} (kind {kind!r}) is not registered in "
            "engine.events.EVENT_TYPES; add it there so the journal can read it back"
        )
    return kind


class _ClosesOnExit:
    """``with journal:`` closes it, for both journal kinds."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Journal(_ClosesOnExit):
    """The durable journal in one SQLite file; a lock makes it safe to call from any thread."""

    def __init__(self, path: Path | str) -> None:
        self._path = Path(path)
        self._shown = self._path.absolute()  # for messages: a relative path helps nobody
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = self._open()

    @classmethod
    def in_data_dir(cls, data_dir: Path, name: str = "journal.sqlite3") -> Journal:
        return cls(Path(data_dir) / name)

    @property
    def path(self) -> Path:
        return self._path

    # ---- opening -------------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        folder = self._shown.parent
        try:
            private_dir(folder, tighten_existing=False)  # created 0700, never widened
        except (FileExistsError, NotADirectoryError) as exc:
            ancestors = (folder, *folder.parents)
            blocker = next((p for p in ancestors if p.exists() and not p.is_dir()), folder)
            raise JournalError(
                f"cannot create the journal folder for {self._shown}: the file {blocker} is "
                "in the way; choose another --data-dir"
            ) from exc
        except OSError as exc:
            raise JournalError(
                f"cannot create the journal folder {folder} for {self._shown} "
                f"({exc.strerror or exc}); choose a writable --data-dir"
            ) from exc
        if self._shown.is_dir():
            raise JournalError(
                f"journal path {self._shown} is a folder; give a file path or use --data-dir"
            )
        if not self._shown.exists():
            try:  # created 0600 first: SQLite gives its -wal and -shm files the same mode
                touch_private(self._shown)
            except OSError as exc:
                raise JournalError(
                    f"cannot create the journal {self._shown} ({exc.strerror or exc}); "
                    "choose a writable --data-dir"
                ) from exc
        try:
            conn = sqlite3.connect(self._shown, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise self._translate(exc, "opening") from exc
        try:
            self._prepare(conn)
        except BaseException as exc:
            conn.close()
            if isinstance(exc, sqlite3.Error):
                raise self._translate(exc, "opening") from exc
            raise
        for path in (self._shown, *_sidecars(self._shown)):
            tighten(path)  # one left readable by an older tapewatch becomes private
        return conn

    def _prepare(self, conn: sqlite3.Connection) -> None:
        """Check what the file is before writing anything to it, then set it up."""
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        objects = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        if objects and "meta" not in objects:
            raise JournalError(
                f"{self._shown} is an SQLite database but not a tapewatch journal; "
                "point --data-dir elsewhere or move that file aside"
            )
        if "meta" in objects:
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            try:
                version = int(row[0])
            except (TypeError, ValueError):
                raise JournalError(
                    f"journal {self._shown} has no valid schema version; it is corrupt or not a "
                    "tapewatch journal: move it aside and start a new one"
                ) from None
            if version > SCHEMA_VERSION:
                raise SchemaTooNewError(
                    f"journal {self._shown} has schema version {version}, newer than this "
                    f"tapewatch understands ({SCHEMA_VERSION}); upgrade tapewatch to use it "
                    "(the file was not modified)"
                )
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        if not objects >= _OBJECTS:
            conn.executescript(_SCHEMA)

    def _translate(self, exc: sqlite3.Error, doing: str) -> JournalError:
        """One clear line for an SQLite failure: what happened to which file, and what to do."""
        detail = str(exc)
        text = detail.lower()
        where = f"journal {self._shown}"
        if "full" in text:
            return JournalError(
                f"{where}: the disk is full, {doing} failed and nothing was recorded; "
                "free disk space (or move --data-dir) and try again"
            )
        if "not a database" in text or "malformed" in text or "corrupt" in text:
            return JournalError(
                f"{where} is corrupt or not a tapewatch journal ({detail}); "
                "move it aside (keep it for inspection) and start a new one"
            )
        if "locked" in text or "busy" in text:
            return JournalError(
                f"{where} is locked by another process; stop the other tapewatch using it "
                "(one running engine per journal) and try again"
            )
        if "readonly" in text or "unable to open" in text or "permission" in text:
            return JournalError(
                f"cannot write {where} ({detail}); make it and its folder writable by this user "
                "or choose another --data-dir"
            )
        if "i/o" in text:
            return JournalError(
                f"{where}: disk I/O error while {doing}; check the disk and free space, "
                "then try again"
            )
        return JournalError(f"{where}: {doing} failed ({detail})")

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise JournalError(f"journal {self._shown} is closed; open it again to use it")
        return self._conn

    # ---- writing -------------------------------------------------------------------------

    def append(self, event: Event) -> int:
        """Record one event; it is committed to disk when this returns. Returns its seq."""
        kind = _registered_kind(event)
        row = (event.ts.isoformat(), kind, event_to_json(event))
        with self._lock:
            conn = self._connection()
            try:
                seq = conn.execute(_INSERT, row).lastrowid
            except sqlite3.Error as exc:
                raise self._translate(exc, f"recording a {kind} event") from exc
        assert seq is not None
        return seq

    def append_many(self, events: Iterable[Event]) -> list[int]:
        """Record several events in one transaction: all of them or none."""
        rows = [(e.ts.isoformat(), _registered_kind(e), event_to_json(e)) for e in events]
        if not rows:
            return []
        seqs: list[int] = []
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
                for row in rows:
                    seq = conn.execute(_INSERT, row).lastrowid
                    assert seq is not None
                    seqs.append(seq)
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    # SQLite may already have rolled back by itself (e.g. on a full disk).
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                raise self._translate(exc, f"recording {len(rows)} events") from exc
        return seqs

    # ---- reading -------------------------------------------------------------------------

    def _decode(self, seq: int, kind: str, payload: str) -> Event:
        try:
            return event_from_json(kind, payload)
        except UnknownEventError as exc:
            raise SchemaTooNewError(
                f"journal {self._shown}: record {seq} was written by a newer tapewatch ({exc}); "
                "upgrade tapewatch to read it"
            ) from exc
        except (ValueError, TypeError, KeyError) as exc:
            raise JournalError(
                f"journal {self._shown}: record {seq} ({kind}) is corrupt ({exc}); "
                "restore the file from a backup or move it aside"
            ) from exc

    def _query(self, sql: str, params: tuple[object, ...]) -> list[tuple[int, str, str]]:
        with self._lock:
            conn = self._connection()
            try:
                return conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise self._translate(exc, "reading") from exc

    def events(
        self, *, after_seq: int = 0, kinds: Collection[str] | None = None
    ) -> Iterator[tuple[int, Event]]:
        """(seq, event) in seq order after ``after_seq``, optionally only the given kinds."""
        wanted = None if kinds is None else sorted(set(kinds))
        if wanted is not None and not wanted:
            return
        sql = "SELECT seq, kind, payload FROM events WHERE seq > ?"
        if wanted is not None:
            sql += f" AND kind IN ({', '.join('?' * len(wanted))})"
        sql += " ORDER BY seq LIMIT ?"
        position = after_seq
        while True:
            rows = self._query(sql, (position, *(wanted or ()), _PAGE))
            if not rows:  # ask until empty: events appended meanwhile are seen, as in memory
                return
            for seq, kind, payload in rows:
                yield seq, self._decode(seq, kind, payload)
            position = rows[-1][0]

    def last(self, kind: str) -> Event | None:
        """The most recent event of ``kind``, or None."""
        rows = self._query(
            "SELECT seq, kind, payload FROM events WHERE kind = ? ORDER BY seq DESC LIMIT 1",
            (kind,),
        )
        return self._decode(*rows[0]) if rows else None

    @property
    def last_seq(self) -> int:
        """The seq of the newest event, 0 for an empty journal."""
        with self._lock:
            conn = self._connection()
            (seq,) = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()
        return int(seq)

    # ---- lifetime ------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __repr__(self) -> str:
        return f"Journal({str(self._path)!r})"


class MemoryJournal(_ClosesOnExit):
    """The journal's API over a list, for backtests and tests: no SQLite, no disk.

    Events are stored as the (immutable) objects themselves. ``check_serde=True`` round-trips
    every appended event through engine.serde and insists it comes back equal, so a test can
    prove its events would journal cleanly without touching disk.
    """

    def __init__(self, *, check_serde: bool = False) -> None:
        self._events: list[Event] = []
        self._last_index: dict[str, int] = {}
        self._check_serde = check_serde
        self._closed = False

    @property
    def path(self) -> None:
        return None

    def _validate(self, event: Event) -> None:
        """Refuse what the SQLite journal would refuse, so a backtest fails the same way."""
        kind = _registered_kind(event)
        if event.ts.tzinfo is None:
            raise ValueError(f"naive ts {event.ts!r}: journaled times must be timezone-aware")
        if self._check_serde and event_from_json(kind, event_to_json(event)) != event:
            raise ValueError(f"{event!r} does not survive a journal round trip")

    def _store(self, event: Event) -> int:
        self._events.append(event)
        self._last_index[event.kind] = len(self._events) - 1
        return len(self._events)

    def _check_open(self) -> None:
        if self._closed:
            raise JournalError("memory journal is closed")

    def append(self, event: Event) -> int:
        self._check_open()
        self._validate(event)
        return self._store(event)

    def append_many(self, events: Iterable[Event]) -> list[int]:
        self._check_open()
        batch = list(events)
        for event in batch:  # validate all first: all or nothing, like the SQLite journal
            self._validate(event)
        return [self._store(event) for event in batch]

    def events(
        self, *, after_seq: int = 0, kinds: Collection[str] | None = None
    ) -> Iterator[tuple[int, Event]]:
        self._check_open()
        wanted = None if kinds is None else frozenset(kinds)
        index = max(after_seq, 0)
        while index < len(self._events):  # sees events appended while iterating, as SQLite does
            event = self._events[index]
            index += 1
            if wanted is None or event.kind in wanted:
                yield index, event

    def last(self, kind: str) -> Event | None:
        self._check_open()
        index = self._last_index.get(kind)
        return None if index is None else self._events[index]

    @property
    def last_seq(self) -> int:
        return len(self._events)

    def close(self) -> None:
        self._closed = True
