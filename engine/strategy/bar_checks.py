"""Is a bar fit to trade on? One cheap check at the engine's door.

Feeds validate what they can, but a live stream can still deliver NaN prices, a high below the
low, or a bar older than one already used (a late or replayed message). Such a bar is reported
and ignored: trading on it could size an order from NaN or re-decide a bar already decided.
Zero volume is legal (quiet minutes happen).
"""

from __future__ import annotations

import math
from datetime import datetime

from tapewatch.engine.model.types import Bar


def bar_problem(bar: Bar, last_ts: datetime | None) -> str | None:
    """Why ``bar`` must not be used, or None when it is fine."""
    problem = price_problem(bar.open, bar.high, bar.low, bar.close, bar.volume)
    if problem is not None:
        return problem
    if last_ts is not None and bar.ts <= last_ts:
        return "not newer than the last bar used (duplicate or out of order)"
    return None


def price_problem(o: float, h: float, lo: float, c: float, v: float) -> str | None:
    """The price and volume half of ``bar_problem``, on plain numbers: the backtest's fast
    loop asks it of every bar without building one, so both paths refuse the same bars."""
    if not (math.isfinite(o) and math.isfinite(h) and math.isfinite(lo) and math.isfinite(c)):
        return "a price is not a finite number"
    if not (o > 0 and h > 0 and lo > 0 and c > 0):
        return "a price is zero or negative"
    if h < lo or not (lo <= o <= h and lo <= c <= h):
        return "high/low do not contain open and close"
    if not (v >= 0 and math.isfinite(v)):
        return "volume is negative or not a number"
    return None
