"""The RSI/SMA rule: every condition toggled, warm-up, thresholds and entry sizing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest

from tapewatch.engine.model.events import SignalEvaluated
from tapewatch.engine.model.types import Bar
from tapewatch.engine.settings.config import StrategyConfig
from tapewatch.engine.strategy.indicators import RSI
from tapewatch.engine.strategy.rsi_sma import RsiSmaStrategy

T0 = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
NOW = datetime(2024, 3, 4, 15, 0, 1, tzinfo=UTC)

# Closes 10, 9, 10.5 with RSI(2)/SMA(3): changes -1, +1.5 -> RSI 60; SMA 9.833 < close 10.5.
DIP_IN_UPTREND = [10.0, 9.0, 10.5]
# Closes 12, 10, 11: RSI 33.3, SMA 11 == close (not strictly above).
CLOSE_ON_SMA = [12.0, 10.0, 11.0]


def bar(close: float, i: int = 0, symbol: str = "SPY") -> Bar:
    ts = T0 + timedelta(minutes=5 * i)
    return Bar(symbol, ts, close, close, close, close, 1000.0)


def cfg(**overrides: object) -> StrategyConfig:
    base: dict[str, object] = {"rsi_period": 2, "sma_period": 3}
    base.update(overrides)
    return StrategyConfig(**base).validate()  # type: ignore[arg-type]


def last_signal(closes: list[float], position_qty: float, **overrides: object) -> SignalEvaluated:
    strategy = RsiSmaStrategy(cfg(**overrides))
    for i, close in enumerate(closes[:-1]):
        strategy.warm(bar(close, i))
    return strategy.evaluate(bar(closes[-1], len(closes) - 1), position_qty, ts=NOW)


def test_signal_carries_the_bar_and_indicator_values() -> None:
    sig = last_signal(DIP_IN_UPTREND, 0.0, rsi_oversold=65, rsi_overbought=90)
    assert sig.ts == NOW
    assert sig.symbol == "SPY"
    assert sig.bar_ts == T0 + timedelta(minutes=10)
    assert sig.close == 10.5
    assert sig.rsi == pytest.approx(60.0)
    assert sig.sma == pytest.approx(29.5 / 3)


@pytest.mark.parametrize(
    ("closes", "qty", "oversold", "overbought", "action", "flags"),
    [
        # all three entry conditions hold
        (DIP_IN_UPTREND, 0.0, 65, 90, "buy", (True, True, True, False)),
        # RSI not below the oversold threshold (and exactly at it: strict)
        (DIP_IN_UPTREND, 0.0, 55, 90, "hold", (False, True, True, False)),
        (DIP_IN_UPTREND, 0.0, 60, 90, "hold", (False, True, True, False)),
        # close equal to the SMA is not above it
        (CLOSE_ON_SMA, 0.0, 40, 90, "hold", (True, False, True, False)),
        # already long: no second entry
        (DIP_IN_UPTREND, 5.0, 65, 90, "hold", (True, True, False, False)),
        # binary residue of a closed position counts as flat
        (DIP_IN_UPTREND, 1e-13, 65, 90, "buy", (True, True, True, False)),
        # overbought while long: sell; exactly at the threshold: hold
        (DIP_IN_UPTREND, 5.0, 20, 59, "sell", (False, True, False, True)),
        (DIP_IN_UPTREND, 5.0, 20, 60, "hold", (False, True, False, False)),
        # overbought but nothing (or a short) to sell
        (DIP_IN_UPTREND, 0.0, 20, 59, "hold", (False, True, True, True)),
        (DIP_IN_UPTREND, -5.0, 20, 59, "hold", (False, True, False, True)),
    ],
)
def test_rule_table(
    closes: list[float],
    qty: float,
    oversold: float,
    overbought: float,
    action: str,
    flags: tuple[bool, bool, bool, bool],
) -> None:
    sig = last_signal(closes, qty, rsi_oversold=oversold, rsi_overbought=overbought)
    assert sig.action == action
    assert (sig.rsi_oversold, sig.close_above_sma, sig.flat, sig.rsi_overbought) == flags


def test_warm_up_holds_until_both_indicators_are_ready() -> None:
    strategy = RsiSmaStrategy(cfg(sma_period=5, rsi_oversold=65, rsi_overbought=90))
    signals = [strategy.evaluate(bar(c, i), 0.0, ts=NOW) for i, c in enumerate(DIP_IN_UPTREND)]
    assert [s.action for s in signals] == ["hold"] * 3
    assert signals[0].rsi is None and signals[0].sma is None
    assert not signals[0].rsi_oversold and not signals[0].rsi_overbought
    # RSI is ready (60, "oversold" at 65) but the SMA is not: still hold, flag reported.
    assert signals[2].rsi == pytest.approx(60.0) and signals[2].sma is None
    assert signals[2].rsi_oversold and not signals[2].close_above_sma
    assert not strategy.ready
    strategy.evaluate(bar(10.6, 3), 0.0, ts=NOW)
    strategy.evaluate(bar(10.7, 4), 0.0, ts=NOW)
    assert strategy.ready


def test_no_sell_while_warming_up_even_when_long() -> None:
    strategy = RsiSmaStrategy(cfg(sma_period=5, rsi_oversold=20, rsi_overbought=50))
    signals = [strategy.evaluate(bar(c, i), 3.0, ts=NOW) for i, c in enumerate(DIP_IN_UPTREND)]
    assert signals[-1].rsi_overbought and signals[-1].action == "hold"


def test_warm_feeds_indicators_like_evaluate() -> None:
    warmed = RsiSmaStrategy(cfg())
    evaluated = RsiSmaStrategy(cfg())
    for i, c in enumerate([10.0, 11.0, 10.5, 10.8]):
        warmed.warm(bar(c, i))
        evaluated.evaluate(bar(c, i), 0.0, ts=NOW)
    assert warmed.rsi == evaluated.rsi and warmed.sma == evaluated.sma
    assert warmed.ready


def test_reset_clears_indicators() -> None:
    strategy = RsiSmaStrategy(cfg())
    for i, c in enumerate(DIP_IN_UPTREND):
        strategy.warm(bar(c, i))
    assert strategy.ready
    strategy.reset()
    assert not strategy.ready and strategy.rsi is None and strategy.sma is None


def test_uses_the_configured_rsi_method() -> None:
    closes = [10.0, 11.0, 10.5, 10.9, 10.2, 10.4, 10.1]
    strategy = RsiSmaStrategy(cfg(rsi_method="wilder"))
    wilder, plain = RSI(2, "wilder"), RSI(2)
    for i, c in enumerate(closes):
        strategy.warm(bar(c, i))
        wilder.update(c)
        plain.update(c)
    assert strategy.rsi == wilder.value
    assert strategy.rsi != plain.value


def test_entry_qty_floors_to_nine_decimals() -> None:
    strategy = RsiSmaStrategy(cfg(position_pct=0.02))
    qty = strategy.entry_qty(100_000.0, 333.33)  # 2000 / 333.33 = 6.0000600006...
    assert qty == 6.00006
    assert Fraction(qty) * Fraction(333.33) <= 2000


def test_entry_qty_never_rounds_up() -> None:
    strategy = RsiSmaStrategy(cfg(position_pct=1.0))
    assert strategy.entry_qty(2.0, 3.0) == 0.666666666  # rounding would give ...667
    assert strategy.entry_qty(0.3, 0.1) == 3.0  # binary noise 2.9999999999999996 is still 3


def test_entry_qty_is_zero_for_nonsense_inputs() -> None:
    strategy = RsiSmaStrategy(cfg())
    assert strategy.entry_qty(100_000.0, 0.0) == 0.0
    assert strategy.entry_qty(-5.0, 100.0) == 0.0
