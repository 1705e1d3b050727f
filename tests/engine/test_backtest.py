"""The backtester: the lean loop equals the full engine path, determinism, a golden run."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import numpy as np
import pytest

from tapewatch.engine.backtest.runner import run_backtest
from tapewatch.engine.market.bars import BarArrays
from tapewatch.engine.market.synthetic import generate
from tapewatch.engine.settings.config import (
    EngineConfig,
    ExecutionConfig,
    RiskConfig,
    StrategyConfig,
)

BUSY = EngineConfig(
    strategy=StrategyConfig(
        rsi_period=5, sma_period=20, rsi_oversold=40, rsi_overbought=60, position_pct=0.5
    ),
    execution=ExecutionConfig(slippage_bps=2, commission_per_order=1.0, commission_per_share=0.005),
).validate()


def assert_same(a, b) -> None:  # type: ignore[no-untyped-def]
    assert a.report == b.report
    assert a.fills == b.fills


@pytest.mark.parametrize("config", [EngineConfig().validate(), BUSY], ids=["defaults", "busy"])
def test_lean_loop_equals_the_full_engine_path(config: EngineConfig) -> None:
    bars = generate("SPY", seed=21, start=date(2024, 1, 2), end=date(2024, 4, 30))
    lean = run_backtest(bars, config)
    full = run_backtest(bars, config, lean=False)
    assert full.report.trades > 0 or config is not BUSY
    assert_same(lean, full)


def test_lean_loop_equals_full_path_through_a_drawdown_halt() -> None:
    config = replace(
        BUSY, strategy=replace(BUSY.strategy, position_pct=1.0), risk=RiskConfig(max_drawdown=0.01)
    )
    bars = generate("SPY", seed=4, start=date(2024, 1, 2), end=date(2024, 6, 28))
    lean = run_backtest(bars, config)
    full = run_backtest(bars, config, lean=False)
    assert_same(lean, full)


def test_lean_loop_equals_full_path_with_a_data_gap_in_session() -> None:
    """Missing bars mid-session trip the stale-data breaker (REDUCING) in both paths alike."""
    bars = generate("SPY", seed=9, start=date(2024, 2, 5), end=date(2024, 2, 29))
    keep = np.ones(len(bars), dtype=bool)
    keep[300:306] = False  # half an hour missing on a session day
    holey = BarArrays(
        bars.symbol,
        bars.ts_ns[keep],
        bars.open[keep],
        bars.high[keep],
        bars.low[keep],
        bars.close[keep],
        bars.volume[keep],
    )
    lean = run_backtest(holey, BUSY)
    full = run_backtest(holey, BUSY, lean=False)
    assert_same(lean, full)


def test_same_inputs_same_result() -> None:
    bars = generate("SPY", seed=2, start=date(2024, 1, 2), end=date(2024, 2, 29))
    assert run_backtest(bars, BUSY).report == run_backtest(bars, BUSY).report


def test_zero_drift_market_is_close_to_flat() -> None:
    """No look-ahead on a drift-free market: the rule cannot make absurd returns."""
    bars = generate("SPY", seed=13, start=date(2023, 1, 3), end=date(2023, 12, 29))
    report = run_backtest(
        bars, replace(BUSY, strategy=replace(BUSY.strategy, position_pct=1.0))
    ).report
    assert abs(report.total_return) < 0.25


def test_golden_seeded_run() -> None:
    """The figures of one seeded run, pinned: any change to the strategy, the execution
    convention, costs or the synthetic market shows up here. (Floats to 12 significant digits,
    so a last-bit difference in numpy's vector maths on another CPU does not matter.)"""
    from tapewatch.engine.settings.config import ExecutionConfig

    config = EngineConfig(execution=ExecutionConfig(slippage_bps=1, commission_per_order=0.5))
    bars = generate("SPY", seed=7, start=date(2024, 1, 2), end=date(2024, 6, 28))
    report = run_backtest(bars, config.validate()).report
    assert (report.bars, report.trades, report.fees) == (9672, 25, 25.0)
    assert report.start == "2024-01-02T14:30:00+00:00"
    assert report.end == "2024-06-28T20:00:00+00:00"
    golden = {
        "end_equity": 100026.8086656464,
        "total_return": 0.0002680866564639395,
        "cagr": 0.0005494747349883422,
        "max_drawdown": 0.0004695802891481975,
        "sharpe": 0.5441198334509312,
        "win_rate": 0.6,
        "avg_trade": 1.0723466258565804,
        "exposure": 0.09966914805624483,
    }
    for key, value in golden.items():
        assert getattr(report, key) == pytest.approx(value, rel=1e-12), key
