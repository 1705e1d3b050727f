"""The XNYS session table: shipped precomputed (numpy only) or built by exchange-calendars.

Why a shipped table: exchange-calendars imports pandas (~70 MB, ~0.5 s; pandas 3 also loads
pyarrow when it is installed), which was most of the offline demo's memory, yet the calendar only
needs each session's day, open and close. ``scripts/build_calendar_data.py`` asks
exchange-calendars (pinned in pyproject, so its answers are fixed) once for the whole supported
range and writes ``engine/market/data/xnys_sessions.npz`` (~5 KB); a test checks that it still
equals exchange-calendars' schedule. exchange-calendars remains the fallback, imported lazily.

File format (``np.savez_compressed``, no pickles), one row per session in day order:

- ``version``: the format number (``FORMAT_VERSION``);
- ``covered``: int64 ``[first, last]`` epoch days the table answers for, both inclusive;
- ``gap``: uint16 days since the previous session (the first row: since ``first``);
- ``open_min`` / ``close_min``: uint16 minutes after 00:00 UTC of the session's day;
- ``source``: what produced it, e.g. ``exchange-calendars 4.13.2 XNYS``.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from datetime import date
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

import numpy as np

FORMAT_VERSION = 1
SHIPPED_PATH: Traversable = files("tapewatch.engine.market") / "data" / "xnys_sessions.npz"

_NS_PER_MIN = 60 * 1_000_000_000
_NS_PER_DAY = 1440 * _NS_PER_MIN
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_U16_MAX = 65_535


def epoch_day(day: date) -> int:
    """Days since 1970-01-01 (negative before it)."""
    return day.toordinal() - _EPOCH_ORDINAL


def from_epoch_day(n: int) -> date:
    return date.fromordinal(n + _EPOCH_ORDINAL)


@dataclass(frozen=True)
class SessionTable:
    """Sessions as parallel int64 arrays: epoch days and open/close epoch nanoseconds (UTC)."""

    lo: int  # first covered epoch day (inclusive): no session before it is known
    hi: int  # last covered epoch day (inclusive)
    days: np.ndarray
    open_ns: np.ndarray
    close_ns: np.ndarray
    source: str = ""

    def covers(self, lo: int, hi: int) -> bool:
        return self.lo <= lo and hi <= self.hi

    def __len__(self) -> int:
        return len(self.days)


def _table(
    lo: int, hi: int, days: np.ndarray, opens: np.ndarray, closes: np.ndarray, source: str
) -> SessionTable:
    """Checked construction: a broken table would answer wrongly rather than fail."""
    days, opens, closes = (np.ascontiguousarray(a, dtype=np.int64) for a in (days, opens, closes))
    if not (days.ndim == 1 and days.shape == opens.shape == closes.shape):
        raise ValueError("session table columns differ in length")
    if len(days) and not (lo <= int(days[0]) and int(days[-1]) <= hi):
        raise ValueError("session table has sessions outside its covered range")
    if np.any(np.diff(days) <= 0) or np.any(opens >= closes) or np.any(np.diff(opens) <= 0):
        raise ValueError("session table is not a strictly ordered list of sessions")
    return SessionTable(lo, hi, days, opens, closes, source)


def load_table(path: Traversable | Path = SHIPPED_PATH) -> SessionTable:
    """Read a table written by ``save_table``; OSError or ValueError if missing or malformed."""
    with path.open("rb") as fh, np.load(fh, allow_pickle=False) as npz:
        version = int(npz["version"])
        if version != FORMAT_VERSION:
            raise ValueError(f"{path}: session table format {version}, expected {FORMAT_VERSION}")
        lo, hi = (int(v) for v in npz["covered"])
        gap = npz["gap"].astype(np.int64)
        open_min = npz["open_min"].astype(np.int64)
        close_min = npz["close_min"].astype(np.int64)
        source = str(npz["source"])
    days = lo + np.cumsum(gap)
    midnight = days * _NS_PER_DAY
    opens = midnight + open_min * _NS_PER_MIN
    closes = midnight + close_min * _NS_PER_MIN
    return _table(lo, hi, days, opens, closes, source)


def encode_table(table: SessionTable) -> bytes:
    """The ``.npz`` bytes for ``table``; ValueError if it does not fit the format exactly."""
    days = table.days
    gap = np.diff(days, prepend=table.lo)
    open_off = table.open_ns - days * _NS_PER_DAY
    close_off = table.close_ns - days * _NS_PER_DAY
    for name, values, unit in (
        ("gap", gap, 1),
        ("open", open_off, _NS_PER_MIN),
        ("close", close_off, _NS_PER_MIN),
    ):
        if len(values) and (
            np.any(values % unit) or values.min() < 0 or values.max() // unit > _U16_MAX
        ):
            raise ValueError(f"session {name} values do not fit the table format")
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        version=np.int64(FORMAT_VERSION),
        covered=np.array([table.lo, table.hi], dtype=np.int64),
        gap=gap.astype(np.uint16),
        open_min=(open_off // _NS_PER_MIN).astype(np.uint16),
        close_min=(close_off // _NS_PER_MIN).astype(np.uint16),
        source=np.array(table.source),
    )
    return buffer.getvalue()


def save_table(table: SessionTable, path: Path) -> int:
    """Write ``table`` to ``path``; returns the number of bytes written."""
    data = encode_table(table)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return len(data)


def from_exchange_calendars(first: date, last: date) -> SessionTable:
    """XNYS sessions from ``first`` to ``last`` (both inclusive); imports pandas (slow, heavy)."""
    import exchange_calendars as xcals
    import pandas as pd

    with warnings.catch_warnings():
        # exchange-calendars 4.13 on pandas 3 triggers pandas' own deprecation warnings.
        warnings.simplefilter("ignore", category=pd.errors.Pandas4Warning)
        cal = xcals.get_calendar("XNYS", start=first.isoformat(), end=last.isoformat())
        schedule = cal.schedule
        days = pd.DatetimeIndex(schedule.index).as_unit("ns").asi8 // _NS_PER_DAY
        opens = pd.DatetimeIndex(schedule["open"]).as_unit("ns").asi8
        closes = pd.DatetimeIndex(schedule["close"]).as_unit("ns").asi8
    source = f"exchange-calendars {xcals.__version__} XNYS"
    return _table(epoch_day(first), epoch_day(last), days, opens, closes, source)


__all__ = [
    "FORMAT_VERSION",
    "SHIPPED_PATH",
    "SessionTable",
    "encode_table",
    "epoch_day",
    "from_epoch_day",
    "from_exchange_calendars",
    "load_table",
    "save_table",
]
