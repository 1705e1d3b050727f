"""Per-update cost of the streaming SMA/RSI: the current engine.indicators vs the previous design.

The previous design (a TwoSum compensation term on every add and remove, an exact re-sum every
wrap, non-zero counters, RSI dispatching to a method per update) is frozen below as OldSMA /
OldRSI so both are timed in the same run on the same seeded random walk. The machine is shared
and noisy, so each figure is the best of several repeats of CPU time (time.process_time), old
and new alternate within every repeat, and the cost of a bare ``for x in xs: pass`` loop measured
in the same run is subtracted. Prints figures and ratios only (no pass/fail).

    python bench/indicators_speed.py [--values 200000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from math import fsum

import numpy as np

from tapewatch.engine.strategy.indicators import RSI, SMA

Update = Callable[[float], "float | None"]

# -- the previous implementation, verbatim but for the names (reference for timing only) ----------

RSI_METHODS = ("sma", "wilder")


def _old_check_period(period: int) -> int:
    if isinstance(period, bool) or not isinstance(period, int) or period < 1:
        raise ValueError(f"indicator period must be a whole number of at least 1 (got {period!r})")
    return period


def _old_exact_sum(values: list[float]) -> tuple[float, float]:
    """The sum as a float plus the (tiny) remainder it rounded away, both from exact ``fsum``.

    Keeping the remainder matters: after a 1e9 outlier leaves the window, the rounding of a
    sum that once included it would otherwise stay behind as ~1e-7 of error.
    """
    total = fsum(values)
    return total, fsum([*values, -total])


class OldSMA:
    """Simple moving average of the last ``period`` values."""

    __slots__ = ("_buf", "_comp", "_count", "_idx", "_period", "_sum", "_value")

    def __init__(self, period: int) -> None:
        self._period = _old_check_period(period)
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
                s, c = _old_exact_sum(buf)
        self._idx = i
        self._sum = s
        self._comp = c
        if full:
            result: float | None = (s + c) / period
            self._value = result
            return result
        return None


def _old_rsi_from(gain: float, loss: float) -> float:
    """RSI from mean gain and mean loss; exact 100 with no losses, exact 50 with no change."""
    if loss <= 0.0:
        return 100.0 if gain > 0.0 else 50.0
    return 100.0 - 100.0 / (1.0 + gain / loss)


class OldRSI:
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
        self._period = _old_check_period(period)
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
                gs, gc = _old_exact_sum([x for x in buf if x > 0.0])
                ls, lc = _old_exact_sum([-x for x in buf if x < 0.0])
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
        result = _old_rsi_from(g, lo)
        self._value = result
        return result


# -- timing ---------------------------------------------------------------------------------------


def _bare_loop(xs: list[float]) -> float:
    t0 = time.process_time()
    for _ in xs:
        pass
    return time.process_time() - t0


def _loop(update: Update, xs: list[float]) -> float:
    t0 = time.process_time()
    for x in xs:
        update(x)
    return time.process_time() - t0


CASES: list[tuple[str, Callable[[], Update], Callable[[], Update]]] = [
    ("SMA(50)", lambda: OldSMA(50).update, lambda: SMA(50).update),
    ("SMA(20)", lambda: OldSMA(20).update, lambda: SMA(20).update),
    ("RSI(14) sma", lambda: OldRSI(14).update, lambda: RSI(14).update),
    ("RSI(2) sma", lambda: OldRSI(2).update, lambda: RSI(2).update),
    ("RSI(14) wilder", lambda: OldRSI(14, "wilder").update, lambda: RSI(14, "wilder").update),
]


def _max_diff(old: Update, new: Update, xs: list[float]) -> float:
    """Largest |old - new| over the series (both warm up on the same update)."""
    worst = 0.0
    for x in xs:
        a, b = old(x), new(x)
        if (a is None) != (b is None):
            return float("inf")
        if a is not None and b is not None:
            worst = max(worst, abs(a - b))
    return worst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values", type=int, default=200_000, help="updates per timed loop")
    parser.add_argument("--repeat", type=int, default=7, help="repeats; the best is kept")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    xs = (5_000.0 + np.cumsum(rng.normal(0.01, 1.3, args.values))).tolist()
    n = len(xs)
    bare = min(_bare_loop(xs) for _ in range(args.repeat))
    print(f"{n:,} updates per loop, best of {args.repeat} (CPU time)")
    print(f"bare loop: {bare / n * 1e6:.3f} µs/value (subtracted below)\n")
    heads = ("old µs", "new µs", "new/old", "speed-up", "max |diff|")
    print(f"{'indicator':<16}" + "".join(f"{h:>12}" for h in heads))
    for name, make_old, make_new in CASES:
        best_old = best_new = float("inf")
        for r in range(args.repeat):
            pair = [("old", make_old), ("new", make_new)]
            if r % 2:
                pair.reverse()  # alternate which goes first, so drift in load hits both
            for side, make in pair:
                elapsed = _loop(make(), xs)
                if side == "old":
                    best_old = min(best_old, elapsed)
                else:
                    best_new = min(best_new, elapsed)
        old_us = max(best_old - bare, 0.0) / n * 1e6
        new_us = max(best_new - bare, 0.0) / n * 1e6
        ratio = new_us / old_us if old_us else float("nan")
        speedup = old_us / new_us if new_us else float("nan")
        diff = _max_diff(make_old(), make_new(), xs)
        print(
            f"{name:<16}{old_us:>12.3f}{new_us:>12.3f}{ratio:>12.2f}{speedup:>11.2f}x{diff:>12.1e}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
