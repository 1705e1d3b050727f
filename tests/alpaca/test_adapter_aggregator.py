"""The minute-bar aggregator: start-labelled periods on the session grid, closed as soon as the
period is complete, corrections, back-fill of missing minutes, half days and session edges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tapewatch.engine.adapters.alpaca.aggregator import MINUTE, MinuteAggregator
from tapewatch.engine.market.calendar import MarketCalendar
from tapewatch.engine.model.types import Bar, Timeframe

OPEN = datetime(2024, 3, 5, 14, 30, tzinfo=UTC)  # Tuesday 09:30 New York
FIVE = Timeframe(5, "Min")


@pytest.fixture(scope="module")
def calendar() -> MarketCalendar:
    return MarketCalendar()


def minute(ts: datetime, close: float, *, volume: float = 100.0, symbol: str = "SPY") -> Bar:
    return Bar(symbol, ts, close - 0.5, close + 1.0, close - 1.0, close, volume)


def agg(calendar: MarketCalendar | None, tf: Timeframe = FIVE) -> MinuteAggregator:
    return MinuteAggregator("SPY", tf, sessions=calendar, grace=timedelta(seconds=10))


def test_period_is_start_labelled_and_closes_with_its_last_minute(
    calendar: MarketCalendar,
) -> None:
    a = agg(calendar)
    for i in range(4):
        assert a.add(minute(OPEN + i * MINUTE, 100.0 + i)).ready == ()
    outcome = a.add(minute(OPEN + 4 * MINUTE, 104.0, volume=50.0))
    assert outcome.ready == (OPEN,)  # 09:34's bar completes [09:30, 09:35) at once
    bar = a.close(OPEN)
    assert bar == Bar("SPY", OPEN, 99.5, 105.0, 99.0, 104.0, 450.0)
    assert a.close(OPEN) is None  # closed once only


def test_a_minute_of_the_next_period_closes_one_missing_its_last_minute(
    calendar: MarketCalendar,
) -> None:
    a = agg(calendar)
    for i in range(3):  # 09:33 and 09:34 never came (no trades on IEX)
        a.add(minute(OPEN + i * MINUTE, 100.0))
    assert a.missing(OPEN) == [OPEN + 3 * MINUTE, OPEN + 4 * MINUTE]
    outcome = a.add(minute(OPEN + 6 * MINUTE, 101.0))
    assert outcome.ready == (OPEN,)
    assert a.open_periods == [OPEN, OPEN + 5 * MINUTE]


def test_timer_closes_at_period_end_plus_grace(calendar: MarketCalendar) -> None:
    a = agg(calendar)
    a.add(minute(OPEN, 100.0))
    end = OPEN + 5 * MINUTE
    assert a.due() == end + timedelta(seconds=10)
    assert a.expired(end + timedelta(seconds=9)) == []
    assert a.expired(end + timedelta(seconds=10)) == [OPEN]


def test_missing_minutes_are_back_filled_once_before_closing(calendar: MarketCalendar) -> None:
    a = agg(calendar)
    a.add(minute(OPEN, 100.0))
    a.add(minute(OPEN + 4 * MINUTE, 104.0))
    missing = a.missing(OPEN)
    assert missing == [OPEN + MINUTE, OPEN + 2 * MINUTE, OPEN + 3 * MINUTE]
    fetched = [minute(OPEN + MINUTE, 110.0), minute(OPEN + 3 * MINUTE, 90.0)]  # 09:32: no trades
    a.merge(OPEN, [*fetched, minute(OPEN + 7 * MINUTE, 1.0)])  # outside the period: ignored
    assert a.missing(OPEN) == []  # REST was asked: never again for this period
    bar = a.close(OPEN)
    assert bar is not None
    assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == (99.5, 111.0, 89.0, 104.0, 400.0)


def test_corrections_apply_while_building_and_are_late_once_closed(
    calendar: MarketCalendar,
) -> None:
    a = agg(calendar)
    for i in range(5):
        a.add(minute(OPEN + i * MINUTE, 100.0))
    assert a.correct(minute(OPEN + 2 * MINUTE, 100.0, volume=250.0)).late is None
    closed = a.close(OPEN)
    assert closed is not None and closed.volume == 650.0
    late = a.correct(minute(OPEN + 4 * MINUTE, 100.0, volume=999.0))
    assert late.late == closed  # reported, not applied: the decision on it is made
    assert a.add(minute(OPEN + 3 * MINUTE, 1.0)).late == closed  # a stray late minute too
    again = a.add(minute(OPEN + 5 * MINUTE, 100.0))
    assert again.ready == () and again.late is None


def test_minutes_outside_the_regular_session_are_ignored(calendar: MarketCalendar) -> None:
    a = agg(calendar)
    assert a.add(minute(OPEN - MINUTE, 100.0)).ignored  # 09:29 pre-market
    assert a.add(minute(datetime(2024, 3, 5, 21, 0, tzinfo=UTC), 100.0)).ignored  # 16:00
    assert a.add(minute(OPEN, 1.0, symbol="AAPL")).ignored
    assert a.open_periods == []


def test_half_day_cuts_the_last_period_at_the_early_close(calendar: MarketCalendar) -> None:
    # 2024-11-29 (day after Thanksgiving) closes at 13:00 New York = 18:00 UTC.
    a = agg(calendar, Timeframe(1, "Hour"))
    last = datetime(2024, 11, 29, 17, 30, tzinfo=UTC)  # 12:30 New York
    period = a.period(last + 10 * MINUTE)
    assert period is not None
    assert (period.start, period.end) == (last, datetime(2024, 11, 29, 18, 0, tzinfo=UTC))
    assert a.add(minute(last + 29 * MINUTE, 100.0)).ready == (last,)
    assert a.add(minute(datetime(2024, 11, 29, 18, 0, tzinfo=UTC), 1.0)).ignored


def test_hour_bars_follow_the_session_grid(calendar: MarketCalendar) -> None:
    a = agg(calendar, Timeframe(1, "Hour"))
    p = a.period(OPEN + 75 * MINUTE)  # 10:45 New York
    assert p is not None and (p.start, p.end) == (OPEN + 60 * MINUTE, OPEN + 120 * MINUTE)
    close = a.period(datetime(2024, 3, 5, 20, 59, tzinfo=UTC))  # 15:59: the short last bar
    assert close is not None and close.start == datetime(2024, 3, 5, 20, 30, tzinfo=UTC)
    assert close.end == datetime(2024, 3, 5, 21, 0, tzinfo=UTC)


def test_one_minute_bars_pass_straight_through(calendar: MarketCalendar) -> None:
    a = agg(calendar, Timeframe(1, "Min"))
    bar = minute(OPEN, 100.0)
    assert a.add(bar).ready == (OPEN,)
    assert a.close(OPEN) == bar


def test_gap_before_reports_whole_lost_periods_but_not_the_night(
    calendar: MarketCalendar,
) -> None:
    a = agg(calendar)
    a.add(minute(OPEN + MINUTE, 100.0))
    assert a.gap_before(OPEN + 3 * MINUTE) is None  # same period: the close back-fills it
    assert a.gap_before(OPEN + 6 * MINUTE) is None  # the next period: nothing whole is lost
    assert a.gap_before(OPEN + 17 * MINUTE) == (OPEN + 5 * MINUTE, OPEN + 15 * MINUTE)
    b = agg(calendar)
    for start in b.add(minute(datetime(2024, 3, 4, 20, 59, tzinfo=UTC), 100.0)).ready:  # Mon 15:59
        b.close(start)
    assert b.gap_before(OPEN) is None  # overnight: nothing traded in between


def test_history_closes_finished_periods_and_keeps_the_running_one(
    calendar: MarketCalendar,
) -> None:
    a = agg(calendar)
    minutes = [minute(OPEN + i * MINUTE, 100.0 + i) for i in range(12)]  # 09:30..09:41
    now = OPEN + 12 * MINUTE + timedelta(seconds=20)
    bars = a.history(minutes, now)
    assert [b.ts for b in bars] == [OPEN, OPEN + 5 * MINUTE]
    assert a.open_periods == [OPEN + 10 * MINUTE]
    assert a.missing(OPEN + 10 * MINUTE) == [
        OPEN + 12 * MINUTE,
        OPEN + 13 * MINUTE,
        OPEN + 14 * MINUTE,
    ]


def test_without_a_calendar_the_grid_is_utc_and_around_the_clock() -> None:
    a = agg(None)
    night = datetime(2024, 3, 9, 3, 7, tzinfo=UTC)  # a Saturday night
    p = a.period(night)
    assert p is not None and p.start == datetime(2024, 3, 9, 3, 5, tzinfo=UTC)
    assert not a.add(minute(night, 1.0)).ignored
