"""``tapewatch backtest``: load, download or generate bars, run, print a table or JSON.

Pictures come after the numbers: the equity and drawdown plot under the table when stdout is a
terminal (or with ``--plot``; never into ``--json``, which stays exactly the report), and
``--html FILE`` for the page with every chart and the monthly returns.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from tapewatch.engine.api.backtest import (
    BarArrays,
    Report,
    Timeframe,
    parse_compare,
    run_backtest,
    with_thresholds,
    write_trades_csv,
)
from tapewatch.engine.api.settings import ConfigError, EngineConfig

if TYPE_CHECKING:
    from tapewatch.engine.api.backtest import BacktestResult, Curves

PLOT_HEIGHT = 30
PLOT_WIDTH = 100  # when stdout is not a terminal (--plot into a file or a pipe)

ROWS = (
    ("start", "Start", "{}"),
    ("end", "End", "{}"),
    ("bars", "Bars", "{:,}"),
    ("start_equity", "Start equity", "${:,.2f}"),
    ("end_equity", "End equity", "${:,.2f}"),
    ("total_return", "Total return", "{:.2%}"),
    ("cagr", "CAGR", "{:.2%}"),
    ("max_drawdown", "Max drawdown", "{:.2%}"),
    ("sharpe", "Sharpe (ann.)", "{:.2f}"),
    ("trades", "Trades", "{:,}"),
    ("win_rate", "Win rate", "{:.1%}"),
    ("avg_trade", "Average trade", "${:,.2f}"),
    ("exposure", "Exposure", "{:.1%}"),
    ("fees", "Fees", "${:,.2f}"),
    ("orders_denied", "Orders denied", "{:,}"),
)


def load_source(args: argparse.Namespace, config: EngineConfig) -> BarArrays:
    symbol = config.strategy.symbol
    if getattr(args, "alpaca", False):
        return _alpaca_bars(args, config)
    if args.data is not None:
        from tapewatch.engine.api.backtest import load_bars

        return load_bars(args.data, symbol)
    from tapewatch.engine.api.backtest import generate

    if args.bars is not None:
        if args.bars < 1:
            raise ConfigError(f"--bars must be at least 1 (got {args.bars})")
        return generate(
            symbol,
            seed=args.seed,
            start=args.start,
            n_bars=args.bars,
            timeframe_seconds=config.strategy.tf.seconds,
        )
    if args.end < args.start:
        raise ConfigError(f"--end {args.end} is before --start {args.start}")
    return generate(
        symbol,
        seed=args.seed,
        start=args.start,
        end=args.end,
        timeframe_seconds=config.strategy.tf.seconds,
    )


def _alpaca_bars(args: argparse.Namespace, config: EngineConfig) -> BarArrays:
    """Alpaca's bars for the range: the cache, else a download (progress on a terminal)."""
    from tapewatch.console.cli import settings
    from tapewatch.engine.api.backtest import HistoryRequest, alpaca_history

    request = HistoryRequest(
        symbol=config.strategy.symbol,
        timeframe=config.strategy.tf,
        start=args.start,
        end=args.end,
        refresh=args.refresh,
    )
    chosen = settings(args).with_engine(config)
    printer = _page_printer()
    history = alpaca_history(chosen, request, on_page=printer)
    if printer is not None and history.pages:
        sys.stderr.write("\n")  # end the progress line
    sys.stderr.write(f"tapewatch: {history.describe()}\n")
    return history.bars


def _page_printer() -> Callable[[int, int], None] | None:
    if not sys.stderr.isatty():
        return None

    def show(pages: int, bars: int) -> None:
        sys.stderr.write(f"\rdownloading from Alpaca: page {pages:,}, {bars:,} bars")
        sys.stderr.flush()

    return show


def data_spacing(bars: BarArrays) -> int | None:
    """The most common gap in seconds between consecutive bars on the same UTC day (daily
    data: between any consecutive bars); the smaller gap wins a tie; None for a single bar."""
    import numpy as np

    ts = bars.ts_ns
    if len(ts) < 2:
        return None
    gaps = np.diff(ts)
    day = ts // (86_400 * 1_000_000_000)
    same_day = gaps[day[1:] == day[:-1]]
    pool = same_day if len(same_day) else gaps
    values, counts = np.unique(pool, return_counts=True)
    return int(values[int(np.argmax(counts))]) // 1_000_000_000


def _describe(seconds: int) -> str:
    for size, word in ((86_400, "day"), (3_600, "hour"), (60, "minute")):
        if seconds % size == 0:
            n = seconds // size
            return f"{n} {word}{'s' if n != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def settle_timeframe(
    args: argparse.Namespace, config: EngineConfig, bars: BarArrays
) -> EngineConfig:
    """A data file's timeframe: inferred from its spacing unless --timeframe names one, which
    must then agree with the spacing."""
    spacing = data_spacing(bars)
    if spacing is None:
        return config
    inferred = Timeframe.from_seconds(spacing)
    given = getattr(args, "timeframe", None)
    if given is not None:
        if inferred is None or inferred != config.strategy.tf:
            found = inferred.label if inferred is not None else "not a supported timeframe"
            raise ConfigError(
                f"--timeframe {config.strategy.tf.label} contradicts {args.data}: its bars are "
                f"{_describe(spacing)} apart ({found}); drop --timeframe or correct it"
            )
        return config
    if inferred is None:
        raise ConfigError(
            f"{args.data}: its bars are {_describe(spacing)} apart, not a supported timeframe "
            "(1Min-59Min, 1Hour-23Hour, 1Day); resample the data"
        )
    return replace(config, strategy=replace(config.strategy, timeframe=inferred.label))


def _progress_printer() -> object:
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        pct = done / total if total else 1.0
        sys.stderr.write(f"\rbacktest {done:,}/{total:,} bars ({pct:.0%})")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


def format_table(reports: list[Report]) -> str:
    headers = ["", *(f"{r.rsi_overbought:g}/{r.rsi_oversold:g}" for r in reports)]
    lines = []
    for key, label, fmt in ROWS:
        lines.append([label, *(fmt.format(getattr(r, key)) for r in reports)])
    widths = [max(len(str(row[i])) for row in [headers, *lines]) for i in range(len(headers))]
    out = []
    if len(reports) > 1:
        out.append(
            "  ".join(
                h.rjust(w) if i else h.ljust(w)
                for i, (h, w) in enumerate(zip(headers, widths, strict=True))
            )
        )
    else:
        r = reports[0]
        out.append(
            f"Backtest {r.symbol} {r.timeframe}  RSI {r.rsi_oversold:g}/{r.rsi_overbought:g}"
        )
    for row in lines:
        out.append(
            "  ".join(
                c.rjust(w) if i else c.ljust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    if len({r.annualised_as for r in reports}) == 1:
        out.append(f"Sharpe annualised as {reports[0].annualised_as}")
    for r in reports:
        out.extend(_trip_lines(r, named=len(reports) > 1))
    return "\n".join(out)


TRIPS_SHOWN = 10


def _trip_lines(report: Report, *, named: bool) -> list[str]:
    """Each breaker trip (when, which, why), so a run that stopped trading says why."""
    trips = report.breaker_trips
    if not trips:
        return []
    run = f" ({report.rsi_overbought:g}/{report.rsi_oversold:g})" if named else ""
    lines = [f"Breaker trips{run}: {len(trips)}, re-armed at the next session"]
    for trip in trips[:TRIPS_SHOWN]:
        lines.append(f"  {trip.at}  {trip.breaker}: {trip.reason}")
    if len(trips) > TRIPS_SHOWN:
        lines.append(f"  ... and {len(trips) - TRIPS_SHOWN} more (all in --json)")
    return lines


def run_backtest_command(args: argparse.Namespace, config: EngineConfig) -> int:
    pairs = parse_compare(args.compare) if args.compare else None
    bars = load_source(args, config)
    if len(bars) == 0:
        raise ConfigError("no bars in the chosen range; widen --start/--end")
    if args.data is not None:
        config = settle_timeframe(args, config, bars)
    configs = [config]
    if pairs:
        try:
            configs = [with_thresholds(config, hi, lo) for hi, lo in pairs]
        except ConfigError as exc:
            raise ConfigError(f"--compare: {exc}") from None
    if args.trades is not None and pairs:
        raise ConfigError("--trades cannot be combined with --compare; run one configuration")
    if args.trades is not None and not args.trades.parent.exists():
        raise ConfigError(f"--trades: folder {args.trades.parent} does not exist")
    progress = _progress_printer()
    vector = not getattr(args, "engine_loop", False)  # --engine-loop: same results, no numpy path
    results = [
        run_backtest(bars, c, progress=progress, vector=vector)  # type: ignore[arg-type]
        for c in configs
    ]
    if args.trades is not None:
        write_trades_csv(results[0].fills, args.trades)
    reports = [r.report for r in results]
    html_path = getattr(args, "html", None)
    plot = _wants_plot(args)
    curves = _curves(bars, results, configs) if plot or html_path is not None else []
    if html_path is not None:
        from tapewatch.engine.api.backtest import html_report, write_html

        try:
            write_html(html_path, html_report(bars, reports, curves))
        except OSError as exc:
            raise ConfigError(f"--html: cannot write {html_path} ({exc.strerror or exc})") from None
    if args.json:
        payload: object
        payload = {"compare": [r.as_dict() for r in reports]} if pairs else reports[0].as_dict()
        return _emit(json.dumps(payload, sort_keys=True))
    text = format_table(reports)
    if plot:
        text += "\n\n" + _plot(curves)
    return _emit(text)


def _wants_plot(args: argparse.Namespace) -> bool:
    """--plot / --no-plot, else only on a terminal; never with --json (it stays the report)."""
    if args.json:
        return False
    chosen = getattr(args, "plot", None)
    if chosen is not None:
        return bool(chosen)
    try:
        return sys.stdout.isatty()
    except (ValueError, AttributeError):
        return False


def _curves(
    bars: BarArrays, results: list[BacktestResult], configs: list[EngineConfig]
) -> list[Curves]:
    from tapewatch.engine.api.backtest import rebuild

    return [
        rebuild(
            f"{c.strategy.rsi_overbought:g}/{c.strategy.rsi_oversold:g}",
            bars,
            r.fills,
            c.starting_cash,
            c.strategy.tf.seconds,
        )
        for r, c in zip(results, configs, strict=True)
    ]


def _plot(curves: list[Curves]) -> str:
    from tapewatch.engine.api.backtest import terminal_plot

    terminal = sys.stdout.isatty()
    width = max(40, min(160, shutil.get_terminal_size().columns)) if terminal else PLOT_WIDTH
    return terminal_plot(curves, width=width, height=PLOT_HEIGHT, color=terminal)


def _emit(text: str) -> int:
    """Print the report; a reader that went away (``| head``) ends the command quietly."""
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        try:  # the interpreter's final flush would fail again: point stdout at /dev/null
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
    return 0
