"""Bars at any Alpaca timeframe, aggregated from the market's finished 1-minute bars.

A bucket is always computed from all of its minutes, whatever range the client asked for, so a
bar is the same on every page and in every request. Only finished buckets are served: a 5Min
bar appears once its five minutes have passed, a daily bar once its session has closed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from tapewatch.sandbox.market import BarTable, Market
from tapewatch.sandbox.sessions import Minutes, et_midnights

_TIMEFRAME = re.compile(r"^(\d+)(Min|T|Hour|H|Day|D)$")
_UNITS = {"Min": "Min", "T": "Min", "Hour": "Hour", "H": "Hour", "Day": "Day", "D": "Day"}
_LIMITS = {"Min": 59, "Hour": 23, "Day": 1}


@dataclass(frozen=True)
class TimeFrame:
    amount: int
    unit: str  # "Min", "Hour" or "Day"

    @classmethod
    def parse(cls, text: str) -> TimeFrame:
        match = _TIMEFRAME.match(text.strip())
        if not match:
            raise ValueError(f"invalid timeframe: {text!r}")
        amount, unit = int(match.group(1)), _UNITS[match.group(2)]
        if not 1 <= amount <= _LIMITS[unit]:
            raise ValueError(f"invalid timeframe: {text!r}")
        return cls(amount, unit)

    @property
    def label(self) -> str:
        return f"{self.amount}{self.unit}"

    @property
    def width(self) -> int:
        """Bucket width in minutes (Min and Hour only)."""
        return self.amount * (60 if self.unit == "Hour" else 1)


def aggregate(bars: BarTable, keys: Minutes) -> BarTable:
    """Merge consecutive minute bars sharing a bucket key into one bar stamped with the key."""
    if len(bars) == 0:
        return bars
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    ends = np.r_[starts[1:], len(keys)]
    volume = np.add.reduceat(bars.v, starts)
    value = np.add.reduceat(bars.vw * bars.v, starts)
    low = np.minimum.reduceat(bars.l, starts)
    high = np.maximum.reduceat(bars.h, starts)
    vwap = np.clip(np.round(value / np.maximum(volume, 1), 4), low, high)
    return BarTable(
        keys[starts],
        bars.o[starts],
        high,
        low,
        bars.c[ends - 1],
        volume,
        np.add.reduceat(bars.n, starts),
        vwap,
    )


def query_bars(
    market: Market, symbol: str, timeframe: TimeFrame, first: int, last: int
) -> BarTable:
    """Finished bars of ``symbol`` stamped within ``[first, last]`` (epoch minutes), ascending."""
    now = market.now_minute
    if timeframe.unit == "Day":
        days = et_midnights(first, last)
        minutes = market.minute_bars(symbol, int(days[0]), int(days[-1]))
        keys = days[np.searchsorted(days, minutes.t, side="right") - 1]
        table = aggregate(minutes, keys)
        if len(table) == 0:
            return table
        hours = market.hours(symbol)
        firsts = minutes.t[np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])]
        done = np.asarray([hours.day_end(int(m)) <= now for m in firsts], dtype=bool)
    else:
        width = timeframe.width
        lo = first - first % width
        hi = last - last % width + width
        minutes = market.minute_bars(symbol, lo, hi)
        table = aggregate(minutes, minutes.t - minutes.t % width)
        done = table.t + width <= now
    keep = done & (table.t >= first) & (table.t <= last)
    return table.take(keep)
