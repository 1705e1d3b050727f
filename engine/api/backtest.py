"""Backtests as a front end asks for them: the runner, its report, and the bars it reads.

``run_backtest`` drives the same strategy code as the live engine over ``BarArrays``;
``load_bars`` (a CSV or Parquet file, checked) and ``generate`` (seeded synthetic bars on
XNYS sessions) make those arrays.
"""

from tapewatch.engine.backtest.runner import (
    parse_compare,
    run_backtest,
    with_thresholds,
    write_trades_csv,
)
from tapewatch.engine.backtest.stats import Report
from tapewatch.engine.market.bars import BarArrays
from tapewatch.engine.market.loader import load_bars
from tapewatch.engine.market.synthetic import generate
from tapewatch.engine.model.types import Timeframe

__all__ = [
    "BarArrays",
    "Report",
    "Timeframe",
    "generate",
    "load_bars",
    "parse_compare",
    "run_backtest",
    "with_thresholds",
    "write_trades_csv",
]
