"""Work derived from one bar set, done once for every backtest over it.

A sweep runs dozens of cells over the same bars (a worker holds the scattered bars for the
whole sweep, and each cell takes its window as a fresh view of them), so the accepted-bar
mask, the indicator series and the annualisation are the same for every cell of a window.
They are remembered here, keyed by the memory the bar columns view (address, shape, strides
and type of each), not by the Python objects: two views of the same window share one entry.

Each entry holds the columns themselves, so their memory cannot be freed and reused for other
bars while the entry lives: an address can never name different data. Bars are never changed
in place once built (``BarArrays`` is a read-only value by convention), so what an entry holds
cannot go stale. The few most recent bar sets are kept; older ones are dropped.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import numpy as np

from tapewatch.engine.market.bars import BarArrays

T = TypeVar("T")

KEPT = 4
"""Bar sets remembered at once: a sweep's windows are run one batch after another, and every
cell of a batch shares one bar set; a few more keep a walk-forward's train and test windows."""

_Key = tuple[tuple[int, tuple[int, ...], tuple[int, ...], str], ...]
_ENTRIES: OrderedDict[_Key, tuple[tuple[np.ndarray, ...], dict[Any, Any]]] = OrderedDict()


def _where(array: np.ndarray) -> tuple[int, tuple[int, ...], tuple[int, ...], str]:
    address: int = array.__array_interface__["data"][0]
    return address, array.shape, array.strides, array.dtype.str


def derived(bars: BarArrays) -> dict[Any, Any]:
    """The dict of what has been derived from ``bars`` so far (callers add to it)."""
    columns = (bars.ts_ns, bars.open, bars.high, bars.low, bars.close, bars.volume)
    key: _Key = tuple(_where(column) for column in columns)
    entry = _ENTRIES.get(key)
    if entry is None:
        entry = (columns, {})
        _ENTRIES[key] = entry
        while len(_ENTRIES) > KEPT:
            _ENTRIES.popitem(last=False)
    else:
        _ENTRIES.move_to_end(key)
    return entry[1]


def remembered(bars: BarArrays, key: Hashable, compute: Callable[[], T]) -> T:
    """``compute()`` the first time for these bars and ``key``; what it gave, after that."""
    memo = derived(bars)
    if key not in memo:
        memo[key] = compute()
    found: T = memo[key]
    return found


def forget() -> None:
    """Drop every entry (a worker at the end of a sweep, and tests)."""
    _ENTRIES.clear()


def entries() -> int:
    """How many bar sets are remembered now."""
    return len(_ENTRIES)
