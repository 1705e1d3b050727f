"""Backtests as a front end asks for them: the runner, its report, and the bars it reads.

``run_backtest`` drives the same strategy code as the live engine over ``BarArrays``;
``load_bars`` (a CSV or Parquet file, checked) and ``generate`` (seeded synthetic bars on
XNYS sessions) make those arrays; ``alpaca_history`` downloads them from Alpaca (or reads the
Parquet cache of an earlier download). ``rebuild`` turns a run into its equity and drawdown
curves, which ``terminal_plot`` draws as text and ``html_report`` as one self-contained page.
"""

from tapewatch.engine.backtest.curves import Curves, MonthReturn, monthly_returns, rebuild
from tapewatch.engine.backtest.html_report import html_report, write_html
from tapewatch.engine.backtest.plots import terminal_plot
from tapewatch.engine.backtest.runner import (
    BacktestResult,
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
from tapewatch.engine.root.history import History, HistoryRequest, NoHistory, alpaca_history

__all__ = [
    "BacktestResult",
    "BarArrays",
    "Curves",
    "History",
    "HistoryRequest",
    "MonthReturn",
    "NoHistory",
    "Report",
    "Timeframe",
    "alpaca_history",
    "generate",
    "html_report",
    "load_bars",
    "monthly_returns",
    "parse_compare",
    "rebuild",
    "run_backtest",
    "terminal_plot",
    "with_thresholds",
    "write_html",
    "write_trades_csv",
]
