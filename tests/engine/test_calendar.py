"""NYSE sessions: holidays, half days, DST, the 5-minute grid and point-in-time questions."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest

import tapewatch.engine.market.calendar as calendar_module
from tapewatch.engine.market.bars import BarArrays
from tapewatch.engine.market.calendar import EARLIEST, LATEST, MarketCalendar, Session
from tapewatch.engine.market.calendar_data import (
    FORMAT_VERSION,
    SHIPPED_PATH,
    SessionTable,
    encode_table,
    epoch_day,
    from_exchange_calendars,
    load_table,
    save_table,
)

BUILD_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "build_calendar_data.py"

CAL = MarketCalendar(date(2023, 1, 1), date(2025, 12, 31))


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_holiday_is_absent() -> None:
    days = [s.day for s in CAL.sessions(date(2024, 7, 1), date(2024, 7, 8))]
    assert days == [date(2024, 7, d) for d in (1, 2, 3, 5, 8)]


def test_normal_day_has_78_five_minute_bars() -> None:
    sessions = CAL.sessions(date(2024, 3, 12), date(2024, 3, 12))
    grid = CAL.bar_starts(sessions, 300)
    assert len(grid) == 78
    stamps = BarArrays("X", grid, *([np.ones(78)] * 5)).timestamps()
    assert stamps[0] == utc(2024, 3, 12, 13, 30)
    assert stamps[-1] == utc(2024, 3, 12, 19, 55)  # start-labelled: the last bar ends at close


def test_half_day_closes_at_1300_eastern() -> None:
    (session,) = CAL.sessions(date(2024, 11, 29), date(2024, 11, 29))
    assert session.open == utc(2024, 11, 29, 14, 30)
    assert session.close == utc(2024, 11, 29, 18, 0)
    assert len(CAL.bar_starts([session], 300)) == 42


def test_dst_shifts_the_utc_open() -> None:
    before, after = CAL.sessions(date(2024, 3, 8), date(2024, 3, 11))
    assert (before.day, before.open) == (date(2024, 3, 8), utc(2024, 3, 8, 14, 30))
    assert (after.day, after.open) == (date(2024, 3, 11), utc(2024, 3, 11, 13, 30))
    assert after.close == utc(2024, 3, 11, 20, 0)
    assert after.open.tzinfo is not None


def test_grid_spans_sessions_and_skips_nights() -> None:
    sessions = CAL.sessions(date(2024, 11, 27), date(2024, 12, 2))  # Thanksgiving + half day
    grid = CAL.bar_starts(sessions, 300)
    assert len(grid) == 78 + 42 + 78
    assert np.all(np.diff(grid) > 0)
    assert np.all(grid % (300 * 10**9) == 0)


def test_uneven_timeframe_keeps_a_short_last_bar() -> None:
    sessions = CAL.sessions(date(2024, 3, 12), date(2024, 3, 12))
    assert len(CAL.bar_starts(sessions, 3600)) == 7  # 09:30 ... 15:30 (that one is 30 minutes)


def test_sessions_from_counts_forward_over_holidays() -> None:
    sessions = CAL.sessions_from(date(2024, 7, 4), 3)  # the holiday itself is skipped
    assert [s.day for s in sessions] == [date(2024, 7, 5), date(2024, 7, 8), date(2024, 7, 9)]
    assert CAL.sessions_from(date(2024, 7, 5), 1)[0].day == date(2024, 7, 5)
    assert CAL.sessions_from(date(2024, 7, 5), 0) == []


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (date(1975, 1, 1), date(2026, 12, 31)),
        (date(2024, 7, 4), date(2024, 7, 4)),  # a holiday alone
        (date(2024, 7, 5), date(2024, 7, 9)),
        (date(2024, 3, 9), date(2024, 3, 10)),  # a weekend
        (date(2024, 7, 9), date(2024, 7, 5)),  # end before start
    ],
)
def test_session_count_is_the_number_of_sessions(start: date, end: date) -> None:
    assert CAL.session_count(start, end) == len(CAL.sessions(start, end))


def test_weekend_is_closed_and_points_to_monday() -> None:
    saturday = utc(2024, 3, 9, 16, 0)
    assert not CAL.is_open(saturday)
    assert CAL.session_for(saturday) is None
    assert CAL.next_open(saturday) == utc(2024, 3, 11, 13, 30)
    assert CAL.next_close(saturday) == utc(2024, 3, 11, 20, 0)


def test_friday_session_edges() -> None:
    just_open = utc(2024, 3, 8, 14, 30)
    last_minute = utc(2024, 3, 8, 20, 59)
    at_close = utc(2024, 3, 8, 21, 0)
    assert CAL.is_open(just_open) and CAL.is_open(last_minute)
    assert not CAL.is_open(at_close)  # [open, close)
    assert not CAL.is_open(just_open - timedelta(microseconds=1))
    assert CAL.next_close(last_minute) == at_close
    assert CAL.next_open(just_open) == utc(2024, 3, 11, 13, 30)  # strictly after
    session = CAL.session_for(last_minute)
    assert session == Session(date(2024, 3, 8), just_open, at_close)


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        CAL.is_open(datetime(2024, 3, 8, 15, 0))


def test_far_history_and_future_extend_the_calendar() -> None:
    """A million 5-minute bars from 1975 reach ~2026; both ends must answer."""
    cal = MarketCalendar()
    old = cal.sessions(date(1975, 1, 2), date(1975, 1, 3))
    assert [s.day for s in old] == [date(1975, 1, 2), date(1975, 1, 3)]
    assert cal.sessions(date(2075, 7, 4), date(2075, 7, 4)) == []  # still a holiday
    assert len(cal.sessions_from(date(1975, 1, 2), 12_900)) == 12_900


def test_out_of_range_dates_get_a_clear_error() -> None:
    with pytest.raises(ValueError, match="outside the supported market calendar"):
        CAL.sessions(date(1850, 1, 1), date(1850, 2, 1))


def test_decades_of_grid() -> None:
    """Speed is bench/backtest_speed.py's job; here: the grid over decades is whole."""
    cal = MarketCalendar(date(1990, 1, 1), date(2025, 12, 31))
    sessions = cal.sessions(date(1990, 1, 1), date(2025, 12, 31))
    grid = cal.bar_starts(sessions, 300)
    assert len(sessions) > 9000 and len(grid) > 700_000
    assert bool((grid[1:] > grid[:-1]).all())


def test_importing_the_calendar_does_not_import_pandas() -> None:
    code = (
        "import sys, tapewatch.engine.market.calendar\n"
        "sys.exit(1 if 'pandas' in sys.modules else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_cached_answers_match_the_session_table_minute_by_minute() -> None:
    """is_open/session_for remember the last stretch; walking back and forth must not fool it."""
    cal = MarketCalendar()
    sessions = CAL.sessions(date(2024, 11, 26), date(2024, 12, 3))  # holiday + half day
    start = utc(2024, 11, 26)
    moments = [start + timedelta(minutes=m) for m in range(0, 8 * 24 * 60, 7)]
    moments += moments[::-3]  # and backwards in time
    for now in moments:
        expected = next((s for s in sessions if s.open <= now < s.close), None)
        assert cal.session_for(now) == expected
        assert cal.is_open(now) is (expected is not None)


# -- the shipped session table --------------------------------------------------------------------


def _slice(table: SessionTable, first: date, last: date) -> SessionTable:
    """The part of ``table`` covering ``first..last``, as a narrower table."""
    lo, hi = epoch_day(first), epoch_day(last)
    i0 = int(np.searchsorted(table.days, lo, side="left"))
    i1 = int(np.searchsorted(table.days, hi, side="right"))
    return SessionTable(
        lo, hi, table.days[i0:i1], table.open_ns[i0:i1], table.close_ns[i0:i1], table.source
    )


def test_shipped_table_covers_the_whole_supported_window() -> None:
    table = load_table()
    assert (table.lo, table.hi) == (epoch_day(EARLIEST), epoch_day(LATEST))
    assert len(table) > 75_000
    assert table.source == f"exchange-calendars {version('exchange-calendars')} XNYS"


def test_shipped_table_equals_exchange_calendars_over_the_whole_range() -> None:
    """If this fails after an exchange-calendars upgrade: python scripts/build_calendar_data.py"""
    shipped = load_table()
    built = from_exchange_calendars(EARLIEST, LATEST)
    assert (shipped.lo, shipped.hi, shipped.source) == (built.lo, built.hi, built.source)
    np.testing.assert_array_equal(shipped.days, built.days)
    np.testing.assert_array_equal(shipped.open_ns, built.open_ns)
    np.testing.assert_array_equal(shipped.close_ns, built.close_ns)


def test_build_script_reproduces_the_shipped_file_byte_for_byte(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("build_calendar_data", BUILD_SCRIPT)
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path / "sessions.npz"
    assert script.main(["--out", str(out)]) == 0
    assert out.read_bytes() == SHIPPED_PATH.read_bytes()
    assert script.main(["--check", "--out", str(out)]) == 0
    out.write_bytes(out.read_bytes()[:-1])
    assert script.main(["--check", "--out", str(out)]) == 1


def test_table_file_round_trips_holidays_and_half_days(tmp_path: Path) -> None:
    table = _slice(load_table(), date(2024, 11, 25), date(2024, 12, 6))
    path = tmp_path / "t.npz"
    assert save_table(table, path) < 2_000
    back = load_table(path)
    assert (back.lo, back.hi, back.source) == (table.lo, table.hi, table.source)
    for a, b in ((back.days, table.days), (back.open_ns, table.open_ns)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(back.close_ns, table.close_ns)
    half_day = int(np.searchsorted(back.days, epoch_day(date(2024, 11, 29))))
    assert back.close_ns[half_day] - back.open_ns[half_day] == 210 * 60 * 10**9
    assert epoch_day(date(2024, 11, 28)) not in back.days.tolist()  # Thanksgiving


def test_encoding_refuses_what_the_format_cannot_hold_exactly() -> None:
    table = _slice(load_table(), date(2024, 3, 11), date(2024, 3, 15))
    off_minute = table.open_ns.copy()
    off_minute[2] += 1_000_000_000  # 09:30:01
    with pytest.raises(ValueError, match="open values do not fit"):
        encode_table(SessionTable(table.lo, table.hi, table.days, off_minute, table.close_ns))


def test_loading_refuses_another_format_version(tmp_path: Path) -> None:
    path = tmp_path / "future.npz"
    np.savez_compressed(path, version=np.int64(FORMAT_VERSION + 1))
    with pytest.raises(ValueError, match="format"):
        load_table(path)


def test_missing_table_falls_back_to_exchange_calendars(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(calendar_module, "_shared", None)
    monkeypatch.setattr(calendar_module, "SHIPPED_PATH", Path("/nonexistent/xnys_sessions.npz"))
    days = [s.day for s in MarketCalendar().sessions(date(2024, 7, 1), date(2024, 7, 8))]
    assert days == [date(2024, 7, d) for d in (1, 2, 3, 5, 8)]
    assert "market calendar table" in caplog.text and "exchange-calendars instead" in caplog.text
    built = calendar_module._shared
    assert built is not None and not built.covers(epoch_day(EARLIEST), epoch_day(LATEST))


def test_queries_past_a_narrower_table_fall_back_to_exchange_calendars(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    narrow = _slice(load_table(), date(2024, 1, 1), date(2024, 12, 31))
    monkeypatch.setattr(calendar_module, "_shared", None)
    monkeypatch.setattr(calendar_module, "_shipped", lambda: narrow)
    cal = MarketCalendar()
    assert cal.is_open(utc(2024, 3, 8, 15, 0))
    assert calendar_module._shared is narrow  # answered from the table
    # Late December needs the first days of 2025 (beyond the table) for "next open".
    assert cal.next_open(utc(2024, 12, 31, 22, 0)) == utc(2025, 1, 2, 14, 30)
    widened = calendar_module._shared
    assert widened is not narrow and widened.covers(narrow.lo, epoch_day(date(2025, 1, 31)))
    (half_day,) = cal.sessions(date(2025, 7, 3), date(2025, 7, 4))  # July 4th: a holiday
    assert half_day.close == utc(2025, 7, 3, 17, 0)
