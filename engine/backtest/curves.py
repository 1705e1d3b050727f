"""The equity curve, drawdown and monthly returns of a run, rebuilt from its bars and fills.

A backtest's result holds its report and fills, not the per-bar equity (a million floats the
report does not need). Pictures rebuild it: cash and shares change only at fills, so the equity
after bar i is ``cash + shares × close[i]`` with every fill made up to and in bar i. That is
what the engine marks to market, so the last point is the report's end equity and the deepest
fall its max drawdown (tests hold the two to each other).

Which bar a fill was made in: a market order fills at a bar's open, and the fill is stamped
either with that open's time or (older convention) with the end of that bar, the same instant
as the next bar's open when bars are contiguous. So the time leaves two candidates, the bar
starting at the stamp and the one ending there, and the fill's price decides: it is the open of
its bar (plus slippage), so the candidate whose open is nearer is the bar.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tapewatch.engine.market.bars import BarArrays, ns_from_datetime
from tapewatch.engine.model.types import Fill, Side


@dataclass(frozen=True, eq=False)
class Curves:
    """Per-bar equity and drawdown (a fraction of the running peak, 0 or negative)."""

    label: str
    ts_ns: np.ndarray
    equity: np.ndarray
    drawdown: np.ndarray
    start_equity: float
    fills: tuple[Fill, ...]


@dataclass(frozen=True, slots=True)
class MonthReturn:
    month: str  # YYYY-MM (UTC)
    value: float  # the month's return: its last equity over the previous month's, minus 1


def rebuild(
    label: str,
    bars: BarArrays,
    fills: Sequence[Fill],
    start_equity: float,
    timeframe_seconds: int,
) -> Curves:
    """Equity after every bar (see the module docstring) and its drawdown."""
    n = len(bars)
    cash_delta = np.zeros(n + 1, dtype=np.float64)
    qty_delta = np.zeros(n + 1, dtype=np.float64)
    for fill in fills:
        at = fill_bar(bars, fill, timeframe_seconds)
        sign = 1.0 if fill.side is Side.BUY else -1.0
        cash_delta[at] -= sign * fill.qty * fill.price + fill.fee
        qty_delta[at] += sign * fill.qty
    cash = start_equity + np.cumsum(cash_delta[:n])
    qty = np.cumsum(qty_delta[:n])
    equity = cash + qty * bars.close
    peaks = np.maximum.accumulate(np.concatenate(([start_equity], equity)))[1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        drawdown = np.where(peaks > 0, equity / peaks - 1.0, 0.0)
    return Curves(label, bars.ts_ns, equity, drawdown, start_equity, tuple(fills))


def fill_bar(bars: BarArrays, fill: Fill, timeframe_seconds: int) -> int:
    """The index of the bar ``fill`` was made in (see the module docstring)."""
    stamp = ns_from_datetime(fill.ts)
    ts = bars.ts_ns
    at = max(0, int(np.searchsorted(ts, stamp, side="right")) - 1)
    before = at - 1
    if before >= 0 and stamp >= int(ts[before]) + timeframe_seconds * 1_000_000_000:
        opens = bars.open
        if abs(fill.price - float(opens[before])) < abs(fill.price - float(opens[at])):
            return before
    return at


def monthly_returns(curves: Curves) -> list[MonthReturn]:
    """Each calendar month's (UTC) return; compounded they give the run's total return."""
    if len(curves.ts_ns) == 0:
        return []
    months = curves.ts_ns.astype("datetime64[ns]").astype("datetime64[M]")
    last_of_month = np.flatnonzero(np.append(months[1:] != months[:-1], True))
    out: list[MonthReturn] = []
    before = curves.start_equity
    for i in last_of_month:
        value = float(curves.equity[i])
        out.append(MonthReturn(str(months[i]), value / before - 1.0 if before else 0.0))
        before = value
    return out


def thin(count: int, limit: int) -> np.ndarray:
    """Indices keeping at most about ``limit`` of ``count`` points (first and last kept)."""
    if count <= limit:
        return np.arange(count)
    return np.unique(np.linspace(0, count - 1, limit).round().astype(np.int64))


def thin_extremes(values: np.ndarray, limit: int) -> np.ndarray:
    """Indices of the lowest and highest value in each of ``limit // 2`` buckets, in order, so
    a thinned drawdown or equity line still shows its worst and best points."""
    count = len(values)
    if count <= limit:
        return np.arange(count)
    edges = np.linspace(0, count, max(1, limit // 2) + 1).astype(np.int64)
    keep = [0, count - 1]
    for lo, hi in itertools.pairwise(edges):
        if hi > lo:
            chunk = values[lo:hi]
            keep.append(lo + int(np.argmin(chunk)))
            keep.append(lo + int(np.argmax(chunk)))
    return np.unique(np.asarray(keep, dtype=np.int64))
