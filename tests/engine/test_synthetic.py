"""The synthetic market: deterministic, chunk-independent, NYSE-shaped and statistically real."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from tapewatch.engine.market.bars import BarArrays
from tapewatch.engine.market.calendar import MarketCalendar
from tapewatch.engine.market.synthetic import SyntheticMarket, generate

FIELDS = ("ts_ns", "open", "high", "low", "close", "volume")
START = date(2010, 1, 4)
MarketCalendar(date(2000, 1, 1), date(2030, 12, 31))  # build the shared schedule once


@pytest.fixture(scope="module")
def long_sample() -> BarArrays:
    """About 16 years of 5-minute bars from one seed (generated once for the module)."""
    return generate(seed=11, start=START, end=date(2025, 12, 31))


def _same(a: BarArrays, b: BarArrays) -> bool:
    return len(a) == len(b) and all(np.array_equal(getattr(a, f), getattr(b, f)) for f in FIELDS)


def _days(bars: BarArrays) -> tuple[np.ndarray, np.ndarray]:
    """Index of each session's first and last bar."""
    day = bars.ts_ns // (86_400 * 10**9)
    first = np.flatnonzero(np.r_[True, day[1:] != day[:-1]])
    last = np.r_[first[1:] - 1, len(day) - 1]
    return first, last


def test_same_seed_same_bars_other_seed_other_bars() -> None:
    a = generate(seed=5, start=START, n_bars=5000)
    b = generate(seed=5, start=START, n_bars=5000)
    c = generate(seed=6, start=START, n_bars=5000)
    assert _same(a, b)
    assert not np.array_equal(a.close, c.close)


def test_output_does_not_depend_on_chunking() -> None:
    whole = SyntheticMarket(seed=3, start=START).next_days(700)
    market = SyntheticMarket(seed=3, start=START)
    pieces = [market.next_days(n) for n in (1, 2, 97, 1, 599)]
    assert _same(BarArrays.concat(pieces), whole)
    assert _same(generate(seed=3, start=START, n_bars=len(whole)), whole)


def test_first_bar_opens_at_start_price_on_the_first_session() -> None:
    bars = generate(seed=1, start=date(2024, 7, 4), n_bars=10, start_price=432.1)
    assert bars.open[0] == 432.1
    assert bars.bar(0).ts.date() == date(2024, 7, 5)  # the holiday is skipped


def test_exact_bar_count_and_end_date() -> None:
    assert len(generate(seed=2, start=START, n_bars=12_345)) == 12_345
    week = generate(seed=2, start=date(2024, 11, 25), end=date(2024, 11, 29))
    assert len(week) == 78 * 3 + 42  # Thanksgiving closed, Friday half day
    capped = generate(seed=2, start=date(2024, 11, 25), end=date(2024, 11, 29), n_bars=100)
    assert _same(capped, week.slice(0, 100))


def test_grid_follows_the_nyse_calendar() -> None:
    bars = generate(seed=4, start=date(2024, 3, 4), end=date(2024, 3, 15))
    cal = MarketCalendar()
    expected = cal.bar_starts(cal.sessions(date(2024, 3, 4), date(2024, 3, 15)), 300)
    assert np.array_equal(bars.ts_ns, expected)  # includes the DST shift on March 11


def test_ohlc_is_valid(long_sample: BarArrays) -> None:
    b = long_sample
    assert np.all(b.low > 0)
    assert np.all(b.low <= np.minimum(b.open, b.close))
    assert np.all(np.maximum(b.open, b.close) <= b.high)
    assert np.all(b.volume > 0)
    assert np.all(np.isfinite(b.close))
    assert np.all(np.diff(b.ts_ns) > 0)


def test_intraday_volatility_and_volume_are_u_shaped(long_sample: BarArrays) -> None:
    b = long_sample
    first, _ = _days(b)
    counts = np.diff(np.r_[first, len(b)])
    minute = (b.ts_ns - np.repeat(b.ts_ns[first], counts)) // (60 * 10**9)
    full_day = np.repeat(counts == 78, counts)
    move = np.abs(np.log(b.close / b.open))
    edge_open = full_day & (minute < 30)
    edge_close = full_day & (minute >= 360)
    midday = full_day & (minute >= 150) & (minute < 240)
    assert move[edge_open].mean() > 1.2 * move[midday].mean()
    assert move[edge_close].mean() > 1.1 * move[midday].mean()
    last_bar = full_day & (minute == 385)
    assert b.volume[last_bar].mean() > 2 * b.volume[midday].mean()  # the closing spike
    assert b.volume[edge_open].mean() > b.volume[midday].mean()


def test_daily_volatility_clusters(long_sample: BarArrays) -> None:
    _, last = _days(long_sample)
    daily = np.diff(np.log(long_sample.close[last]))
    size = np.abs(daily - daily.mean())
    lag1 = np.corrcoef(size[:-1], size[1:])[0, 1]
    lag5 = np.corrcoef(size[:-5], size[5:])[0, 1]
    assert lag1 > 0.05 and lag5 > 0.05


def test_returns_have_fat_tails(long_sample: BarArrays) -> None:
    r = np.log(long_sample.close / long_sample.open)
    z = (r - r.mean()) / r.std()
    assert np.mean(z**4) > 5  # Gaussian: 3


def test_overnight_gap_carries_about_a_fifth_of_daily_variance(long_sample: BarArrays) -> None:
    b = long_sample
    first, last = _days(b)
    overnight = np.log(b.open[first[1:]] / b.close[last[:-1]])
    close_to_close = np.log(b.close[last[1:]] / b.close[last[:-1]])
    share = overnight.var() / close_to_close.var()
    assert 0.10 < share < 0.35


def test_zero_drift_path_is_a_martingale(long_sample: BarArrays) -> None:
    """Mean gross bar return is 1 within noise: no free lunch for a strategy to find."""
    gross = long_sample.close / long_sample.open
    stderr = gross.std() / np.sqrt(len(gross))
    assert abs(gross.mean() - 1.0) < 4 * stderr


def test_drift_raises_the_trend() -> None:
    flat = generate(seed=8, start=START, n_bars=200_000)
    up = generate(seed=8, start=START, n_bars=200_000, drift=0.5)
    assert np.log(up.close[-1] / flat.close[-1]) == pytest.approx(
        0.5 * 200_000 / 78 / 252, rel=1e-6
    )


def test_other_timeframes_work() -> None:
    day = date(2024, 3, 12)
    assert len(generate(seed=1, start=day, end=day, timeframe_seconds=60)) == 390
    assert len(generate(seed=1, start=day, end=day, timeframe_seconds=3600)) == 7


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="seed"):
        SyntheticMarket(seed=-1, start=START)
    with pytest.raises(ValueError, match="start_price"):
        SyntheticMarket(seed=1, start=START, start_price=0.0)
    with pytest.raises(ValueError, match="n_bars"):
        generate(seed=1, start=START)


def test_years_of_bars() -> None:
    """Fifteen years in one call (speed: bench/backtest_speed.py): exact count, in order."""
    bars = generate(seed=9, start=date(2000, 1, 3), n_bars=300_000)  # ~15 years
    assert len(bars) == 300_000
    assert bool((bars.ts_ns[1:] > bars.ts_ns[:-1]).all())
