"""Breakers in a backtest behave as in a supervised session, and the report says what they did.

A hole in history is not a silent feed (no stale-data trip); the drawdown breaker stops entries
but lets the strategy's exit through unless ``drawdown_action = "halt"``, and with ``"flatten"``
closes the position at once; a trip re-arms at the next session, as the operator's morning reset
would; the report lists each trip and counts the denied orders. The fast loop and the full
engine path agree on every case.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import numpy as np
import pytest

from tapewatch.engine.backtest.runner import BacktestResult, run_backtest
from tapewatch.engine.market.bars import BarArrays, ns_from_datetime
from tapewatch.engine.market.synthetic import generate
from tapewatch.engine.model.types import Bar, Side
from tapewatch.engine.settings.config import ConfigError, EngineConfig, RiskConfig
from tests.helpers import T0, bars_from_closes, small_config

ENTRY = [100, 101, 102, 103, 104, 110, 109.5, 109, 108.8]  # the strategy buys at the last
CRASH = [109.0, 98.0, 97.0]  # -10% with the whole account in: the drawdown breaker trips
RALLY = [99.0, 102.0, 105.0, 108.0]  # RSI > 70: the strategy's exit signal


def arrays(bars: list[Bar]) -> BarArrays:
    return BarArrays(
        "SPY",
        np.array([ns_from_datetime(b.ts) for b in bars], dtype=np.int64),
        np.array([b.open for b in bars]),
        np.array([b.high for b in bars]),
        np.array([b.low for b in bars]),
        np.array([b.close for b in bars]),
        np.array([b.volume for b in bars]),
    )


def config(action: str = "reduce") -> EngineConfig:
    base = small_config(position_pct=1.0)
    return replace(base, risk=replace(base.risk, drawdown_action=action)).validate()


def both(bars: BarArrays, cfg: EngineConfig) -> BacktestResult:
    """The fast loop's result, after checking the full engine path gives the same."""
    lean = run_backtest(bars, cfg)
    full = run_backtest(bars, cfg, lean=False)
    assert lean.fills == full.fills
    assert lean.report == full.report
    return lean


def crash_day() -> list[Bar]:
    return bars_from_closes([*ENTRY, *CRASH, *RALLY])


def next_day(closes: list[float]) -> list[Bar]:
    return bars_from_closes(closes, start=T0 + timedelta(days=1))


def test_by_default_a_drawdown_trip_stops_entries_but_the_exit_goes_through() -> None:
    result = both(arrays(crash_day()), config())
    sides = [f.side for f in result.fills]
    assert sides == [Side.BUY, Side.SELL]  # the exit was not blocked: the loss is taken
    (trip,) = result.report.breaker_trips
    assert trip.breaker == "drawdown" and "drawdown" in trip.reason
    assert result.report.orders_denied == 0


def test_halt_blocks_the_exit_and_counts_the_denial() -> None:
    result = both(arrays(crash_day()), config("halt"))
    assert [f.side for f in result.fills] == [Side.BUY]  # held to the end of the day
    assert result.report.orders_denied >= 1
    assert [t.breaker for t in result.report.breaker_trips] == ["drawdown"]


def test_flatten_closes_the_position_at_the_next_open_after_the_trip() -> None:
    bars = crash_day()
    result = both(arrays(bars), config("flatten"))
    buy, sell = result.fills
    assert buy.side is Side.BUY and sell.side is Side.SELL
    trip_bar = len(ENTRY) + 1  # the 98.0 bar: equity is 10% down at its close
    assert sell.price == pytest.approx(bars[trip_bar + 1].open, rel=1e-3)


def test_a_halt_re_arms_at_the_next_session_and_trading_resumes() -> None:
    bars = [*crash_day(), *next_day([108.0, 110.0, 112.0, 114.0])]
    result = both(arrays(bars), config("halt"))
    sides = [f.side for f in result.fills]
    # denied on day one; the next day's first bar re-arms it and the exit (RSI > 70) goes
    assert sides == [Side.BUY, Side.SELL]
    assert result.fills[1].ts > T0 + timedelta(days=1)
    assert result.report.orders_denied >= 1


def test_a_hole_in_history_is_not_a_silent_feed() -> None:
    bars = generate("SPY", seed=7, start=date(2024, 1, 2), end=date(2024, 2, 28))
    cut = 300
    holed = BarArrays(
        "SPY",
        *(
            np.delete(getattr(bars, name), [cut, cut + 1, cut + 2])
            for name in ("ts_ns", "open", "high", "low", "close", "volume")
        ),
    )
    cfg = EngineConfig(risk=RiskConfig(stale_bars=2.0)).validate()
    result = both(holed, cfg)
    assert not [t for t in result.report.breaker_trips if t.breaker == "stale"]
    after = ns_from_datetime(holed.bar(cut).ts)
    assert any(ns_from_datetime(f.ts) > after for f in result.fills), "trading went on"


def test_the_report_carries_trips_and_denials_in_json() -> None:
    report = both(arrays(crash_day()), config("halt")).report
    payload = report.as_dict()
    (trip,) = payload["breaker_trips"]  # type: ignore[misc]
    assert set(trip) == {"at", "breaker", "reason"} and trip["breaker"] == "drawdown"
    assert payload["orders_denied"] == report.orders_denied >= 1


def test_an_unknown_drawdown_action_is_one_clear_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        RiskConfig(drawdown_action="panic").validate()
    assert "reduce" in str(info.value) and "halt" in str(info.value)
