"""Streaming indicators: O(1) per bar, the same objects in live trading and in the backtester.

This is the hot path of a million-bar backtest, so ``update`` is one short method on a
``__slots__`` object with a ring list; anything unusual (warm-up, the ring wrapping, a window
holding a negative value, a running sum that fell too far) is left to a slow path.

Why plain running sums are exact enough. The sums are of non-negative terms (an SMA of prices,
the RSI's gains and its losses). On every ``_WRAPS_PER_RESUM``-th wrap of the ring a sum is
re-summed exactly (``math.fsum``); on the other wraps its value is only noted as a checkpoint.
Every term that leaves the window was in the last exact sum or a checkpoint, so no partial sum
since exceeds their total plus the current sum. The fast path also demands that the sum stays
at or above ``max(exact sum, checkpoints) / _SLACK``, and re-sums exactly the moment it falls
below (a huge value left, the last loss left an RSI window). So with u = 2**-53, W wraps per
re-sum and period p, the relative error is about ``2u * W * p * (W * _SLACK + 1)`` (1e-11 for
p = 50; ~1e-15 in practice), and a sum over a window without a non-zero term is exactly 0: an
RSI window without losses reads exactly 100, without gains exactly 0, a flat one exactly 50.
Windows with negative values (an SMA of returns) keep a TwoSum-compensated sum instead.

Why ties are decided exactly. The strategy asks ``close > SMA`` and the close is the SMA's own
newest value; when the two are equal, a last-bit error in the running sum would buy on a tie
(376.24999999999994 against a close of 376.25). So when the fast mean lands within
``_TIE_BAND`` (relative, well above the sums' error bound) of the newest value, the mean is
recomputed exactly from the window in decimal — each price as the decimal it was written as,
its shortest round-trip ``repr`` — and correctly rounded. Near ties are rare (a few per
hundred thousand bars), so the hot path pays one subtraction and two comparisons.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Context, Decimal
from math import fsum

RSI_METHODS = ("sma", "wilder")

_SLACK = 64.0
"""How far a running sum may fall below its exact value or checkpoints before it is re-summed.

A power of two, so the floor ``S / SLACK`` is exact.
"""

_WRAPS_PER_RESUM = 4
"""Ring wraps per exact re-sum: a re-sum costs several fast updates, so not on every wrap."""

_TIE_BAND = 1e-9
"""Relative distance of the fast mean from the newest value inside which it is recomputed
exactly (the running sums' relative error stays below about 1e-11)."""

_EXACT = Context(prec=60)
"""Decimal arithmetic wide enough that a window's sum of prices is exact."""

_NAN = float("nan")
"""A floor no sum is ``>=`` to: sends every update to the slow path (warm-up, signed windows)."""


def _check_period(period: int) -> int:
    if isinstance(period, bool) or not isinstance(period, int) or period < 1:
        raise ValueError(f"indicator period must be a whole number of at least 1 (got {period!r})")
    return period


def _fsum(values: list[float]) -> float:
    """``math.fsum`` (correctly rounded), degrading to ``sum`` where fsum refuses (inf - inf)."""
    try:
        return fsum(values)
    except (ValueError, OverflowError):
        return sum(values)


def _decimal_sum(values: list[float]) -> Decimal:
    """The exact sum of ``values`` read as the decimals they print as (``repr``)."""
    total = Decimal(0)
    for value in values:
        total = _EXACT.add(total, Decimal(repr(value)))
    return total


def exact_mean(window: list[float]) -> float:
    """The mean of ``window`` computed exactly in decimal (each value as the decimal it prints
    as), correctly rounded to a float: the SMA's tie rule, exposed for the vectorised backtest."""
    return float(_EXACT.divide(_decimal_sum(window), Decimal(len(window))))


def _exact_sum(values: list[float]) -> tuple[float, float]:
    """The sum as a float plus the (tiny) remainder it rounded away, both from exact ``fsum``.

    Only signed windows use the remainder: their compensated running sum continues from it.
    """
    total = _fsum(values)
    return total, _fsum([*values, -total])


class SMA:
    """Simple moving average of the last ``period`` values."""

    __slots__ = (
        "_buf",
        "_comp",
        "_count",
        "_floor",
        "_idx",
        "_n",
        "_negatives",
        "_period",
        "_sum",
        "_wraps_left",
    )

    def __init__(self, period: int) -> None:
        self._period = _check_period(period)
        self._n = float(period)
        self._buf: list[float] = [0.0] * period
        self.reset()

    def reset(self) -> None:
        """Forget every value seen (the window starts empty again)."""
        self._buf[:] = [0.0] * self._period
        self._idx = 0
        self._count = 0  # values seen, capped at period
        self._sum = 0.0
        self._comp = 0.0  # remainder of the sum; only non-zero in a window with a negative value
        self._negatives = 0  # negative values in the full window
        self._floor = _NAN  # the fast path needs sum >= floor (NaN: never)
        self._wraps_left = 0  # checkpoints before the next exact re-sum

    @property
    def period(self) -> int:
        return self._period

    @property
    def value(self) -> float | None:
        """The current average, or None until ``period`` values have been seen."""
        if self._count < self._period:
            return None
        return (self._sum + self._comp) / self._n

    @property
    def ready(self) -> bool:
        return self._count == self._period

    def update(self, value: float) -> float | None:
        """Add one value; returns the new average (None while warming up)."""
        buf = self._buf
        i = self._idx
        old = buf[i]
        buf[i] = value
        s = self._sum + (value - old)
        i += 1
        if s >= self._floor and value >= 0.0 and i < self._period:
            self._idx = i
            self._sum = s
            mean = s / self._n
            band = value * _TIE_BAND
            if -band <= mean - value <= band:
                return self._exact_mean()
            return mean
        mean_or_none = self._settle(i, s, old, value)
        if mean_or_none is not None and abs(mean_or_none - value) <= abs(value) * _TIE_BAND:
            return self._exact_mean()
        return mean_or_none

    def _exact_mean(self) -> float:
        """The window's mean computed exactly in decimal, correctly rounded to a float."""
        return exact_mean(self._buf)

    def _settle(self, i: int, s: float, old: float, value: float) -> float | None:
        """The slow path: warm-up, the ring wrapping, a fallen sum, or a signed window."""
        period = self._period
        buf = self._buf
        if self._count < period:
            # Warming up (the ring still holds zeros): a plain running sum until it fills.
            count = self._count + 1
            self._count = count
            if count < period:
                self._idx = i
                self._sum = s
                return None
            negatives = sum(1 for x in buf if x < 0.0)
        elif s >= self._floor and value >= 0.0 and self._wraps_left:
            # Only the ring wrapped: a checkpoint raises the floor (see the module docstring).
            self._wraps_left -= 1
            self._idx = 0
            self._sum = s
            floor = s / _SLACK
            if floor > self._floor:
                self._floor = floor
            return s / self._n
        else:
            negatives = self._negatives + (value < 0.0) - (old < 0.0)
        if i == period:
            i = 0
        self._idx = i
        if negatives and self._negatives and i:
            # A window that was and stays signed, no wrap: compensated (TwoSum) add and remove.
            s = self._sum
            c = self._comp
            for x in (value, -old):
                t = s + x
                z = t - s
                c += (s - (t - z)) + (x - z)
                s = t
            self._floor = _NAN
        elif negatives:
            s, c = _exact_sum(buf)
            self._floor = _NAN
        else:
            s = _fsum(buf)
            c = 0.0
            self._floor = s / _SLACK
            self._wraps_left = _WRAPS_PER_RESUM - 1
        self._negatives = negatives
        self._sum = s
        self._comp = c
        return (s + c) / self._n


def _rsi_from(gain: float, loss: float) -> float:
    """RSI from mean gain and mean loss; exact 100 with no losses, exact 50 with no change."""
    if loss <= 0.0:
        return 100.0 if gain > 0.0 else 50.0
    return 100.0 - 100.0 / (1.0 + gain / loss)


class RSI:
    """Relative Strength Index over the last ``period`` price changes (needs period+1 prices).

    ``method="sma"`` averages gains and losses over the window; ``"wilder"`` seeds with the
    simple mean of the first ``period`` changes and then smooths: avg = (prev*(N-1) + x) / N.
    The sma form computes ``100 * gain / (gain + loss)`` (the same value as 100 - 100 / (1 + RS),
    and exactly 100 or 0 on one-sided windows). ``RSI(n, "wilder")`` is an instance of a private
    subclass with its own ``update``, so neither form pays for a dispatch on every bar.
    """

    __slots__ = (
        "_buf",
        "_count",
        "_gain",
        "_gain_floor",
        "_idx",
        "_loss",
        "_loss_floor",
        "_method",
        "_period",
        "_prev",
        "_wraps_left",
    )

    def __new__(cls, period: int = 1, method: str = "sma") -> RSI:
        # Defaults only so that copy/pickle (which call ``cls.__new__(cls)``) keep working.
        if cls is RSI and method == "wilder":
            return object.__new__(_WilderRSI)
        return object.__new__(cls)

    def __init__(self, period: int, method: str = "sma") -> None:
        self._period = _check_period(period)
        if method not in RSI_METHODS:
            raise ValueError(f"RSI method must be 'sma' or 'wilder' (got {method!r})")
        self._method = method
        self._buf: list[float] = [0.0] * period
        self.reset()

    def reset(self) -> None:
        """Forget every price seen."""
        self._buf[:] = [0.0] * self._period
        self._prev = _NAN  # the first change is NaN and is dropped by the slow path
        self._idx = 0
        self._count = 0  # prices seen, capped at period + 1
        self._gain = 0.0  # sma: rolling sum of gains; wilder: average gain
        self._loss = 0.0  # sma: rolling sum of losses (positive); wilder: average loss
        self._gain_floor = _NAN  # the fast path needs gain >= floor (NaN: never)
        self._loss_floor = _NAN
        self._wraps_left = 0  # checkpoints before the next exact re-sum

    @property
    def period(self) -> int:
        return self._period

    @property
    def method(self) -> str:
        return self._method

    @property
    def value(self) -> float | None:
        """The current RSI in [0, 100], or None until period+1 prices have been seen."""
        if self._count <= self._period:
            return None
        gain = self._gain
        total = gain + self._loss
        return gain / total * 100.0 if total else 50.0

    @property
    def ready(self) -> bool:
        return self._count > self._period

    def update(self, value: float) -> float | None:
        """Add one price; returns the new RSI (None while warming up)."""
        change = value - self._prev
        self._prev = value
        buf = self._buf
        i = self._idx
        old = buf[i]
        buf[i] = change
        gain = self._gain
        loss = self._loss
        if old > 0.0:
            gain -= old
        else:
            loss += old
        if change > 0.0:
            gain += change
        else:
            loss -= change
        i += 1
        if gain >= self._gain_floor and loss >= self._loss_floor and i < self._period:
            self._idx = i
            self._gain = gain
            self._loss = loss
            # gain / (gain + loss): exactly 1 without losses and exactly 0 without gains.
            total = gain + loss
            return gain / total * 100.0 if total else 50.0
        return self._settle(i, gain, loss, old)

    def _settle(self, i: int, gain: float, loss: float, old: float) -> float | None:
        """The slow path: the first price, warm-up, the ring wrapping, or a fallen sum."""
        period = self._period
        buf = self._buf
        count = self._count
        if count <= period:
            if not count:  # the first price: no change yet, undo the NaN written to the ring
                buf[0] = old
                self._count = 1
                return None
            count += 1
            self._count = count
            if count <= period:
                self._idx = i
                self._gain = gain
                self._loss = loss
                return None
        elif gain >= self._gain_floor and loss >= self._loss_floor and self._wraps_left:
            # Only the ring wrapped: a checkpoint raises the floors (see the module docstring).
            self._wraps_left -= 1
            self._idx = 0
            self._gain = gain
            self._loss = loss
            floor = gain / _SLACK
            if floor > self._gain_floor:
                self._gain_floor = floor
            floor = loss / _SLACK
            if floor > self._loss_floor:
                self._loss_floor = floor
            total = gain + loss
            return gain / total * 100.0 if total else 50.0
        if i == period:
            i = 0
        self._idx = i
        gain = _fsum([x for x in buf if x > 0.0])
        loss = -_fsum([x for x in buf if x < 0.0])
        self._gain = gain
        self._loss = loss
        self._gain_floor = gain / _SLACK
        self._loss_floor = loss / _SLACK
        self._wraps_left = _WRAPS_PER_RESUM - 1
        total = gain + loss
        return gain / total * 100.0 if total else 50.0


class _WilderRSI(RSI):
    """``RSI(n, "wilder")``: the seed's simple means, then Wilder's smoothing."""

    __slots__ = ()

    @property
    def value(self) -> float | None:
        """The current RSI in [0, 100], or None until period+1 prices have been seen."""
        if self._count <= self._period:
            return None
        return _rsi_from(self._gain, self._loss)

    def update(self, value: float) -> float | None:
        """Add one price; returns the new RSI (None while warming up)."""
        change = value - self._prev
        self._prev = value
        period = self._period
        if self._count > period:
            keep = period - 1
            if change > 0.0:
                gain = (self._gain * keep + change) / period
                loss = self._loss * keep / period
            elif change < 0.0:
                gain = self._gain * keep / period
                loss = (self._loss * keep - change) / period
            else:  # no change (or a NaN one): both averages decay
                gain = self._gain * keep / period
                loss = self._loss * keep / period
        else:
            # Seed phase: collect the first N changes, then start from their simple mean.
            count = self._count
            self._count = count + 1
            if not count:
                return None
            buf = self._buf
            buf[count - 1] = change
            if count < period:
                return None
            gain = fsum([x for x in buf if x > 0.0]) / period
            loss = -fsum([x for x in buf if x < 0.0]) / period
        self._gain = gain
        self._loss = loss
        return _rsi_from(gain, loss)


def sma_series(values: Iterable[float], period: int) -> list[float | None]:
    """SMA of a whole series (for charts); runs the streaming SMA so both agree exactly."""
    update = SMA(period).update
    return [update(v) for v in values]


def rsi_series(values: Iterable[float], period: int, method: str = "sma") -> list[float | None]:
    """RSI of a whole series (for charts); runs the streaming RSI so both agree exactly."""
    update = RSI(period, method).update
    return [update(v) for v in values]
