"""Streaming indicators: O(1) per bar, the same objects in live trading and in the backtester.

This is the hot path of a million-bar backtest, so updates use plain floats on ``__slots__``
objects and a ring list; no numpy per update. Rolling sums are kept with a compensated (TwoSum)
error term and re-summed exactly with ``math.fsum`` every time the ring wraps, so they do not
drift over long runs. The RSI counts the non-zero gains and losses in its window, so a window
without a single loss reports exactly 100.0 and a flat window exactly 50.0.
"""

from __future__ import annotations

from collections.abc import Iterable
from math import fsum

RSI_METHODS = ("sma", "wilder")


def _check_period(period: int) -> int:
    if isinstance(period, bool) or not isinstance(period, int) or period < 1:
        raise ValueError(f"indicator period must be a whole number of at least 1 (got {period!r})")
    return period


def _exact_sum(values: list[float]) -> tuple[float, float]:
    """The sum as a float plus the (tiny) remainder it rounded away, both from exact ``fsum``.

    Keeping the remainder matters: after a 1e9 outlier leaves the window, the rounding of a
    sum that once included it would otherwise stay behind as ~1e-7 of error.
    """
    total = fsum(values)
    return total, fsum([*values, -total])


class SMA:
    """Simple moving average of the last ``period`` values."""

    __slots__ = ("_buf", "_comp", "_count", "_idx", "_period", "_sum", "_value")

    def __init__(self, period: int) -> None:
        self._period = _check_period(period)
        self._buf: list[float] = [0.0] * period
        self.reset()

    def reset(self) -> None:
        """Forget every value seen (the window starts empty again)."""
        self._idx = 0
        self._count = 0
        self._sum = 0.0
        self._comp = 0.0
        self._value: float | None = None

    @property
    def period(self) -> int:
        return self._period

    @property
    def value(self) -> float | None:
        """The current average, or None until ``period`` values have been seen."""
        return self._value

    @property
    def ready(self) -> bool:
        return self._value is not None

    def update(self, value: float) -> float | None:
        """Add one value; returns the new average (None while warming up)."""
        buf = self._buf
        i = self._idx
        s = self._sum
        c = self._comp
        # TwoSum: t is the rounded sum, the exact rounding error goes into c.
        t = s + value
        z = t - s
        c += (s - (t - z)) + (value - z)
        s = t
        period = self._period
        full = self._count == period
        if full:
            old = -buf[i]
            t = s + old
            z = t - s
            c += (s - (t - z)) + (old - z)
            s = t
        else:
            self._count += 1
            full = self._count == period
        buf[i] = value
        i += 1
        if i == period:
            i = 0
            if full:
                # Exact re-sum once per window: bounds any residual drift to one window's worth.
                s, c = _exact_sum(buf)
        self._idx = i
        self._sum = s
        self._comp = c
        if full:
            result: float | None = (s + c) / period
            self._value = result
            return result
        return None


def _rsi_from(gain: float, loss: float) -> float:
    """RSI from mean gain and mean loss; exact 100 with no losses, exact 50 with no change."""
    if loss <= 0.0:
        return 100.0 if gain > 0.0 else 50.0
    return 100.0 - 100.0 / (1.0 + gain / loss)


class RSI:
    """Relative Strength Index over the last ``period`` price changes (needs period+1 prices).

    ``method="sma"`` averages gains and losses over the window; ``"wilder"`` seeds with the
    simple mean of the first ``period`` changes and then smooths: avg = (prev*(N-1) + x) / N.
    """

    __slots__ = (
        "_buf",
        "_count",
        "_gain",
        "_gain_comp",
        "_gains_n",
        "_idx",
        "_loss",
        "_loss_comp",
        "_losses_n",
        "_method",
        "_period",
        "_prev",
        "_value",
        "_wilder",
    )

    def __init__(self, period: int, method: str = "sma") -> None:
        self._period = _check_period(period)
        if method not in RSI_METHODS:
            raise ValueError(f"RSI method must be 'sma' or 'wilder' (got {method!r})")
        self._method = method
        self._wilder = method == "wilder"
        self._buf: list[float] = [0.0] * period
        self.reset()

    def reset(self) -> None:
        """Forget every price seen."""
        self._prev: float | None = None
        self._idx = 0
        self._count = 0  # changes seen so far, capped at period
        self._gain = 0.0  # sma: rolling sum of gains; wilder: average gain
        self._gain_comp = 0.0
        self._gains_n = 0  # sma: non-zero gains in the window
        self._loss = 0.0
        self._loss_comp = 0.0
        self._losses_n = 0
        self._value: float | None = None

    @property
    def period(self) -> int:
        return self._period

    @property
    def method(self) -> str:
        return self._method

    @property
    def value(self) -> float | None:
        """The current RSI in [0, 100], or None until period+1 prices have been seen."""
        return self._value

    @property
    def ready(self) -> bool:
        return self._value is not None

    def update(self, value: float) -> float | None:
        """Add one price; returns the new RSI (None while warming up)."""
        prev = self._prev
        self._prev = value
        if prev is None:
            return None
        change = value - prev
        if self._wilder:
            return self._update_wilder(change)
        return self._update_sma(change)

    def _update_sma(self, change: float) -> float | None:
        buf = self._buf
        i = self._idx
        period = self._period
        gs, gc, ls, lc = self._gain, self._gain_comp, self._loss, self._loss_comp
        full = self._count == period
        if full:
            old = buf[i]
            if old > 0.0:  # the leaving gain: gs += -old, error into gc (TwoSum)
                self._gains_n -= 1
                x = -old
                t = gs + x
                z = t - gs
                gc += (gs - (t - z)) + (x - z)
                gs = t
            elif old < 0.0:  # the leaving loss: ls += old
                self._losses_n -= 1
                t = ls + old
                z = t - ls
                lc += (ls - (t - z)) + (old - z)
                ls = t
        else:
            self._count += 1
            full = self._count == period
        if change > 0.0:
            self._gains_n += 1
            t = gs + change
            z = t - gs
            gc += (gs - (t - z)) + (change - z)
            gs = t
        elif change < 0.0:
            self._losses_n += 1
            x = -change
            t = ls + x
            z = t - ls
            lc += (ls - (t - z)) + (x - z)
            ls = t
        buf[i] = change
        i += 1
        if i == period:
            i = 0
            if full:
                # Exact re-sum once per window: bounds any residual drift to one window's worth.
                gs, gc = _exact_sum([x for x in buf if x > 0.0])
                ls, lc = _exact_sum([-x for x in buf if x < 0.0])
        self._idx = i
        # A window without a gain (loss) has a sum of exactly zero: drop any rounding residue.
        if not self._gains_n:
            gs = gc = 0.0
        if not self._losses_n:
            ls = lc = 0.0
        self._gain, self._gain_comp, self._loss, self._loss_comp = gs, gc, ls, lc
        if not full:
            return None
        gain = gs + gc
        loss = ls + lc
        if loss > 0.0:
            result = 100.0 - 100.0 / (1.0 + gain / loss)
        else:
            result = 100.0 if gain > 0.0 else 50.0
        self._value = result
        return result

    def _update_wilder(self, change: float) -> float | None:
        gain = change if change > 0.0 else 0.0
        loss = -change if change < 0.0 else 0.0
        period = self._period
        if self._count == period:
            g = (self._gain * (period - 1) + gain) / period
            lo = (self._loss * (period - 1) + loss) / period
        else:
            # Seed phase: collect the first N changes, then start from their simple mean.
            self._buf[self._count] = change
            self._count += 1
            if self._count < period:
                return None
            buf = self._buf
            g = fsum([x for x in buf if x > 0.0]) / period
            lo = -fsum([x for x in buf if x < 0.0]) / period
        self._gain = g
        self._loss = lo
        result = _rsi_from(g, lo)
        self._value = result
        return result


def sma_series(values: Iterable[float], period: int) -> list[float | None]:
    """SMA of a whole series (for charts); runs the streaming SMA so both agree exactly."""
    update = SMA(period).update
    return [update(v) for v in values]


def rsi_series(values: Iterable[float], period: int, method: str = "sma") -> list[float | None]:
    """RSI of a whole series (for charts); runs the streaming RSI so both agree exactly."""
    update = RSI(period, method).update
    return [update(v) for v in values]
