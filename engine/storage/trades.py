"""The fills a journal recorded, read without disturbing the engine that may be writing it.

``tapewatch trades`` runs beside a live session, so the journal is opened through SQLite's
read-only URI (``mode=ro``): nothing is created, migrated or written, no write lock is taken,
and the writer's lock file is not needed. Only ``fill`` events (engine.events.OrderFilled) are
read, decoded by engine.serde, so quantities and prices are exactly the journaled doubles.

Where journals live (the layout of engine.live_wiring.journal_path and
engine.wiring.demo_journal_path, which a test holds this to): ``<data dir>/paper/journal.sqlite3``,
``<data dir>/live/journal.sqlite3``, and one ``<data dir>/demo/journal-seed<N>-<stamp>.sqlite3``
per demo run.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

from tapewatch.engine.model.events import OrderFilled
from tapewatch.engine.model.serde import UnknownEventError, event_from_json
from tapewatch.engine.model.types import Fill
from tapewatch.engine.storage.journal import SCHEMA_VERSION, JournalError

EXCHANGE_TZ = ZoneInfo("America/New_York")
"""``since`` days are trading days: the fill's date on the exchange's clock."""
MODES = ("paper", "live", "demo")
_PAGE = 512


def journal_for(data_dir: Path, mode: str) -> Path | None:
    """The journal ``mode`` writes under ``data_dir`` (demo: the newest run's), or None."""
    if mode == "demo":
        runs = sorted((data_dir / "demo").glob("journal-*.sqlite3"))
        return runs[-1] if runs else None
    path = data_dir / mode / "journal.sqlite3"
    return path if path.is_file() else None


def _connect(path: Path) -> sqlite3.Connection:
    uri = f"{path.absolute().as_uri()}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
        conn.execute("PRAGMA query_only = ON")
        conn.execute("PRAGMA busy_timeout = 2000")
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    except sqlite3.Error as exc:
        raise _translate(path, exc) from exc
    if not {"meta", "events"} <= tables:
        conn.close()
        raise JournalError(f"{path} is not a tapewatch journal; name a journal.sqlite3 file")
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    try:
        version = int(row[0])
    except (TypeError, ValueError):
        conn.close()
        raise JournalError(f"journal {path} has no valid schema version; it is corrupt") from None
    if version > SCHEMA_VERSION:
        conn.close()
        raise JournalError(
            f"journal {path} has schema version {version}, newer than this tapewatch "
            f"understands ({SCHEMA_VERSION}); upgrade tapewatch to read it"
        )
    return conn


def _translate(path: Path, exc: sqlite3.Error) -> JournalError:
    text = str(exc).lower()
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return JournalError(f"journal {path} is corrupt or not a tapewatch journal ({exc})")
    if "unable to open" in text or "permission" in text or "readonly" in text:
        return JournalError(f"cannot read journal {path} ({exc}); make it readable by this user")
    return JournalError(f"journal {path}: reading failed ({exc})")


def _rows(conn: sqlite3.Connection, path: Path) -> Iterator[tuple[int, str]]:
    position = 0
    while True:
        try:
            rows = conn.execute(
                "SELECT seq, payload FROM events WHERE kind = ? AND seq > ? ORDER BY seq LIMIT ?",
                (OrderFilled.kind, position, _PAGE),
            ).fetchall()
        except sqlite3.Error as exc:
            raise _translate(path, exc) from exc
        if not rows:
            return
        yield from rows
        position = rows[-1][0]


def read_fills(path: Path, *, since: date | None = None) -> list[Fill]:
    """Every fill journaled in ``path``, in journal order; from trading day ``since`` on."""
    conn = _connect(path)
    fills: list[Fill] = []
    try:
        for seq, payload in _rows(conn, path):
            try:
                event = event_from_json(OrderFilled.kind, payload)
            except UnknownEventError as exc:
                raise JournalError(
                    f"journal {path}: record {seq} was written by a newer tapewatch ({exc}); "
                    "upgrade tapewatch to read it"
                ) from exc
            except (ValueError, TypeError, KeyError) as exc:
                raise JournalError(
                    f"journal {path}: record {seq} (fill) is corrupt ({exc})"
                ) from exc
            assert isinstance(event, OrderFilled)
            if since is None or event.fill.ts.astimezone(EXCHANGE_TZ).date() >= since:
                fills.append(event.fill)
    finally:
        conn.close()
    return fills
