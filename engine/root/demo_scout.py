"""The demo's look-ahead: which replayed bar will the strategy act on, before it is delivered.

A shadow of the engine's strategy (the same ``RsiSmaStrategy`` code and settings) sees every
bar the engine sees, in the same order, one step earlier: the replay asks it about each bar just
before handing the bar over. With the position the engine will hold on that bar it answers
"will this bar signal?", which lets the demo start shortly before the first signal and lets the
next-signal key fast-forward to just before the next one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from tapewatch.engine.model.types import Bar
from tapewatch.engine.settings.config import StrategyConfig
from tapewatch.engine.strategy.bar_checks import bar_problem
from tapewatch.engine.strategy.rsi_sma import RsiSmaStrategy


class SignalScout:
    """Called with each bar before the engine gets it: True when the strategy will act on it."""

    __slots__ = ("_exposure", "_strategy")

    def __init__(self, cfg: StrategyConfig, exposure: Callable[[], float]) -> None:
        """``exposure`` is the position the engine will hold when the next bar arrives."""
        self._strategy = RsiSmaStrategy(cfg)
        self._exposure = exposure

    def warm(self, bars: Iterable[Bar]) -> None:
        """The warm-up history the engine primes itself with (bad bars skipped alike)."""
        for bar in bars:
            if bar_problem(bar, None) is None:
                self._strategy.warm(bar)

    def __call__(self, bar: Bar) -> bool:
        signal = self._strategy.evaluate(bar, self._exposure(), ts=bar.ts)
        return signal.action != "hold"


def first_signal(cfg: StrategyConfig, bars: Iterable[Bar], *, after: int) -> int | None:
    """The index of the first bar at or past ``after`` on which a flat strategy would act,
    having seen every bar before it; None if there is none among ``bars``."""
    strategy = RsiSmaStrategy(cfg)
    for index, bar in enumerate(bars):
        if index < after:
            strategy.warm(bar)
            continue
        if strategy.evaluate(bar, 0.0, ts=bar.ts).action != "hold":
            return index
    return None
