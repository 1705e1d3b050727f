"""The journal anchors the audit chain's head, so a shortened audit file cannot pass verify.

A hash chain shows a record was changed or removed from the middle, but not that the file
was cut after a whole record, emptied, or swapped for a fresh chain: each of those is a valid
chain. So every audit append is also recorded in the session's journal as an
``AuditAnchored`` event (count and hash), where append-only triggers keep it. ``verify`` then
insists the audit file holds at least that many records and that the anchored one has that
hash. Journals are read read-only: checking never writes to them.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from tapewatch.engine.model.events import AuditAnchored
from tapewatch.engine.model.serde import event_from_json


@dataclass(frozen=True, slots=True)
class Anchor:
    """The audit head a journal last recorded: record ``seq`` had hash ``hash``."""

    journal: Path
    seq: int
    hash: str


def journals_in(data_dir: Path) -> list[Path]:
    """Every journal of a data directory: ``paper/``, ``live/`` and each ``demo/`` run."""
    return sorted(p for p in Path(data_dir).glob("*/journal*.sqlite3") if p.is_file())


def latest_anchor(journal: Path) -> Anchor | None:
    """The newest anchor in ``journal``; None when it has none or cannot be read."""
    uri = f"file:{quote(str(Path(journal).absolute()))}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True)
    except sqlite3.Error:
        return None
    try:
        row = conn.execute(
            "SELECT payload FROM events WHERE kind = ? ORDER BY seq DESC LIMIT 1",
            (AuditAnchored.kind,),
        ).fetchone()
    except sqlite3.Error:
        return None  # not a journal, or a foreign file: nothing anchored there
    finally:
        with contextlib.suppress(sqlite3.Error):
            conn.close()
    if row is None:
        return None
    try:
        event = event_from_json(AuditAnchored.kind, row[0])
    except (ValueError, TypeError, KeyError):
        return None
    assert isinstance(event, AuditAnchored)
    return Anchor(Path(journal), event.audit_seq, event.audit_hash)


def read_anchors(data_dir: Path) -> list[Anchor]:
    """The newest anchor of each journal in ``data_dir`` that has one."""
    found = (latest_anchor(path) for path in journals_in(data_dir))
    return [anchor for anchor in found if anchor is not None]


def check_anchors(count: int, hashes: dict[int, str], anchors: Iterable[Anchor]) -> str | None:
    """The first way the verified file falls short of an anchor, as one line; None if none.

    ``count`` is how many records the file's intact chain holds and ``hashes`` the hash of
    each anchored seq among them.
    """
    for anchor in sorted(anchors, key=lambda a: a.seq, reverse=True):
        short = anchor.hash[:12]
        if count < anchor.seq:
            return (
                f"the audit file has {count} record(s) but the journal {anchor.journal} "
                f"anchors {anchor.seq} (head {short}…): records were truncated or the file "
                "was emptied or replaced"
            )
        if hashes.get(anchor.seq) != anchor.hash:
            return (
                f"record {anchor.seq} is not the one the journal {anchor.journal} anchors "
                f"(head {short}…): the audit file was replaced or rewritten"
            )
    return None
