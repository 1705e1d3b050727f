"""When the sandbox's market trades: regular sessions as sorted arrays of epoch minutes.

Both calendars (XNYS from exchange-calendars, or a plain weekday 09:30-16:00 ET rule) become
the same two arrays, so every question (open now? next open? which minutes trade in a range?)
is a binary search. Symbols that trade around the clock use ``AlwaysOpen`` instead.
"""

from __future__ import annotations

import warnings
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Protocol
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

NEW_YORK = ZoneInfo("America/New_York")
FIRST_DAY = date(2005, 1, 1)
LAST_DAY = date(2040, 12, 31)

Minutes = npt.NDArray[np.int64]


def to_minute(when: datetime) -> int:
    """Epoch minute containing ``when`` (floored)."""
    return int(when.timestamp() // 60)


def from_minute(minute: int) -> datetime:
    return datetime.fromtimestamp(minute * 60, UTC)


def et_midnight(minute: int) -> int:
    """Epoch minute of midnight America/New_York on the ET date of ``minute``."""
    day = from_minute(minute).astimezone(NEW_YORK).date()
    return to_minute(datetime.combine(day, time(0), NEW_YORK))


def et_midnights(first: int, last: int) -> Minutes:
    """ET midnights from the day containing ``first`` through the day after ``last``."""
    day = from_minute(first).astimezone(NEW_YORK).date()
    end = from_minute(last).astimezone(NEW_YORK).date() + timedelta(days=1)
    out: list[int] = []
    while day <= end:
        out.append(to_minute(datetime.combine(day, time(0), NEW_YORK)))
        day += timedelta(days=1)
    return np.asarray(out, dtype=np.int64)


class TradingHours(Protocol):
    def is_open(self, minute: int) -> bool: ...

    def minutes(self, first: int, stop: int) -> Minutes:
        """Trading minutes in ``[first, stop)``."""
        ...

    def day_end(self, minute: int) -> int:
        """Minute at which the trading day containing ``minute`` ends."""
        ...

    def last_trading_minute(self, before: int) -> int | None:
        """The latest trading minute strictly before ``before``."""
        ...


class Sessions:
    """Regular sessions: ``opens[i]`` to ``closes[i]`` (exclusive), in epoch minutes."""

    def __init__(self, opens: Minutes, closes: Minutes) -> None:
        self.opens = opens
        self.closes = closes

    def _index(self, minute: int) -> int:
        """Index of the last session opening at or before ``minute`` (-1 if none)."""
        return int(np.searchsorted(self.opens, minute, side="right")) - 1

    def is_open(self, minute: int) -> bool:
        i = self._index(minute)
        return i >= 0 and minute < int(self.closes[i])

    def next_open(self, minute: int) -> int | None:
        """First session open strictly after ``minute``."""
        i = int(np.searchsorted(self.opens, minute, side="right"))
        return int(self.opens[i]) if i < len(self.opens) else None

    def next_close(self, minute: int) -> int | None:
        """First session close strictly after ``minute``."""
        i = int(np.searchsorted(self.closes, minute, side="right"))
        return int(self.closes[i]) if i < len(self.closes) else None

    def previous_close(self, minute: int) -> int | None:
        """Close of the last session that ended before the one at or before ``minute`` began."""
        i = self._index(minute)
        if i >= 0 and minute < int(self.closes[i]):
            i -= 1  # inside a session: the previous one
        return int(self.closes[i]) if i >= 0 else None

    def last_trading_minute(self, before: int) -> int | None:
        """The latest trading minute strictly before ``before``."""
        i = self._index(before - 1)
        if i < 0:
            return None
        return min(before - 1, int(self.closes[i]) - 1)

    def minutes(self, first: int, stop: int) -> Minutes:
        lo = int(np.searchsorted(self.closes, first, side="right"))
        hi = int(np.searchsorted(self.opens, stop, side="left"))
        parts = [
            np.arange(
                max(int(self.opens[i]), first), min(int(self.closes[i]), stop), dtype=np.int64
            )
            for i in range(lo, hi)
        ]
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)

    def day_end(self, minute: int) -> int:
        i = self._index(minute)
        return int(self.closes[i]) if i >= 0 else minute + 1


class AlwaysOpen:
    """A symbol that trades every minute (Alpaca's FAKEPACA test symbol)."""

    def is_open(self, minute: int) -> bool:
        return True

    def minutes(self, first: int, stop: int) -> Minutes:
        return np.arange(first, max(first, stop), dtype=np.int64)

    def last_trading_minute(self, before: int) -> int | None:
        return before - 1

    def day_end(self, minute: int) -> int:
        return int(et_midnights(minute, minute)[1])


def _xnys() -> Sessions:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # exchange-calendars vs pandas 3 deprecation noise
        import exchange_calendars as xc

        cal = xc.get_calendar("XNYS", start=FIRST_DAY.isoformat(), end=LAST_DAY.isoformat())
        schedule = cal.schedule
        opens = schedule["open"].dt.tz_convert(None).to_numpy().astype("datetime64[m]")
        closes = schedule["close"].dt.tz_convert(None).to_numpy().astype("datetime64[m]")
    return Sessions(opens.astype(np.int64), closes.astype(np.int64))


def _weekdays() -> Sessions:
    opens: list[int] = []
    closes: list[int] = []
    day = FIRST_DAY
    while day <= LAST_DAY:
        if day.weekday() < 5:
            opens.append(to_minute(datetime.combine(day, time(9, 30), NEW_YORK)))
            closes.append(to_minute(datetime.combine(day, time(16, 0), NEW_YORK)))
        day += timedelta(days=1)
    return Sessions(np.asarray(opens, dtype=np.int64), np.asarray(closes, dtype=np.int64))


@cache
def load_sessions(kind: str) -> Sessions:
    """The session table for ``kind`` ("XNYS" or "weekday"), built once per process."""
    if kind == "XNYS":
        return _xnys()
    if kind == "weekday":
        return _weekdays()
    raise ValueError(f"unknown calendar {kind!r}")
