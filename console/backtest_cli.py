"""``tapewatch backtest``: load or generate bars, run, print a table or JSON."""

from __future__ import annotations

import argparse
import json
import sys

from tapewatch.engine.backtest.runner import (
    parse_compare,
    run_backtest,
    with_thresholds,
    write_trades_csv,
)
from tapewatch.engine.backtest.stats import Report
from tapewatch.engine.market.bars import BarArrays
from tapewatch.engine.settings.config import ConfigError, EngineConfig

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
)


def load_source(args: argparse.Namespace, config: EngineConfig) -> BarArrays:
    symbol = config.strategy.symbol
    if args.data is not None:
        from tapewatch.engine.market.loader import load_bars

        return load_bars(args.data, symbol)
    from tapewatch.engine.market.synthetic import generate

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
    return "\n".join(out)


def run_backtest_command(args: argparse.Namespace, config: EngineConfig) -> int:
    pairs = parse_compare(args.compare) if args.compare else None
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
    bars = load_source(args, config)
    if len(bars) == 0:
        raise ConfigError("no bars in the chosen range; widen --start/--end")
    progress = _progress_printer()
    results = [run_backtest(bars, c, progress=progress) for c in configs]  # type: ignore[arg-type]
    if args.trades is not None:
        write_trades_csv(results[0].fills, args.trades)
    reports = [r.report for r in results]
    if args.json:
        payload: object
        payload = {"compare": [r.as_dict() for r in reports]} if pairs else reports[0].as_dict()
        print(json.dumps(payload, sort_keys=True))
    else:
        print(format_table(reports))
    return 0
