"""Streaming SMA/RSI against a pandas reference written here, plus the edges that bite."""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tapewatch.engine.strategy.indicators import RSI, SMA, rsi_series, sma_series

TOL = 1e-9


# -- pandas reference implementations --------------------------------------------------------


def ref_sma(prices: np.ndarray, n: int) -> np.ndarray:
    return pd.Series(prices).rolling(n).mean().to_numpy()


def _rsi_from_means(gain: pd.Series, loss: pd.Series) -> np.ndarray:
    g = gain.to_numpy()
    lo = loss.to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        rsi = 100.0 - 100.0 / (1.0 + g / lo)
    rsi = np.where((lo == 0) & (g > 0), 100.0, rsi)
    rsi = np.where((lo == 0) & (g == 0), 50.0, rsi)
    return np.where(np.isnan(g) | np.isnan(lo), np.nan, rsi)


def ref_rsi_sma(prices: np.ndarray, n: int) -> np.ndarray:
    delta = pd.Series(prices).diff()
    gain = delta.clip(lower=0).rolling(n).mean()
    loss = (-delta).clip(lower=0).rolling(n).mean()
    return _rsi_from_means(gain, loss)


def ref_rsi_wilder(prices: np.ndarray, n: int) -> np.ndarray:
    delta = pd.Series(prices).diff()
    out = []
    for part in (delta.clip(lower=0), (-delta).clip(lower=0)):
        seeded = part.iloc[n:].copy()
        seeded.iloc[0] = part.iloc[1 : n + 1].mean()  # first average: simple mean of N changes
        smooth = seeded.ewm(alpha=1.0 / n, adjust=False).mean()
        out.append(smooth.reindex(part.index))
    return _rsi_from_means(out[0], out[1])


def random_walk(n: int, seed: int, start: float = 100.0, step: float = 0.5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return start + np.cumsum(rng.normal(0.0, step, n))


def assert_matches(stream: list[float | None], ref: np.ndarray) -> None:
    assert len(stream) == len(ref)
    for i, (got, want) in enumerate(zip(stream, ref, strict=True)):
        if math.isnan(want):
            assert got is None, f"bar {i}: value {got} before the reference has one"
        else:
            assert got is not None, f"bar {i}: no value, reference {want}"
            assert abs(got - want) <= TOL, f"bar {i}: {got} != {want}"


def stream(ind: SMA | RSI, prices: np.ndarray) -> list[float | None]:
    return [ind.update(float(p)) for p in prices]


def fsum_rsi(prices: list[float], i: int, n: int) -> float:
    """RSI of the n changes ending at prices[i], from exact (fsum) gain and loss sums."""
    changes = [prices[k] - prices[k - 1] for k in range(i - n + 1, i + 1)]
    gain = math.fsum(c for c in changes if c > 0)
    loss = -math.fsum(c for c in changes if c < 0)
    if not gain and not loss:
        return 50.0
    return 100.0 - 100.0 / (1.0 + gain / loss) if loss else 100.0


# -- agreement with the reference --------------------------------------------------------------


@pytest.mark.parametrize("period", [2, 14, 50])
def test_sma_matches_pandas(period: int) -> None:
    prices = random_walk(10_000, seed=period)
    assert_matches(stream(SMA(period), prices), ref_sma(prices, period))


@pytest.mark.parametrize("period", [2, 14, 30])
def test_rsi_sma_matches_pandas(period: int) -> None:
    prices = random_walk(10_000, seed=100 + period)
    assert_matches(stream(RSI(period), prices), ref_rsi_sma(prices, period))


@pytest.mark.parametrize("period", [2, 14, 30])
def test_rsi_wilder_matches_pandas(period: int) -> None:
    prices = random_walk(10_000, seed=200 + period)
    assert_matches(stream(RSI(period, "wilder"), prices), ref_rsi_wilder(prices, period))


def test_million_bars_do_not_drift() -> None:
    """A trending walk at a high price level over 1,000,000 bars stays within 1e-9."""
    rng = np.random.default_rng(7)
    prices = 5_000.0 + np.cumsum(rng.normal(0.01, 1.3, 1_000_000))
    closes = prices.tolist()
    got_s = np.array([np.nan if v is None else v for v in sma_series(closes, 50)])
    for got_list, ref in (
        (got_s, ref_sma(prices, 50)),
        (rsi_series(closes, 14), ref_rsi_sma(prices, 14)),
        (rsi_series(closes, 14, "wilder"), ref_rsi_wilder(prices, 14)),
    ):
        got = np.array([np.nan if v is None else v for v in got_list])
        assert np.array_equal(np.isnan(got), np.isnan(ref))
        assert np.nanmax(np.abs(got - ref)) <= TOL
    # And against an exact (fsum) mean of the last window.
    assert abs(got_s[-1] - math.fsum(prices[-50:].tolist()) / 50) <= 1e-11


def test_sma_survives_a_huge_outlier_leaving_the_window() -> None:
    """A naive running sum keeps ~1e-7 of residue after a 1e9 spike leaves; this one does not."""
    rng = np.random.default_rng(3)
    values = rng.uniform(0.5, 1.5, 200).tolist()
    values[40] = 1e9
    sma = SMA(10)
    for i, v in enumerate(values):
        got = sma.update(v)
        if i >= 9:
            exact = math.fsum(values[i - 9 : i + 1]) / 10
            assert got is not None and abs(got - exact) <= 1e-12 * max(1.0, exact)


def test_rsi_survives_a_huge_jump_leaving_the_window() -> None:
    rng = np.random.default_rng(4)
    prices = (100.0 + np.cumsum(rng.normal(0, 0.3, 200))).tolist()
    prices[60] = 1e9  # a bad tick: a 1e9 gain then a 1e9 loss
    rsi = RSI(7)
    for i, p in enumerate(prices):
        got = rsi.update(p)
        if i >= 7:
            changes = [prices[k] - prices[k - 1] for k in range(i - 6, i + 1)]
            gain = math.fsum(c for c in changes if c > 0)
            loss = -math.fsum(c for c in changes if c < 0)
            want = 100.0 - 100.0 / (1.0 + gain / loss) if loss else 100.0
            assert got is not None and abs(got - want) <= 1e-9, i


@pytest.mark.parametrize("period", [3, 10])
def test_sma_spikes_at_every_ring_phase_leave_no_residue(period: int) -> None:
    """Exact re-sums happen only every few wraps: a spike must not leave residue whichever point
    of that cycle it enters or leaves at."""
    rng = np.random.default_rng(period)
    base = rng.uniform(0.5, 1.5, 10 * period).tolist()
    for at in range(6 * period):
        for spike in (1e9, 1e15):
            values = base.copy()
            values[period + at] = spike
            sma = SMA(period)
            for i, v in enumerate(values):
                got = sma.update(v)
                if i >= period - 1:
                    exact = math.fsum(values[i + 1 - period : i + 1]) / period
                    assert got is not None and abs(got - exact) <= 1e-12 * exact, (at, i)


def test_rsi_bad_ticks_at_every_ring_phase_leave_no_residue() -> None:
    rng = np.random.default_rng(8)
    base = (100.0 + np.cumsum(rng.normal(0, 0.3, 80))).tolist()
    n = 5
    for at in range(n + 1, n + 1 + 6 * n):
        prices = base.copy()
        prices[at] = 1e9
        rsi = RSI(n)
        for i, p in enumerate(prices):
            got = rsi.update(p)
            if i >= n:
                assert got is not None and abs(got - fsum_rsi(prices, i, n)) <= 1e-9, (at, i)


def test_sma_of_signed_values_is_exact() -> None:
    """Windows holding a negative value (an SMA of returns, say) take a compensated path: wild
    swings of both signs cancel without residue, and a stretch without negatives goes back to
    the fast path without a jump."""
    rng = np.random.default_rng(12)
    arr = rng.normal(0.0, 1.0, 3000)
    arr[rng.random(3000) < 0.02] *= 1e9
    arr[1000:1400] = np.abs(arr[1000:1400])
    values = arr.tolist()
    for period in (1, 5, 20):
        sma = SMA(period)
        for i, v in enumerate(values):
            got = sma.update(v)
            if i >= period - 1:
                exact = math.fsum(values[i + 1 - period : i + 1]) / period
                assert got is not None and abs(got - exact) <= 1e-12 * abs(exact), (period, i)


def test_a_nan_is_forgotten_once_it_leaves_the_window() -> None:
    prices = random_walk(200, seed=13).tolist()
    prices[50] = math.nan
    sma, rsi = SMA(10), RSI(10)
    for i, p in enumerate(prices):
        got_s, got_r = sma.update(p), rsi.update(p)
        if i >= 61:  # the NaN close and the NaN change after it are out of both windows
            exact = math.fsum(prices[i - 9 : i + 1]) / 10
            assert got_s is not None and abs(got_s - exact) <= 1e-12 * exact
            assert got_r is not None and abs(got_r - fsum_rsi(prices, i, 10)) <= 1e-9


# -- warm-up and edges -------------------------------------------------------------------------


def test_sma_warm_up_is_exactly_period_values() -> None:
    sma = SMA(3)
    assert sma.update(1.0) is None and not sma.ready and sma.value is None
    assert sma.update(2.0) is None
    assert sma.update(6.0) == 3.0
    assert sma.ready and sma.value == 3.0
    assert sma.update(7.0) == 5.0


def test_rsi_warm_up_needs_period_plus_one_prices() -> None:
    for method in ("sma", "wilder"):
        rsi = RSI(3, method)
        assert [rsi.update(p) for p in (10.0, 11.0, 10.0)] == [None, None, None]
        assert not rsi.ready and rsi.value is None
        value = rsi.update(11.0)  # changes +1, -1, +1
        assert value is not None and rsi.ready
        assert value == pytest.approx(100.0 - 100.0 / (1.0 + 2.0 / 1.0))


def test_rsi_is_exactly_100_without_losses() -> None:
    for method in ("sma", "wilder"):
        rsi = RSI(3, method)
        for p in (1.0, 1.1, 1.3, 1.7):
            rsi.update(p)
        assert rsi.value == 100.0


def test_rsi_sma_is_exactly_100_once_the_last_loss_leaves_the_window() -> None:
    """Decimal prices leave binary residue in a running loss sum; the result must still be 100."""
    rsi = RSI(3)
    for p in (100.1, 99.7, 100.3, 99.9, 100.2, 100.4, 100.7, 100.8):
        rsi.update(p)
    assert rsi.value == 100.0


def test_rsi_one_sided_windows_are_exact_over_long_runs() -> None:
    """Cent prices with rare 1000x moves leave residue in naive running sums; one-sided windows
    must still read exactly 100 (no loss) or 0 (no gain), every time."""
    rng = np.random.default_rng(11)
    checked = 0
    for _ in range(20):
        rsi = RSI(5)
        price = 100.0
        changes: list[float] = []
        for _ in range(3000):
            step = round(float(rng.uniform(0.01, 3.0)), 2) * (1000 if rng.random() < 0.05 else 1)
            step = -step if rng.random() < 0.3 else step
            new = round(price + step, 2)
            changes.append(new - price)
            price = new
            value = rsi.update(price)
            window = changes[-5:]
            if value is not None and all(c >= 0 for c in window) and any(window):
                assert value == 100.0
                checked += 1
            elif value is not None and all(c <= 0 for c in window) and any(window):
                assert value == 0.0
                checked += 1
    assert checked > 100


def test_rsi_flat_window_is_exactly_50() -> None:
    rsi = RSI(3)
    for p in (100.1, 99.7, 100.3, 100.3, 100.3, 100.3):
        rsi.update(p)
    assert rsi.value == 50.0
    wilder = RSI(4, "wilder")
    for _ in range(10):
        wilder.update(42.42)
    assert wilder.value == 50.0


def test_rsi_is_0_without_gains() -> None:
    rsi = RSI(2)
    for p in (3.0, 2.5, 2.25):
        rsi.update(p)
    assert rsi.value == 0.0


def test_constant_series() -> None:
    sma, rsi = SMA(5), RSI(5)
    for _ in range(100):
        sma.update(0.1)
        rsi.update(0.1)
    assert sma.value == pytest.approx(0.1, rel=1e-15, abs=0)
    assert rsi.value == 50.0


def test_period_2_by_hand() -> None:
    sma = SMA(2)
    assert [sma.update(v) for v in (1.0, 3.0, 4.0, 10.0)] == [None, 2.0, 3.5, 7.0]
    rsi = RSI(2)
    got = [rsi.update(v) for v in (10.0, 12.0, 11.0, 10.0, 13.0)]
    # windows of changes: (+2,-1) -> 66.67, (-1,-1) -> 0, (-1,+3) -> 75
    assert got[:2] == [None, None]
    assert got[2] == pytest.approx(100 - 100 / 3)
    assert got[3] == 0.0
    assert got[4] == pytest.approx(75.0)


def test_wilder_by_hand() -> None:
    rsi = RSI(2, "wilder")
    got = [rsi.update(v) for v in (10.0, 12.0, 11.0, 14.0)]
    # seed: gain (2+0)/2 = 1, loss (0+1)/2 = 0.5; then gain (1*1+3)/2 = 2, loss 0.5/2 = 0.25
    assert got[2] == pytest.approx(100 - 100 / (1 + 2))
    assert got[3] == pytest.approx(100 - 100 / (1 + 8))


def test_reset_starts_over() -> None:
    prices = random_walk(300, seed=5).tolist()
    for make in (lambda: SMA(20), lambda: RSI(14), lambda: RSI(14, "wilder")):
        used, fresh = make(), make()
        for p in prices[:137]:
            used.update(p)
        used.reset()
        assert used.value is None and not used.ready
        assert [used.update(p) for p in prices] == [fresh.update(p) for p in prices]


def test_value_is_what_update_returned() -> None:
    prices = random_walk(400, seed=6).tolist()
    prices[100:130] = [prices[100]] * 30  # flat, then one-sided windows on either side
    for ind in (SMA(7), RSI(7), RSI(7, "wilder")):
        for p in prices:
            got = ind.update(p)
            assert ind.value == got and ind.ready == (got is not None)


def test_wilder_rsi_is_an_rsi_and_copies_mid_stream() -> None:
    prices = random_walk(100, seed=14).tolist()
    for method in ("sma", "wilder"):
        rsi = RSI(9, method)
        assert isinstance(rsi, RSI) and rsi.method == method and rsi.period == 9
        for p in prices[:60]:
            rsi.update(p)
        twin = copy.deepcopy(rsi)
        assert [twin.update(p) for p in prices[60:]] == [rsi.update(p) for p in prices[60:]]


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        SMA(0)
    with pytest.raises(ValueError):
        RSI(14, "ema")
    with pytest.raises(ValueError):
        RSI(2.5)  # type: ignore[arg-type]


def test_series_helpers_equal_streaming() -> None:
    prices = random_walk(500, seed=9).tolist()
    assert sma_series(prices, 20) == stream(SMA(20), np.array(prices))
    assert rsi_series(prices, 14) == stream(RSI(14), np.array(prices))
    assert rsi_series(prices, 14, "wilder") == stream(RSI(14, "wilder"), np.array(prices))


# -- properties ----------------------------------------------------------------------------------

prices_st = st.lists(
    st.floats(min_value=0.01, max_value=1e6, allow_nan=False, allow_infinity=False),
    min_size=1,
    max_size=80,
)


@settings(max_examples=150, deadline=None)
@given(prices=prices_st, period=st.integers(2, 10), method=st.sampled_from(["sma", "wilder"]))
def test_rsi_always_within_0_and_100(prices: list[float], period: int, method: str) -> None:
    rsi = RSI(period, method)
    for i, p in enumerate(prices):
        value = rsi.update(p)
        assert (value is None) == (i < period)
        if value is not None:
            assert 0.0 <= value <= 100.0


@settings(max_examples=150, deadline=None)
@given(prices=prices_st, period=st.integers(1, 10))
def test_sma_within_window_range(prices: list[float], period: int) -> None:
    sma = SMA(period)
    for i, p in enumerate(prices):
        value = sma.update(p)
        if i + 1 < period:
            assert value is None
        else:
            window = prices[i + 1 - period : i + 1]
            assert value is not None
            assert min(window) * (1 - 1e-12) <= value <= max(window) * (1 + 1e-12)


@settings(max_examples=150, deadline=None)
@given(
    values=st.lists(
        st.floats(min_value=1e-6, max_value=1e15, allow_nan=False, allow_infinity=False),
        min_size=1,
        max_size=120,
    ),
    period=st.integers(1, 10),
)
def test_stream_equals_exact_sums_at_any_magnitude(values: list[float], period: int) -> None:
    """Against fsum: the SMA within 1e-11 relative (the proven bound is 3e-12 for period <= 10),
    the RSI within 1e-9, and exactly 100 / 0 / 50 on one-sided and flat windows."""
    sma, rsi = SMA(period), RSI(period)
    for i, v in enumerate(values):
        got = sma.update(v)
        if i + 1 >= period:
            exact = math.fsum(values[i + 1 - period : i + 1]) / period
            assert got is not None and abs(got - exact) <= 1e-11 * exact
        got = rsi.update(v)
        if i >= period:
            changes = [values[k] - values[k - 1] for k in range(i - period + 1, i + 1)]
            assert got is not None and abs(got - fsum_rsi(values, i, period)) <= 1e-9
            if not any(changes):
                assert got == 50.0
            elif all(c >= 0 for c in changes):
                assert got == 100.0
            elif all(c <= 0 for c in changes):
                assert got == 0.0
