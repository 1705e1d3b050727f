"""A close equal to its SMA is a tie, decided exactly: ``close > SMA`` is false, so no buy.

A running sum is off by a last bit now and then (376.24999999999994 for a mean of exactly
376.25), which made a tie look like ``close > SMA`` and bought. Prices are decimals, so the
SMA recomputes the mean exactly when it lands next to the close.
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from tapewatch.engine.strategy.indicators import SMA
from tapewatch.engine.strategy.rsi_sma import rule_action

cents = st.integers(min_value=1_000, max_value=9_999_999)  # $10.00 .. $99,999.99


def feed(sma: SMA, values: list[float]) -> float | None:
    out = None
    for value in values:
        out = sma.update(value)
    return out


@settings(max_examples=300, deadline=None)
@given(
    history=st.lists(cents, max_size=120),
    others=st.lists(cents, min_size=1, max_size=49),
)
def test_a_close_equal_to_the_exact_mean_reads_as_equal(
    history: list[int], others: list[int]
) -> None:
    """A window of cents whose newest close is exactly the window's mean."""
    others = [others[0] + (-sum(others)) % len(others), *others[1:]]  # sum divisible by n - 1
    tie = sum(others) // len(others)  # then (sum + tie) / n == tie exactly
    sma = SMA(len(others) + 1)
    mean = feed(sma, [c / 100 for c in [*history, *others, tie]])
    assert Decimal(tie) / 100 == sum(Decimal(c) for c in [*others, tie]) / 100 / (len(others) + 1)
    assert mean == tie / 100
    assert rule_action(10.0, mean, tie / 100, 0.0, 30.0, 70.0) == "hold"  # a tie never buys


def test_the_example_from_real_data() -> None:
    window = [375.57, 373.75, 377.96, 371.6]  # mean with 374.72 added: exactly 374.72
    sma = SMA(5)
    assert feed(sma, [*window, 374.72]) == 374.72
    assert rule_action(12.0, 374.72, 374.72, 0.0, 30.0, 70.0) == "hold"


def test_a_close_a_cent_above_its_mean_still_buys() -> None:
    sma = SMA(4)
    mean = feed(sma, [100.0, 100.0, 100.0, 100.04])  # mean 100.01, close 100.04
    assert mean == 100.01
    assert rule_action(12.0, mean, 100.04, 0.0, 30.0, 70.0) == "buy"
