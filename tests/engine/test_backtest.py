"""The backtester: the lean loop equals the full engine path, determinism, a golden run."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import numpy as np
import pytest

from engine.backtest import run_backtest
from engine.config import EngineConfig, ExecutionConfig, RiskConfig, StrategyConfig
from engine.feeds.bars import BarArrays
from engine.feeds.synthetic import generate

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
