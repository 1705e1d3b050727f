"""The vectorised backtest path gives the engine's fills and report, input by input.

``lean=False`` (the full engine path on every bar) is the reference; the lean loop
(``vector=False``) must agree too. Every awkward input of the one-path corpus, the breaker
scenarios, exact RSI and SMA ties, and random configurations over randomly damaged history.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from math import fsum

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tapewatch.engine.backtest import runner
from tapewatch.engine.backtest.runner import chosen_path, run_backtest
from tapewatch.engine.backtest.vector import Decider, accepted_mask, vector_indicators, window_sums
from tapewatch.engine.backtest.vector_step import step_uncovered
from tapewatch.engine.market.bars import BarArrays
from tapewatch.engine.market.synthetic import generate
from tapewatch.engine.root.backtest import build_backtest
from tapewatch.engine.settings.config import EngineConfig, ExecutionConfig, RiskConfig
from tapewatch.engine.strategy.bar_checks import bar_problem
from tapewatch.engine.strategy.indicators import rsi_series, sma_series
from tests.engine.test_backtest_breakers import arrays as bars_to_arrays
from tests.engine.test_backtest_breakers import (
    config as breaker_config,
)
from tests.engine.test_backtest_breakers import (
    crash_day,
    next_day,
)
from tests.engine.test_one_path_corpus import (
    BASE,
    BUSY,
    CASES,
    arrays,
    columns,
    daily,
    damaged,
)


def three_ways(bars: BarArrays, config: EngineConfig = BUSY) -> int:
    """The vector path (asserted to be the one taken), the lean loop and the full engine path
    give equal fills and reports; returns the number of fills."""
    assert chosen_path(bars, config, lean=True, vector=True) == "vector"
    fast = run_backtest(bars, config)
    lean = run_backtest(bars, config, vector=False)
    full = run_backtest(bars, config, lean=False)
    assert fast.fills == full.fills
    assert fast.report == full.report
    assert lean.fills == full.fills
    assert lean.report == full.report
    return len(fast.fills)


@pytest.mark.parametrize("name", list(CASES))
def test_the_vector_path_agrees_on_every_awkward_input(name: str) -> None:
    assert three_ways(arrays(CASES[name](columns(BASE)))) > 0


@pytest.mark.parametrize(("hour", "minute"), [(0, 0), (14, 30)])
def test_the_vector_path_agrees_on_daily_bars(hour: int, minute: int) -> None:
    config = replace(BUSY, strategy=replace(BUSY.strategy, timeframe="1Day"))
    assert three_ways(daily(hour, minute), config) > 0


@pytest.mark.parametrize("action", ["reduce", "halt", "flatten"])
def test_the_vector_path_applies_the_drawdown_breaker_as_the_engine(action: str) -> None:
    bars = bars_to_arrays([*crash_day(), *next_day([100, 99, 98, 97, 96, 95, 96, 97, 98, 99])])
    config = breaker_config(action)
    three_ways(bars, config)
    result = run_backtest(bars, config)
    assert result.report.breaker_trips  # the scenario does trip the breaker
    assert {trip.breaker for trip in result.report.breaker_trips} == {"drawdown"}


def test_the_default_strategy_over_a_long_run_takes_the_vector_path_and_agrees() -> None:
    bars = generate("SPY", seed=3, start=date(2020, 1, 2), n_bars=12_000)
    assert three_ways(bars, EngineConfig().validate()) > 10


def test_wilder_rsi_falls_back_to_the_engine_loop() -> None:
    config = replace(BUSY, strategy=replace(BUSY.strategy, rsi_method="wilder")).validate()
    assert chosen_path(BASE, config, lean=True, vector=True) == "lean"
    assert run_backtest(BASE, config).fills == run_backtest(BASE, config, lean=False).fills


def test_a_very_long_sma_falls_back_to_the_engine_loop() -> None:
    config = replace(BUSY, strategy=replace(BUSY.strategy, sma_period=2_500)).validate()
    assert chosen_path(BASE, config, lean=True, vector=True) == "lean"


def test_prices_outside_the_exact_decimal_range_fall_back() -> None:
    c = columns(BASE)
    for k in (1, 2, 3, 4):
        c[k] = c[k] * 1e11
    assert chosen_path(arrays(c), BUSY, lean=True, vector=True) == "lean"


def cents(closes: list[float]) -> BarArrays:
    """Bars 5 minutes apart in one session, open = previous close, prices in cents."""
    n = len(closes)
    ts = BASE.ts_ns[:n].copy()
    c = np.round(np.array(closes), 2)
    o = np.concatenate(([c[0]], c[:-1]))
    return BarArrays("SPY", ts, o, np.maximum(o, c), np.minimum(o, c), c, np.full(n, 1e5))


def test_an_rsi_exactly_on_the_threshold_is_decided_as_the_streaming_rsi_does() -> None:
    # Changes of +0.03 and -0.07 in a 10-change window: gains 0.03*3, losses 0.07*3 plus
    # zeros -> RSI lands on 30 (up to the last bit) again and again; then a rally sells.
    steps = [0.03, -0.07, 0.0, 0.03, -0.07, 0.0, 0.03, -0.07, 0.0, 0.0] * 12 + [0.2] * 15
    closes = list(np.cumsum([100.0, *steps]))
    config = replace(
        BUSY,
        strategy=replace(
            BUSY.strategy, rsi_period=10, sma_period=3, rsi_oversold=30, rsi_overbought=70
        ),
    ).validate()
    bars = cents(closes)
    rsi = [r for r in rsi_series(bars.close.tolist(), 10) if r is not None]
    assert any(abs(r - 30.0) < 1e-9 for r in rsi)  # the tie the input is built for
    decider = Decider(bars.close, vector_indicators(bars.close, 10, 3), config)
    decided = [decider.values(k)[0] for k in range(len(bars))][10:]
    near = [k for k, r in enumerate(rsi) if abs(r - 30.0) < 1e-9]
    assert decider.deferred >= len(near) > 0
    assert [decided[k] for k in near] == [rsi[k] for k in near]  # the streaming RSI's own bits
    three_ways(bars, config)


def test_a_close_equal_to_its_sma_never_buys_on_the_vector_path() -> None:
    # A flat run: close == SMA exactly (in decimal), RSI 50 < 60 oversold -> no buy on a tie.
    closes = [100.0, 99.0, 98.0, 97.0, 96.0] + [95.1] * 40 + [95.2, 95.1, 95.0] * 5
    config = replace(
        BUSY,
        strategy=replace(
            BUSY.strategy, rsi_period=5, sma_period=5, rsi_oversold=60, rsi_overbought=80
        ),
    ).validate()
    bars = cents(closes)
    sma = sma_series(bars.close.tolist(), 5)
    assert sma[20] == bars.close[20]  # the streaming SMA's exact tie
    decider = Decider(bars.close, vector_indicators(bars.close, 5, 5), config)
    rsi, decided = decider.values(20)
    assert decided == sma[20] and rsi == 50.0
    assert decider.deferred == 1  # the tie went to the exact decimal mean
    three_ways(bars, config)


def test_vector_indicators_match_the_streaming_ones_closely() -> None:
    closes = BASE.close
    ind = vector_indicators(closes, 14, 50)
    rsi = np.array([np.nan if r is None else r for r in rsi_series(closes.tolist(), 14)])
    sma = np.array([np.nan if s is None else s for s in sma_series(closes.tolist(), 50)])
    assert np.array_equal(np.isnan(ind.rsi), np.isnan(rsi))
    assert np.array_equal(np.isnan(ind.sma), np.isnan(sma))
    assert np.nanmax(np.abs(ind.rsi - rsi)) < 1e-9
    assert np.nanmax(np.abs(ind.sma - sma) / sma) < 1e-12


@pytest.mark.parametrize("period", [1, 3, 50, 300])
def test_window_sums_are_within_a_few_ulps_of_the_exact_sums(period: int) -> None:
    values = np.random.default_rng(7).lognormal(3.0, 1.0, 2_000)
    exact = np.array([fsum(values[k : k + period]) for k in range(len(values) - period + 1)])
    assert np.max(np.abs(window_sums(values, period) - exact) / exact) < period * 2.3e-16


def test_the_accepted_mask_is_the_engines_door() -> None:
    c = CASES["a repeated bar"](CASES["a NaN close"](CASES["close above the high"](columns(BASE))))
    bars = arrays(c)
    mask = accepted_mask(bars)
    last = None
    for i in range(len(bars)):
        bar = bars.bar(i)
        fine = bar_problem(bar, last) is None
        assert mask[i] == fine
        if fine:
            last = bar.ts
    assert not mask.all()


@settings(
    max_examples=80, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    rsi_period=st.integers(2, 16),
    sma_period=st.integers(2, 40),
    oversold=st.sampled_from([20.0, 30.0, 35.5, 40.0, 45.0]),
    overbought=st.sampled_from([55.0, 60.0, 70.0, 80.0]),
    position_pct=st.sampled_from([0.02, 0.3, 0.9, 1.0]),
    slippage_bps=st.sampled_from([0.0, 5.0, 25.0]),
    per_order=st.sampled_from([0.0, 1.0]),
    per_share=st.sampled_from([0.0, 0.005]),
    max_drawdown=st.sampled_from([0.002, 0.01, 0.05]),
    action=st.sampled_from(["reduce", "halt", "flatten"]),
    drops=st.lists(st.integers(0, len(BASE) - 1), max_size=30),
    bad=st.lists(
        st.tuples(st.integers(0, len(BASE) - 1), st.sampled_from(["hi", "nan", "zero", "vol"])),
        max_size=8,
    ),
    shift_s=st.integers(0, 299),
    in_cents=st.booleans(),
    timeframe=st.sampled_from(["5Min", "1Min", "1Hour"]),
)
def test_random_configs_on_randomly_damaged_history_agree(
    rsi_period: int,
    sma_period: int,
    oversold: float,
    overbought: float,
    position_pct: float,
    slippage_bps: float,
    per_order: float,
    per_share: float,
    max_drawdown: float,
    action: str,
    drops: list[int],
    bad: list[tuple[int, str]],
    shift_s: int,
    in_cents: bool,
    timeframe: str,
) -> None:
    c = columns(BASE)
    if in_cents:  # prices as exchanges print them: ties of RSI and SMA with thresholds happen
        for k in (1, 2, 3, 4):
            c[k] = np.round(c[k], 2)
    c = damaged(c, bad, drops, shift_s)
    config = EngineConfig(
        strategy=replace(
            BUSY.strategy,
            timeframe=timeframe,
            rsi_period=rsi_period,
            sma_period=sma_period,
            rsi_oversold=oversold,
            rsi_overbought=overbought,
            position_pct=position_pct,
        ),
        execution=ExecutionConfig(
            slippage_bps=slippage_bps,
            commission_per_order=per_order,
            commission_per_share=per_share,
        ),
        risk=RiskConfig(max_drawdown=max_drawdown, drawdown_action=action),
    ).validate()
    three_ways(arrays(c), config)


def test_a_backtest_engine_takes_the_light_bar_step() -> None:
    parts = build_backtest(BUSY, BASE.bar(0).ts)
    assert step_uncovered(parts.engine) is None
    parts.engine.allow_fractional = False
    assert step_uncovered(parts.engine) == "whole-share sizing"


@pytest.mark.parametrize("name", ["a 4:1 split", "a repeated bar", "three missing bars"])
def test_without_the_light_step_the_engines_bar_path_agrees_too(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "step_uncovered", lambda engine: "forced for the test")
    assert three_ways(arrays(CASES[name](columns(BASE)))) > 0


def test_cells_over_the_same_bars_share_each_indicator_series() -> None:
    """A sweep's cells on one worker reuse the RSI of a period and the SMA of a period across
    every threshold pair, and still agree with the engine."""
    from tapewatch.engine.backtest import vector

    bars = generate("SPY", seed=9, start=date(2024, 1, 2), end=date(2024, 2, 28))
    computed: list[tuple[str, int]] = []
    real_rsi, real_sma = vector.vector_rsi, vector.vector_sma

    def rsi(closes: np.ndarray, period: int) -> np.ndarray:
        computed.append(("rsi", period))
        return real_rsi(closes, period)

    def sma(closes: np.ndarray, period: int) -> np.ndarray:
        computed.append(("sma", period))
        return real_sma(closes, period)

    vector.vector_rsi, vector.vector_sma = rsi, sma  # type: ignore[assignment]
    try:
        for oversold, overbought in [(30, 70), (35, 65), (40, 60)]:
            config = replace(
                BUSY,
                strategy=replace(BUSY.strategy, rsi_oversold=oversold, rsi_overbought=overbought),
            ).validate()
            fast = run_backtest(bars, config)
            assert fast.fills == run_backtest(bars, config, lean=False).fills
    finally:
        vector.vector_rsi, vector.vector_sma = real_rsi, real_sma
    assert sorted(set(computed)) == sorted(computed)  # each series once
    assert len(computed) == 2


def test_cells_on_fresh_views_of_the_same_bars_share_each_series() -> None:
    """A worker gives each cell its window as a new view of the scattered bars: views of the
    same memory reuse the series, another window computes its own."""
    from tapewatch.engine.backtest import memo, vector
    from tapewatch.engine.research.cells import CellTask, evaluate

    memo.forget()
    bars = generate("SPY", seed=9, start=date(2024, 1, 2), end=date(2024, 2, 28))
    computed: list[tuple[str, int]] = []
    real_rsi = vector.vector_rsi

    def rsi(closes: np.ndarray, period: int) -> np.ndarray:
        computed.append(("rsi", len(closes)))
        return real_rsi(closes, period)

    vector.vector_rsi = rsi  # type: ignore[assignment]
    try:
        reports = []
        for oversold in (30.0, 35.0):
            config = replace(BUSY, strategy=replace(BUSY.strategy, rsi_oversold=oversold))
            whole = CellTask(f"whole-{oversold}", config.validate(), 0, len(bars))
            reports.append(evaluate(bars, whole).report)
            assert reports[-1] == json_clean(run_backtest(bars, config.validate()))
        half = CellTask("half", BUSY, 0, len(bars) // 2)
        evaluate(bars, half)
    finally:
        vector.vector_rsi = real_rsi
    assert reports[0] != reports[1]
    assert computed == [("rsi", len(bars)), ("rsi", len(bars) // 2)]


def json_clean(result: object) -> dict[str, object]:
    import json

    return json.loads(json.dumps(result.report.as_dict()))  # type: ignore[attr-defined, no-any-return]


def test_flat_days_roll_once_when_the_next_bar_is_visited(monkeypatch: pytest.MonkeyPatch) -> None:
    """History keeps no stale watch, so while flat with nothing tripped the vector path lets
    the day rolls wait: a run that never trades rolls once or twice, not once a day (the lean
    loop's count), and agrees with the engine all the same."""
    from tapewatch.engine.core.engine import Engine

    bars = generate("SPY", seed=4, start=date(2024, 1, 2), end=date(2024, 3, 28))
    never = replace(
        BUSY, strategy=replace(BUSY.strategy, rsi_period=30, rsi_oversold=1.0)
    ).validate()
    rolls: list[str] = []
    real = Engine.roll_day

    def counting(self: Engine, bar_ts: object, now: object, equity: float) -> None:
        rolls.append("roll")
        real(self, bar_ts, now, equity)  # type: ignore[arg-type]

    monkeypatch.setattr(Engine, "roll_day", counting)
    fast = run_backtest(bars, never)
    vector_rolls = len(rolls)
    rolls.clear()
    lean = run_backtest(bars, never, vector=False)
    assert fast.report == lean.report
    assert fast.fills == lean.fills == ()
    assert len(rolls) >= 55  # one a trading day
    assert vector_rolls <= 2


def _unaligned(column: np.ndarray) -> np.ndarray:
    raw = bytearray(column.nbytes + 1)
    out = np.frombuffer(raw, dtype=column.dtype, offset=1, count=len(column))
    out[...] = column
    return out


def test_bars_in_unaligned_memory_are_aligned_once_and_agree() -> None:
    """A Dask worker unpickles the scattered bars at any offset in a frame; numpy then copies
    an unaligned array on every searchsorted, so the path works on aligned copies."""
    from tapewatch.engine.backtest import memo
    from tapewatch.engine.backtest.vector import accepted_bars

    memo.forget()
    bars = generate("SPY", seed=5, start=date(2024, 1, 2), end=date(2024, 2, 28))
    odd = BarArrays(
        bars.symbol,
        *(
            _unaligned(c)
            for c in (bars.ts_ns, bars.open, bars.high, bars.low, bars.close, bars.volume)
        ),
    )
    assert not odd.ts_ns.flags.aligned and not odd.close.flags.aligned
    door = accepted_bars(odd)
    assert door.raw_ts_ns.flags.aligned and door.raw_close.flags.aligned
    assert door.ts_ns.flags.aligned and door.closes.flags.aligned
    assert run_backtest(odd, BUSY) == run_backtest(bars, BUSY)


def test_a_fresh_backtest_takes_the_numeric_fill_step() -> None:
    from tapewatch.engine.backtest.vector_fills import fills_uncovered

    parts = build_backtest(BUSY, BASE.bar(0).ts)
    assert fills_uncovered(parts.engine, parts.broker, BUSY.strategy.symbol) is None
    assert fills_uncovered(parts.engine, parts.broker, "QQQ") is not None


@pytest.mark.parametrize(
    "name", ["a 4:1 split", "a repeated bar", "three missing bars", "a NaN close"]
)
def test_the_simbroker_bar_step_agrees_too(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the numeric fill step does not apply, BarStep (the SimBroker's own objects)
    takes the eventful bars: it agrees with the engine on the same inputs."""
    monkeypatch.setattr(runner, "fills_uncovered", lambda *_: "forced for the test")
    assert three_ways(arrays(CASES[name](columns(BASE)))) > 0


@pytest.mark.parametrize("action", ["reduce", "halt", "flatten"])
def test_both_light_steps_apply_the_drawdown_breaker_alike(
    action: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    bars = bars_to_arrays([*crash_day(), *next_day([100, 99, 98, 97, 96, 95, 96, 97, 98, 99])])
    config = breaker_config(action)
    numeric = run_backtest(bars, config)
    monkeypatch.setattr(runner, "fills_uncovered", lambda *_: "forced for the test")
    objects = run_backtest(bars, config)
    assert numeric == objects
    assert numeric.report.breaker_trips


def test_a_buy_the_next_open_cannot_pay_for_is_rejected_alike() -> None:
    """All in (100% of equity, no costs) and every open 1% above the last close: each buy is
    accepted at submission and refused at the fill for want of cash, on every path."""
    c = columns(BASE)
    c[1] = np.concatenate(([c[1][0]], c[4][:-1] * 1.01))  # open above the previous close
    c[2] = np.maximum(c[2], c[1])
    all_in = replace(BUSY, strategy=replace(BUSY.strategy, position_pct=1.0)).validate()
    assert three_ways(arrays(c), all_in) == 0  # nothing could be paid for
    plain = replace(BUSY, strategy=replace(BUSY.strategy, position_pct=0.5)).validate()
    assert three_ways(arrays(c), plain) > 0  # at half the equity the same buys fill
