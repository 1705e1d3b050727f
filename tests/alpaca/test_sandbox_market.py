"""The sandbox's pure parts: sessions, the price path, bars, rate limits, fault parsing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from tapewatch.sandbox.bars import TimeFrame, query_bars
from tapewatch.sandbox.faults import Faults
from tapewatch.sandbox.market import Market
from tapewatch.sandbox.pricepath import PricePath
from tapewatch.sandbox.ratelimit import RateLimiter
from tapewatch.sandbox.sessions import NEW_YORK, load_sessions, to_minute
from tapewatch.sandbox.wire import ApiError
from tests.alpaca.conftest import START, FakeTime, sandbox_config


def _minute(year: int, month: int, day: int, hour: int, minute: int = 0) -> int:
    return to_minute(datetime(year, month, day, hour, minute, tzinfo=NEW_YORK))


def test_xnys_knows_holidays_and_half_days_the_weekday_rule_does_not() -> None:
    xnys, weekdays = load_sessions("XNYS"), load_sessions("weekday")
    thanksgiving = _minute(2024, 11, 28, 10)
    assert weekdays.is_open(thanksgiving) and not xnys.is_open(thanksgiving)
    black_friday = _minute(2024, 11, 29, 13, 30)  # the session closes at 13:00
    assert weekdays.is_open(black_friday) and not xnys.is_open(black_friday)
    assert xnys.next_open(thanksgiving) == _minute(2024, 11, 29, 9, 30)
    assert xnys.minutes(_minute(2024, 11, 29, 0), _minute(2024, 11, 30, 0)).size == 210


def test_sessions_follow_daylight_saving_time() -> None:
    xnys = load_sessions("XNYS")
    winter = xnys.next_open(_minute(2024, 3, 8, 0))
    summer = xnys.next_open(_minute(2024, 3, 11, 0))
    assert winter is not None and summer is not None
    assert datetime.fromtimestamp(winter * 60, UTC).hour == 14  # 09:30 EST
    assert datetime.fromtimestamp(summer * 60, UTC).hour == 13  # 09:30 EDT


def test_price_path_is_a_pure_function_of_seed_symbol_and_minute() -> None:
    minutes = np.arange(28_000_000, 28_000_500, dtype=np.int64)
    a, b = PricePath(7, "AAPL"), PricePath(7, "AAPL")
    assert np.array_equal(a.prices(minutes), b.prices(minutes))
    assert np.array_equal(a.prices(minutes[250:]), a.prices(minutes)[250:])  # no history needed
    assert not np.array_equal(a.prices(minutes), PricePath(8, "AAPL").prices(minutes))
    assert not np.array_equal(a.prices(minutes), PricePath(7, "SPY").prices(minutes))
    bars = a.bars(minutes)
    assert np.all(bars.l <= np.minimum(bars.o, bars.c))
    assert np.all(bars.h >= np.maximum(bars.o, bars.c))
    assert np.all(bars.v > 0) and np.all(bars.n >= 1)
    assert np.allclose(bars.c[:-1], bars.o[1:])  # each minute opens where the last closed


def test_price_path_stays_near_its_base_over_years() -> None:
    minutes = np.arange(27_000_000, 29_000_000, 97, dtype=np.int64)  # ~4 years, sampled
    prices = PricePath(7, "SPY").prices(minutes)
    assert prices.min() > 0.6 * 450 and prices.max() < 1.4 * 450


def test_set_price_rescales_from_now_and_keeps_history() -> None:
    market = Market(sandbox_config(bar_interval=0), to_minute(START))
    before = market.minute_bars("AAPL", market.now_minute - 30, market.now_minute)
    market.set_price("AAPL", 50.0)
    assert market.price("AAPL") == 50.0
    after = market.minute_bars("AAPL", market.now_minute - 30, market.now_minute)
    assert np.array_equal(before.c, after.c)
    market.step()
    assert market.minute_bars("AAPL", market.now_minute - 1, market.now_minute).o[0] == 50.0


def test_fast_forward_skips_closed_hours_and_can_be_switched_off() -> None:
    saturday = to_minute(datetime(2024, 3, 2, 15, 0, tzinfo=UTC))
    jumping = Market(sandbox_config(), saturday)
    assert jumping.now_minute == _minute(2024, 3, 4, 9, 30) and jumping.is_open()
    staying = Market(sandbox_config(fast_forward_closed=False), saturday)
    assert staying.now_minute == saturday and not staying.is_open()


def test_hour_bars_cover_only_session_minutes() -> None:
    market = Market(sandbox_config(), to_minute(START) + 24 * 60)
    first = _minute(2024, 3, 5, 0)
    hours = query_bars(market, "SPY", TimeFrame.parse("1Hour"), first, first + 24 * 60)
    stamps = [datetime.fromtimestamp(t * 60, UTC).astimezone(NEW_YORK).hour for t in hours.t]
    assert stamps == [9, 10, 11, 12, 13, 14, 15]  # the 09:00 bar holds 09:30-09:59
    minutes = market.minute_bars("SPY", _minute(2024, 3, 5, 9, 30), _minute(2024, 3, 5, 10))
    assert hours.v[0] == minutes.v.sum()


@pytest.mark.parametrize("text", ["5Min", "1Hour", "1Day", "15T", "2H"])
def test_timeframes_alpaca_spells(text: str) -> None:
    assert TimeFrame.parse(text).label[0].isdigit()


@pytest.mark.parametrize("text", ["0Min", "60Min", "24Hour", "2Day", "1Week", "5min", ""])
def test_timeframes_outside_alpaca_limits_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        TimeFrame.parse(text)


def test_rate_limiter_rolls_over_a_minute_per_key() -> None:
    clock = FakeTime(1000.0)
    limiter = RateLimiter(2, clock)
    assert limiter.hit("a").remaining == 1
    clock.advance(30)
    assert limiter.hit("a").remaining == 0
    refused = limiter.hit("a")
    assert not refused.allowed and refused.reset == 1060
    assert limiter.hit("b").allowed  # keys have separate budgets
    clock.advance(30)  # the first hit (t=1000) leaves the window at 1060
    decision = limiter.hit("a")
    assert decision.allowed and decision.remaining == 0 and decision.reset == 1090
    assert limiter.peek("a").remaining == 0


def test_fault_specs_apply_all_or_nothing() -> None:
    faults = Faults()
    faults.apply({"latency_ms": 20, "rest_error": {"status": 503, "count": 2}})
    with pytest.raises(ApiError):
        faults.apply({"latency_ms": 99, "data_stream": "sideways"})
    with pytest.raises(ApiError):
        faults.apply({"rest_error": {"status": 418}})
    assert faults.latency_ms == 20 and faults.data_stream == "normal"
    assert faults.take_rest_error("GET", "/v2/account") is not None
    assert faults.take_rest_error("GET", "/v2/account") is not None
    assert faults.take_rest_error("GET", "/v2/account") is None
    assert faults.apply({"advance_minutes": 3}) == {"advance_minutes": 3}


def test_bad_config_is_refused() -> None:
    with pytest.raises(ValueError, match="loopback"):
        sandbox_config(host="0.0.0.0")
    with pytest.raises(ValueError, match="timezone"):
        sandbox_config(start=datetime(2024, 3, 5, 15, 0))
    with pytest.raises(ValueError, match="calendar"):
        sandbox_config(calendar="LSE")


def test_market_clock_body_matches_alpaca_shape() -> None:
    market = Market(sandbox_config(), to_minute(START))
    body = market.clock(START + timedelta(seconds=8.5))
    assert body == {
        "timestamp": "2024-03-05T10:00:08.500000-05:00",
        "is_open": True,
        "next_open": "2024-03-06T09:30:00-05:00",
        "next_close": "2024-03-05T16:00:00-05:00",
    }
