"""The operator audit trail: an append-only, hash-chained JSONL file.

Each line is one record ``{seq, ts, [sim_ts,] who, action, detail, state_before, state_after,
prev_hash, hash}``: ``ts`` is the wall-clock time of the action and ``sim_ts``, only in a
simulated session (the demo), the simulated market time it happened at. ``hash`` is the
SHA-256 of the canonical JSON (sorted keys, no spaces, UTF-8) of the record without ``hash``,
and ``prev_hash`` is the previous record's hash (64 zeros for the first). Changing, removing,
reordering or truncating any line breaks the chain at that record, and ``verify`` names it.
Appends take an exclusive file lock and chain from the file's last record, so a console and a
headless run sharing a data directory cannot fork the chain. Records written before ``sim_ts``
existed verify as they are.

``AuditTrail`` is the engine-bus sink: it writes one record per ``OperatorAction``. The engine
publishes the action before carrying it out, so the record is held until the command has had
its effect (the next unrelated event, the next action, a short settle timer, or ``flush()``)
and then written with the trading state before and after. Secrets are redacted before hashing.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tapewatch.engine.core.clock import SimClock
from tapewatch.engine.model.events import (
    AuditAnchored,
    Event,
    OperatorAction,
    SessionStarted,
    SessionStopped,
)
from tapewatch.engine.observability.audit_anchor import Anchor, check_anchors
from tapewatch.engine.observability.logs import redact
from tapewatch.engine.settings.errors import TapewatchError
from tapewatch.engine.storage.datadir import open_private, private_dir
from tapewatch.engine.storage.journal import JournalError

if TYPE_CHECKING:
    from tapewatch.engine.core.engine import Engine
log = logging.getLogger("tapewatch.audit")

GENESIS = "0" * 64
FIELDS = (
    "seq",
    "ts",
    "who",
    "action",
    "detail",
    "state_before",
    "state_after",
    "prev_hash",
    "hash",
)
SIM_TS = "sim_ts"
"""The optional field: a simulated session's market time, written right after ``ts``."""
_LINE_ORDER = (FIELDS[0], FIELDS[1], SIM_TS, *FIELDS[2:])
_FIELD_SETS = (frozenset(FIELDS), frozenset((*FIELDS, SIM_TS)))
_TAIL_CHUNK = 8192


class AuditError(TapewatchError):
    """The audit file cannot be written; the message says where and why."""


def default_audit_path(data_dir: Path) -> Path:
    return data_dir / "audit" / "operator-audit.jsonl"


def canonical(obj: Any) -> str:
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def record_hash(record: dict[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(canonical(body).encode("utf-8")).hexdigest()


def _line(record: dict[str, Any]) -> str:
    """The exact bytes of a record's line: fields in FIELDS order (``sim_ts`` after ``ts``),
    nested objects sorted."""
    ordered = {k: record[k] for k in _LINE_ORDER if k in record}
    return json.dumps(ordered, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _clean(value: Any) -> Any:
    """Redact secrets in every string of a JSON-able value; sort nested keys."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact(str(k)): _clean(v) for k, v in sorted(value.items())}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


class AuditLog:
    """Appends chained records to one file; safe across threads and processes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def append(
        self,
        *,
        ts: datetime | str,
        who: str,
        action: str,
        detail: str = "",
        state_before: dict[str, Any] | None = None,
        state_after: dict[str, Any] | None = None,
        sim_ts: datetime | str | None = None,
    ) -> dict[str, Any]:
        """Write one record (flushed and fsynced) and return it. ``ts`` is the wall-clock
        time; ``sim_ts`` (a simulated session only) the simulated time, kept apart."""
        stamp = ts.isoformat() if isinstance(ts, datetime) else ts
        simulated = sim_ts.isoformat() if isinstance(sim_ts, datetime) else sim_ts
        try:
            private_dir(self.path.parent)
            with self._lock, os.fdopen(open_private(self.path), "a+b") as fh:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
                try:
                    last, torn = _tail(fh)
                    record: dict[str, Any] = {
                        "seq": (last["seq"] if last else 0) + 1,
                        "ts": stamp,
                        **({SIM_TS: simulated} if simulated is not None else {}),
                        "who": redact(who),
                        "action": redact(action),
                        "detail": redact(detail),
                        "state_before": _clean(state_before or {}),
                        "state_after": _clean(state_after or {}),
                        "prev_hash": last["hash"] if last else GENESIS,
                    }
                    record["hash"] = record_hash(record)
                    data = _line(record).encode("utf-8") + b"\n"
                    fh.write(b"\n" + data if torn else data)
                    fh.flush()
                    os.fsync(fh.fileno())
                finally:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        except OSError as exc:
            raise AuditError(f"cannot write the audit file {self.path}: {exc.strerror}") from None
        return record


def _tail(fh: Any) -> tuple[dict[str, Any] | None, bool]:
    """The last parseable record and whether the file ends in a torn (unterminated) line."""
    size = fh.seek(0, os.SEEK_END)
    if size == 0:
        return None, False
    fh.seek(size - 1)
    torn = fh.read(1) != b"\n"
    end = size
    buf = b""
    while end > 0:
        start = max(0, end - _TAIL_CHUNK)
        fh.seek(start)
        buf = fh.read(end - start) + buf
        end = start
        lines = buf.split(b"\n")
        complete = lines if start == 0 else lines[1:]  # the first piece may be cut
        for raw in reversed(complete):
            record = _parse(raw)
            if record is not None:
                return record, torn
    return None, torn


def _parse(raw: bytes) -> dict[str, Any] | None:
    if not raw.strip():
        return None
    try:
        record = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("seq"), int):
        return None
    if not isinstance(record.get("hash"), str):
        return None
    return record


# -- verification ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    records: int  # records verified before the first break (all of them when ok)
    first_broken_seq: int | None
    message: str


def _lines(path: Path) -> Iterator[tuple[int, bytes, bool]]:
    """(line number, bytes without newline, terminated) for each line."""
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            terminated = raw.endswith(b"\n")
            yield number, raw[:-1] if terminated else raw, terminated


def verify(path: Path, *, anchors: Sequence[Anchor] = ()) -> VerifyResult:
    """Check every link of the chain; report the first record that does not hold.

    ``anchors`` (``engine.observability.audit_anchor.read_anchors(data_dir)``) are the heads the
    journals recorded: the file must still reach each of them, so cutting or emptying it fails too.
    """
    if not path.exists():
        if anchors:
            newest = max(anchors, key=lambda a: a.seq)
            return VerifyResult(
                False,
                0,
                None,
                f"no audit file at {path}, but the journal {newest.journal} anchors "
                f"{newest.seq} record(s): the audit file was deleted or moved",
            )
        return VerifyResult(False, 0, None, f"no audit file at {path}")
    wanted = {anchor.seq for anchor in anchors}
    hashes: dict[int, str] = {}
    expected_seq = 1
    prev_hash = GENESIS
    try:
        for number, raw, terminated in _lines(path):
            problem = _check(raw, terminated, expected_seq, prev_hash)
            if problem is not None:
                return VerifyResult(
                    False,
                    expected_seq - 1,
                    expected_seq,
                    f"chain broken at seq {expected_seq} (line {number}): {problem}",
                )
            prev_hash = json.loads(raw)["hash"]
            if expected_seq in wanted:
                hashes[expected_seq] = prev_hash
            expected_seq += 1
    except OSError as exc:
        return VerifyResult(False, expected_seq - 1, None, f"cannot read {path}: {exc.strerror}")
    count = expected_seq - 1
    short = check_anchors(count, hashes, anchors)
    if short is not None:
        return VerifyResult(False, count, None, short)
    anchored = f", {len(anchors)} journal anchor(s) match" if anchors else ""
    return VerifyResult(True, count, None, f"{count} record(s), chain intact{anchored}")


def _check(raw: bytes, terminated: bool, seq: int, prev_hash: str) -> str | None:
    if not terminated:
        return "the last line is incomplete (truncated or torn write)"
    try:
        text = raw.decode("utf-8")
        record = json.loads(text)
    except (UnicodeDecodeError, ValueError):
        return "not a valid JSON record (altered or truncated)"
    if not isinstance(record, dict) or frozenset(record) not in _FIELD_SETS:
        return "fields missing or added"
    if record["seq"] != seq:
        return f"found seq {record['seq']!r} where {seq} was expected (a record removed or moved)"
    if record["prev_hash"] != prev_hash:
        return "prev_hash does not match the previous record (a record removed or altered)"
    if record_hash(record) != record["hash"]:
        return "hash does not match the record's content (altered)"
    if _line(record) != text:
        return "the line is not in canonical form (altered)"
    return None


# -- the bus sink ------------------------------------------------------------------------------

# Events that are consequences of a command; anything else means the command has finished.
_CONSEQUENCES = frozenset(
    {"breaker", "trading_state", "notice", "intent", "order_submitted", "order_updated", "fill",
     "risk_denied"}
)  # fmt: skip


def engine_snapshot(engine: Engine) -> dict[str, Any]:
    """The state an operator action changes: trading state, pause, mode, account, exposure."""
    state = engine.state
    return {
        "trading_state": state.trading_state.value,
        "paused": state.paused,
        "mode": state.mode.value,
        "account": state.account,
        "in_flight": state.in_flight,
        "positions": {
            symbol: position.qty
            for symbol, position in sorted(engine.portfolio.positions.items())
            if abs(position.qty) > 1e-12
        },
    }


def _wall_now() -> datetime:
    return datetime.now(UTC)


class AuditTrail:
    """Bus sink writing each OperatorAction with the engine's state before and after, plus
    the session's start and stop (with the signal that stopped it), each anchored in the
    engine's journal.

    Records carry the wall-clock time (``wall``) of the action; when the engine runs on a
    simulated clock (the demo) its time goes in ``sim_ts`` beside it, never in its place.
    """

    def __init__(
        self,
        log: AuditLog,
        engine: Engine,
        *,
        settle: float = 0.25,
        wall: Callable[[], datetime] = _wall_now,
    ) -> None:
        self.log = log
        self.engine = engine
        self.settle = settle
        self.wall = wall
        self._pending: tuple[OperatorAction, dict[str, Any], datetime] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._session_open = False
        self.written = 0
        self.failures = 0

    def __call__(self, event: Event) -> None:
        if isinstance(event, OperatorAction):
            self.flush()
            self._pending = (event, engine_snapshot(self.engine), self.wall())
            self._arm_timer()
            return
        if self._pending is not None and event.kind not in _CONSEQUENCES:
            self.flush()
        if isinstance(event, SessionStarted):
            self.session_started(event.ts)
        elif isinstance(event, SessionStopped):
            self.session_stopped(event.reason, event.ts)

    def _arm_timer(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop: the next event or flush() writes it
        self._timer = loop.call_later(self.settle, self.flush)

    def flush(self) -> None:
        """Write the held record now, with the state as it is now."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pending, self._pending = self._pending, None
        if pending is None:
            return
        event, before, at = pending
        self._write(at, event.ts, event.who, event.action, event.detail, before)

    def session_started(self, ts: datetime | None = None) -> None:
        """Record that this process's session began (once), naming the user and the PID."""
        if self._session_open:
            return
        self._session_open = True
        engine = self.engine
        detail = (
            f"{engine.state.mode.value} account {engine.state.account or '-'} "
            f"{engine.symbol} {engine.timeframe.label} pid {os.getpid()}"
        )
        self._write(self.wall(), ts or engine.clock.now(), engine.who, "session_start", detail, {})

    def session_stopped(self, reason: str, ts: datetime | None = None) -> None:
        """Record the session's end: its reason and the signal, if a signal stopped it."""
        if not self._session_open:
            return
        self._session_open = False
        match = _SIGNAL.search(reason)
        detail = f"{reason} (signal {match.group(0)})" if match else reason
        engine = self.engine
        before = engine_snapshot(engine)
        self._write(
            self.wall(), ts or engine.clock.now(), engine.who, "session_stop", detail, before
        )

    def close(self) -> None:
        """Write what is held; a session that never stopped cleanly is recorded as ended."""
        self.flush()
        self.session_stopped("ended without a clean stop")

    def _write(
        self,
        at: datetime,
        engine_ts: datetime,
        who: str,
        action: str,
        detail: str,
        before: dict[str, Any],
    ) -> None:
        """``at`` is the wall-clock moment; ``engine_ts`` the engine's (simulated or not)."""
        simulated = isinstance(self.engine.clock, SimClock)
        try:
            record = self.log.append(
                ts=at,
                sim_ts=engine_ts if simulated else None,
                who=who,
                action=action,
                detail=detail,
                state_before=before,
                state_after=engine_snapshot(self.engine),
            )
        except AuditError as exc:  # a full disk must not stop a pause or a flatten
            self.failures += 1
            log.error("operator action %s by %s not audited: %s", action, who, exc)
            return
        self.written += 1
        self._anchor(record)

    def _anchor(self, record: dict[str, Any]) -> None:
        """Record the new head in the journal, where it cannot be cut off with the file."""
        journal = self.engine.journal
        if journal is None:
            return
        anchor = AuditAnchored(
            ts=self.engine.clock.now(), audit_seq=record["seq"], audit_hash=record["hash"]
        )
        try:
            journal.append(anchor)
        except JournalError as exc:
            log.error("audit record %s not anchored in the journal: %s", record["seq"], exc)


_SIGNAL = re.compile(r"\bSIG[A-Z0-9]+\b")


def attach_audit(
    engine: Engine,
    path: Path,
    *,
    settle: float = 0.25,
    wall: Callable[[], datetime] = _wall_now,
) -> AuditTrail:
    """Write every operator action of ``engine`` to the audit file at ``path``.

    An engine already started (a paper or live session is started while it connects) has
    its session start recorded now; otherwise its SessionStarted event records it.
    """
    trail = AuditTrail(AuditLog(path), engine, settle=settle, wall=wall)
    engine.add_sink(trail)
    if engine.state.running:
        trail.session_started()
    return trail
