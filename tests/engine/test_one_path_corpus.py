"""The fast loop and the full engine path agree on every awkward input: one decision function,
one bar-validity check.

``run_backtest`` takes the full per-bar engine path only on bars where something can happen;
a corpus of awkward inputs — holes, odd stamps, bars the engine refuses, flat runs, splits,
daily bars stamped at midnight or at the open — and randomly corrupted series must give the
same fills and the same report either way.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tapewatch.engine.backtest.runner import run_backtest
from tapewatch.engine.market.bars import BarArrays
from tapewatch.engine.market.synthetic import generate
from tapewatch.engine.settings.config import EngineConfig, StrategyConfig
from tapewatch.engine.strategy.bar_checks import bar_problem, price_problem

BUSY = EngineConfig(
    strategy=StrategyConfig(
        rsi_period=5, sma_period=20, rsi_oversold=40, rsi_overbought=60, position_pct=0.5
    )
).validate()
NAMES = ("ts_ns", "open", "high", "low", "close", "volume")
BASE = generate("SPY", seed=5, start=date(2024, 1, 2), end=date(2024, 2, 15))

Columns = list[np.ndarray]


def columns(bars: BarArrays) -> Columns:
    return [getattr(bars, name).copy() for name in NAMES]


def arrays(cols: Columns) -> BarArrays:
    return BarArrays("SPY", *cols)


def agree(bars: BarArrays, config: EngineConfig = BUSY) -> int:
    """Both paths' fills and reports, asserted equal; the number of fills."""
    lean = run_backtest(bars, config)
    full = run_backtest(bars, config, lean=False)
    assert lean.fills == full.fills
    assert lean.report == full.report
    return len(lean.fills)


def holes(n: int) -> Callable[[Columns], Columns]:
    return lambda c: [np.delete(x, list(range(100, 100 + n))) for x in c]


def close_above_high(c: Columns) -> Columns:
    c[4][200] = c[2][200] * 1.01
    return c


def open_below_low(c: Columns) -> Columns:
    c[1][300] = c[3][300] * 0.98
    return c


def not_a_number(c: Columns) -> Columns:
    c[4][250] = float("nan")
    return c


def negative_volume(c: Columns) -> Columns:
    c[5][260] = -1.0
    return c


def flat_run(c: Columns) -> Columns:
    for k in (1, 2, 3, 4):
        c[k][400:460] = c[4][399]
    return c


def split(c: Columns) -> Columns:
    for k in (1, 2, 3, 4):
        c[k][500:] = c[k][500:] / 4
    return c


def odd_stamps(c: Columns) -> Columns:
    c[0] = c[0] + 7_000_000_000  # every bar 7 s after the grid
    return c


def repeated_bar(c: Columns) -> Columns:
    return [np.insert(x, 150, x[150]) for x in c]  # the same bar twice in a row


CASES = {
    "two missing bars": holes(2),
    "three missing bars": holes(3),
    "close above the high": close_above_high,
    "open below the low": open_below_low,
    "a NaN close": not_a_number,
    "negative volume": negative_volume,
    "a flat run": flat_run,
    "a 4:1 split": split,
    "stamps off the grid": odd_stamps,
    "a repeated bar": repeated_bar,
}


@pytest.mark.parametrize("name", list(CASES))
def test_both_paths_agree_on_an_awkward_input(name: str) -> None:
    assert agree(arrays(CASES[name](columns(BASE)))) > 0


def daily(hour: int, minute: int, seed: int = 2) -> BarArrays:
    rng = random.Random(seed)
    day, stamps, rows = date(2021, 1, 4), [], []
    price = 100.0
    while len(stamps) < 500:
        if day.weekday() < 5:
            at = datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
            opened, price = price, max(1.0, price * (1 + rng.gauss(0, 0.02)))
            stamps.append(int(at.timestamp()) * 1_000_000_000)
            rows.append((opened, max(opened, price) * 1.005, min(opened, price) * 0.995, price))
        day += timedelta(days=1)
    o, h, lo, c = (np.array(col) for col in zip(*rows, strict=True))
    return BarArrays("SPY", np.array(stamps, dtype=np.int64), o, h, lo, c, np.full(len(c), 1e6))


@pytest.mark.parametrize(("hour", "minute"), [(0, 0), (5, 0), (14, 30)])
def test_both_paths_agree_on_daily_bars_however_they_are_stamped(hour: int, minute: int) -> None:
    config = replace(BUSY, strategy=replace(BUSY.strategy, timeframe="1Day"))
    assert agree(daily(hour, minute), config) > 0


@settings(
    max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    drops=st.lists(st.integers(0, len(BASE) - 1), max_size=30),
    bad=st.lists(
        st.tuples(st.integers(0, len(BASE) - 1), st.sampled_from(["hi", "nan", "zero", "vol"])),
        max_size=8,
    ),
    shift_s=st.integers(0, 299),
)
def test_both_paths_agree_on_randomly_damaged_history(
    drops: list[int], bad: list[tuple[int, str]], shift_s: int
) -> None:
    agree(arrays(damaged(columns(BASE), bad, drops, shift_s)))


def damaged(
    c: list[np.ndarray], bad: list[tuple[int, str]], drops: list[int], shift_s: int
) -> list[np.ndarray]:
    """History broken as a vendor breaks it: a high below the close, a NaN open, a zero low,
    a negative volume at chosen bars, bars missing, and the stamps shifted off the grid."""
    for i, kind in bad:
        if kind == "hi":
            c[4][i] = c[2][i] * 1.02
        elif kind == "nan":
            c[1][i] = float("nan")
        elif kind == "zero":
            c[3][i] = 0.0
        else:
            c[5][i] = -5.0
    c = [np.delete(x, sorted(set(drops))) for x in c]
    c[0] = c[0] + shift_s * 1_000_000_000
    return c


def test_the_fast_check_is_the_engines_check() -> None:
    """``bar_problem`` (the engine's door) is ``price_problem`` plus the order of stamps."""
    for i in range(len(BASE)):
        bar = BASE.bar(i)
        assert bar_problem(bar, None) == price_problem(
            bar.open, bar.high, bar.low, bar.close, bar.volume
        )
    broken = replace(BASE.bar(3), close=BASE.bar(3).high * 2)
    assert bar_problem(broken, None) == price_problem(
        broken.open, broken.high, broken.low, broken.close, broken.volume
    )
    assert bar_problem(BASE.bar(3), BASE.bar(3).ts) is not None  # not newer: refused
