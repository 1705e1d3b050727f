"""NYSE regular sessions (holidays, half days, DST), XNYS as exchange-calendars answers it.

Answers come from a precomputed table shipped with the package
(``engine.market.calendar_data``), read with numpy alone: exchange-calendars pulls in pandas
(~0.5 s, ~70 MB, and pyarrow too when it is installed), most of the offline demo's memory.
The table covers the whole supported window and a
test checks it equals exchange-calendars' schedule. Should a query ever reach past the table (or
the file be missing from a broken install) exchange-calendars is imported lazily and builds the
schedule with explicit, padded bounds (its default range is about 20 years back and 1 year ahead
and raises ``DateOutOfBounds`` outside it), shared by every ``MarketCalendar`` in the process.

XNYS answers for any date from 1900 to 2199 with today's rules: 09:30-16:00 America/New_York and
13:00 on half days. That is historically loose (before October 1985 the NYSE opened at 10:00)
but fine for the synthetic generator, which only needs a realistic grid; a start date of 1975
(a million 5-minute bars ends around 2026) works. Dates outside that window raise ``ValueError``.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime

import numpy as np

from tapewatch.engine.market.bars import datetime_from_ns, ns_from_datetime
from tapewatch.engine.market.calendar_data import (
    SHIPPED_PATH,
    SessionTable,
    from_exchange_calendars,
    load_table,
)
from tapewatch.engine.market.calendar_data import epoch_day as _epoch_day
from tapewatch.engine.market.calendar_data import from_epoch_day as _from_epoch_day

EARLIEST = date(1900, 1, 1)
LATEST = date(2199, 12, 31)

_NS_PER_SEC = 1_000_000_000
_DAWN = datetime.min.replace(tzinfo=UTC)
_PAD_DAYS = 5 * 366  # each fallback rebuild covers five extra years either side: rebuilds stay rare

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Session:
    """One regular trading session; ``open`` and ``close`` are tz-aware UTC."""

    day: date
    open: datetime
    close: datetime


_lock = threading.Lock()
_shared: SessionTable | None = None


def _check_range(day: date) -> None:
    if not EARLIEST <= day <= LATEST:
        raise ValueError(
            f"date {day.isoformat()} is outside the supported market calendar "
            f"({EARLIEST.isoformat()} to {LATEST.isoformat()}); pick a date inside it"
        )


def _shipped() -> SessionTable | None:
    """The table shipped with the package, or None (logged) if the file is missing or broken."""
    try:
        return load_table(SHIPPED_PATH)
    except (OSError, ValueError, KeyError) as exc:
        log.warning(
            "market calendar table %s unreadable (%s); using exchange-calendars instead "
            "(slower start, ~70 MB more memory): reinstall tapewatch to restore it",
            SHIPPED_PATH,
            exc,
        )
        return None


def _schedule_covering(lo: int, hi: int) -> SessionTable:
    """The process-wide schedule: the shipped table, else exchange-calendars, padded wider."""
    global _shared
    current = _shared
    if current is not None and current.covers(lo, hi):
        return current
    with _lock:
        current = _shared
        if current is not None and current.covers(lo, hi):
            return current
        if current is None:
            current = _shared = _shipped()
            if current is not None and current.covers(lo, hi):
                return current
        if current is not None:
            lo, hi = min(lo, current.lo), max(hi, current.hi)
        lo = max(lo - _PAD_DAYS, _epoch_day(EARLIEST))
        hi = min(hi + _PAD_DAYS, _epoch_day(LATEST))
        _shared = from_exchange_calendars(_from_epoch_day(lo), _from_epoch_day(hi))
        return _shared


def _as_ns(now: datetime) -> int:
    if now.tzinfo is None:
        raise ValueError(f"{now!r} is naive; pass a timezone-aware (UTC) datetime")
    return ns_from_datetime(now)


class MarketCalendar:
    """NYSE sessions. Give ``start``/``end`` to load (or build) that range up front."""

    def __init__(self, start: date | None = None, end: date | None = None) -> None:
        # The last answered stretch [lo, hi) of constant state and its session (None = closed):
        # the risk gate asks is_open() once per bar, and bars mostly fall in the same stretch.
        self._stretch: tuple[datetime, datetime, Session | None] | None = None
        if start is not None or end is not None:
            first = start if start is not None else end
            last = end if end is not None else start
            assert first is not None and last is not None
            if last < first:
                raise ValueError(f"calendar end {last} is before its start {first}")
            _check_range(first)
            _check_range(last)
            _schedule_covering(_epoch_day(first), _epoch_day(last))

    # -- sessions -------------------------------------------------------------------------------

    def _session(self, sched: SessionTable, i: int) -> Session:
        return Session(
            _from_epoch_day(int(sched.days[i])),
            datetime_from_ns(int(sched.open_ns[i])),
            datetime_from_ns(int(sched.close_ns[i])),
        )

    def sessions(self, start: date, end: date) -> list[Session]:
        """Sessions with ``start <= day <= end`` (holidays absent, half days close early)."""
        _check_range(start)
        _check_range(end)
        if end < start:
            return []
        lo, hi = _epoch_day(start), _epoch_day(end)
        sched = _schedule_covering(lo, hi)
        i0 = int(np.searchsorted(sched.days, lo, side="left"))
        i1 = int(np.searchsorted(sched.days, hi, side="right"))
        return [self._session(sched, i) for i in range(i0, i1)]

    def session_count(self, start: date, end: date) -> int:
        """``len(self.sessions(start, end))`` without building the sessions."""
        _check_range(start)
        _check_range(end)
        if end < start:
            return 0
        lo, hi = _epoch_day(start), _epoch_day(end)
        sched = _schedule_covering(lo, hi)
        i0 = int(np.searchsorted(sched.days, lo, side="left"))
        i1 = int(np.searchsorted(sched.days, hi, side="right"))
        return i1 - i0

    def sessions_from(self, start: date, count: int) -> list[Session]:
        """The next ``count`` sessions on or after ``start``."""
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        _check_range(start)
        lo = _epoch_day(start)
        span = count * 7 // 5 + 30  # calendar days that surely hold `count` sessions
        while True:
            hi = min(lo + span, _epoch_day(LATEST))
            sched = _schedule_covering(lo, hi)
            i0 = int(np.searchsorted(sched.days, lo, side="left"))
            i1 = int(np.searchsorted(sched.days, hi, side="right"))
            if i1 - i0 >= count:
                return [self._session(sched, i) for i in range(i0, i0 + count)]
            if hi >= _epoch_day(LATEST):
                raise ValueError(
                    f"fewer than {count} sessions between {start} and {LATEST}; ask for fewer"
                )
            span *= 2

    @staticmethod
    def bar_starts(sessions: list[Session], timeframe_seconds: int) -> np.ndarray:
        """Start-labelled bar starts covering ``[open, close)`` of each session, epoch ns.

        A session whose length is not a multiple of the timeframe ends with a short last bar.
        """
        opens, closes = session_bounds_ns(sessions)
        return grid_ns(opens, closes, timeframe_seconds)

    # -- point-in-time questions ----------------------------------------------------------------

    def _around(self, now: datetime) -> tuple[SessionTable, int, int]:
        t = _as_ns(now)
        day = _epoch_day(now.astimezone(UTC).date())
        _check_range(_from_epoch_day(day))
        sched = _schedule_covering(day - 10, day + 30)
        # Index of the last session that opened at or before `now`.
        i = int(np.searchsorted(sched.open_ns, t, side="right")) - 1
        return sched, i, t

    def session_for(self, now: datetime) -> Session | None:
        """The regular session in progress at ``now`` (open <= now < close), else None."""
        stretch = self._stretch
        if stretch is not None and now.tzinfo is not None and stretch[0] <= now < stretch[1]:
            return stretch[2]
        sched, i, t = self._around(now)
        if i >= 0 and t < int(sched.close_ns[i]):
            session = self._session(sched, i)
            self._stretch = (session.open, session.close, session)
            return session
        lo = datetime_from_ns(int(sched.close_ns[i])) if i >= 0 else _DAWN
        self._stretch = (lo, datetime_from_ns(int(sched.open_ns[_next(sched, i)])), None)
        return None

    def is_open(self, now: datetime) -> bool:
        """True while a regular session is in progress (open <= now < close)."""
        return self.session_for(now) is not None

    def next_open(self, now: datetime) -> datetime:
        """The first session open strictly after ``now``."""
        sched, i, _ = self._around(now)
        return datetime_from_ns(int(sched.open_ns[_next(sched, i)]))

    def next_close(self, now: datetime) -> datetime:
        """The first session close strictly after ``now`` (today's close while open)."""
        sched, i, t = self._around(now)
        if i >= 0 and t < int(sched.close_ns[i]):
            return datetime_from_ns(int(sched.close_ns[i]))
        return datetime_from_ns(int(sched.close_ns[_next(sched, i)]))


def _next(sched: SessionTable, i: int) -> int:
    if i + 1 >= len(sched.days):
        raise ValueError(f"no session after {LATEST.isoformat()} in the market calendar")
    return i + 1


def session_bounds_ns(sessions: list[Session]) -> tuple[np.ndarray, np.ndarray]:
    """Open and close of each session as int64 epoch nanoseconds."""
    opens = np.fromiter((ns_from_datetime(s.open) for s in sessions), np.int64, len(sessions))
    closes = np.fromiter((ns_from_datetime(s.close) for s in sessions), np.int64, len(sessions))
    return opens, closes


def bars_per_session(opens: np.ndarray, closes: np.ndarray, timeframe_seconds: int) -> np.ndarray:
    """How many start-labelled bars fit in each ``[open, close)`` (a short last bar counts)."""
    if timeframe_seconds <= 0:
        raise ValueError(f"timeframe_seconds must be positive, got {timeframe_seconds}")
    step = timeframe_seconds * _NS_PER_SEC
    return np.asarray(-((opens - closes) // step), dtype=np.int64)  # ceil division


def grid_ns(opens: np.ndarray, closes: np.ndarray, timeframe_seconds: int) -> np.ndarray:
    """Vectorised bar-start grid: each ``open + k*timeframe`` below ``close``, per session."""
    counts = bars_per_session(opens, closes, timeframe_seconds)
    total = int(counts.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64)
    first_index = np.cumsum(counts) - counts
    k = np.arange(total, dtype=np.int64) - np.repeat(first_index, counts)
    return np.repeat(opens, counts) + k * (timeframe_seconds * _NS_PER_SEC)


__all__ = [
    "EARLIEST",
    "LATEST",
    "MarketCalendar",
    "Session",
    "bars_per_session",
    "grid_ns",
    "session_bounds_ns",
]
