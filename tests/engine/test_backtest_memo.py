"""What is derived from a bar set is shared by views of the same memory, and only by them."""

from __future__ import annotations

from datetime import date

import numpy as np

from tapewatch.engine.backtest import memo
from tapewatch.engine.market.bars import BarArrays
from tapewatch.engine.market.synthetic import generate


def _bars() -> BarArrays:
    return generate("SPY", seed=2, start=date(2024, 1, 2), end=date(2024, 1, 12))


def test_views_of_the_same_window_share_one_entry() -> None:
    memo.forget()
    bars = _bars()
    memo.derived(bars)["x"] = 1
    assert memo.derived(bars.slice(0, len(bars)))["x"] == 1
    assert "x" not in memo.derived(bars.slice(1, len(bars)))
    assert "x" not in memo.derived(bars.slice(0, len(bars) - 1))


def test_a_copy_of_the_bars_is_another_entry() -> None:
    memo.forget()
    bars = _bars()
    memo.derived(bars)["x"] = 1
    copy = BarArrays(
        bars.symbol,
        bars.ts_ns.copy(),
        bars.open.copy(),
        bars.high.copy(),
        bars.low.copy(),
        bars.close.copy(),
        bars.volume.copy(),
    )
    assert "x" not in memo.derived(copy)


def test_an_entry_keeps_its_memory_alive_so_an_address_never_names_other_data() -> None:
    memo.forget()
    bars = _bars()
    memo.derived(bars)["closes"] = bars.close.copy()
    address = bars.close.__array_interface__["data"][0]
    size = len(bars)
    del bars  # the entry still holds the columns: their memory cannot be handed out again
    fresh = [np.full(size, 7.0) for _ in range(50)]  # the same size: a freed block would fit
    assert all(a.__array_interface__["data"][0] != address for a in fresh)


def test_only_the_most_recent_bar_sets_are_kept() -> None:
    memo.forget()
    sets = [_bars().slice(i, i + 100) for i in range(memo.KEPT + 1)]
    for i, bars in enumerate(sets):
        memo.derived(bars)["i"] = i
    assert "i" not in memo.derived(sets[0])  # the oldest was dropped
    assert memo.derived(sets[-1])["i"] == memo.KEPT
    memo.forget()
    assert "i" not in memo.derived(sets[-1])
