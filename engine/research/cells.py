"""One cell: a plain backtest of one configuration over a window of the bars.

This is what a Dask worker runs. The bars arrive once per worker (scattered), the cell names
its window by bar positions, and the result is the backtest's own report as a dict (the same
one ``tapewatch backtest --json`` prints), with the per-bar equity curve when a walk-forward
needs to stitch test windows together.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from tapewatch.engine.backtest.runner import run_backtest
from tapewatch.engine.market.bars import BarArrays
from tapewatch.engine.settings.config import EngineConfig


@dataclass(frozen=True, slots=True)
class CellTask:
    """What a worker needs besides the bars: the config, the window, whether to keep a curve."""

    key: str
    config: EngineConfig
    start: int
    stop: int
    curve: bool = False


@dataclass(frozen=True, slots=True)
class CellOutcome:
    key: str
    report: dict[str, object]
    curve: np.ndarray | None


def calmar(report: dict[str, object]) -> float:
    """CAGR over max drawdown (0 when the run never fell: no drawdown to compare with)."""
    cagr = float(report["cagr"])  # type: ignore[arg-type]
    mdd = float(report["max_drawdown"])  # type: ignore[arg-type]
    return cagr / mdd if mdd > 0 else 0.0


def evaluate(bars: BarArrays, task: CellTask) -> CellOutcome:
    """Run the cell (on a worker) and return its report, JSON-clean, and its curve if asked."""
    window = bars.slice(task.start, task.stop)
    result = run_backtest(window, task.config)
    report = json.loads(json.dumps(result.report.as_dict()))
    curve = None
    if task.curve:
        from tapewatch.engine.backtest.curves import rebuild

        tf = task.config.strategy.tf.seconds
        curve = rebuild("", window, result.fills, task.config.starting_cash, tf).equity
    return CellOutcome(task.key, report, curve)
