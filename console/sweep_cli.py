"""``tapewatch sweep``: a grid or a search over the backtest's settings, on Dask, cached.

The bars come exactly as ``tapewatch backtest`` loads them (its ``load_source``), the cells
run through the engine's research API (``engine.api.research``), and the answer is a ranked
table (or ``--json``), a heat map of two parameters, the best parameters as a ``[strategy]``
block for config.toml, and with ``--walk-forward`` the out-of-sample results per test window
and stitched. Registered by ``console.cli``; cheap to import (Dask loads only when a sweep runs).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tapewatch.engine.api.settings import UsageError

if TYPE_CHECKING:
    from tapewatch.engine.api.backtest import BarArrays
    from tapewatch.engine.api.research import SweepPlan, SweepResult
    from tapewatch.engine.api.settings import EngineConfig

PROG = "tapewatch sweep"
MAX_TRIALS = 100_000
MAX_WORKERS = 512
TOP = 20
_ADDRESS = re.compile(r"^(tcp|tls|ws|wss)://[^\s/:]+(:\d{1,5})?/?$")

DESCRIPTION = (
    "Run the backtest over many settings at once: --grid NAME=v1,v2 (repeatable; NAME is any "
    "strategy, execution or risk flag without its dashes, e.g. rsi-period=7,14,21) or --search "
    "random|tpe --trials N --range NAME=LOW:HIGH (Optuna, seeded by --search-seed). Cells run "
    "on a Dask LocalCluster (one process per core) or on --scheduler tcp://host:8786; each "
    "result is kept in the cache as soon as it finishes, so a rerun or a resumed sweep computes "
    "only the missing cells (--no-cache ignores the store). Invalid cells (oversold at or above "
    "overbought, a value out of range) are skipped and counted."
)


def add_sweep_command(
    subparsers: Any,
    add_strategy_flags: Callable[[argparse.ArgumentParser], None],
    add_data_dir: Callable[[argparse.ArgumentParser], None],
    date_type: Callable[[str], date],
    whole: Callable[..., Callable[[str], int]],
    seed_help: str,
    max_bars: int,
) -> argparse.ArgumentParser:
    """Register ``sweep`` with the backtest's data flags and the strategy flags."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "sweep",
        help="many backtests at once: a grid or a search, cached, on Dask",
        description=DESCRIPTION,
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--data", type=Path, help="CSV or Parquet bars (as backtest --data)")
    src.add_argument("--synthetic", action="store_true", help="synthetic bars (the default)")
    src.add_argument("--alpaca", action="store_true", help="Alpaca's bars (as backtest --alpaca)")
    p.add_argument("--seed", type=whole(0, 2**32 - 1), default=7, help=seed_help)
    p.add_argument("--start", type=date_type, default=date(2024, 1, 2), help="first day")
    p.add_argument("--end", type=date_type, default=date(2024, 12, 31), help="last day")
    p.add_argument("--bars", type=whole(1, max_bars), help="exactly this many synthetic bars")
    p.add_argument("--refresh", action="store_true", help="with --alpaca: download again")
    g = p.add_argument_group("the cells")
    g.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="NAME=V1,V2,...",
        help="values of one setting to try (repeatable), e.g. rsi-period=7,14,21",
    )
    g.add_argument(
        "--search", choices=("random", "tpe"), help="an Optuna search instead of the full grid"
    )
    g.add_argument("--trials", type=whole(1, MAX_TRIALS), help="cells a --search tries")
    g.add_argument(
        "--range",
        action="append",
        default=[],
        metavar="NAME=LOW:HIGH",
        help="a --search range (repeatable), e.g. rsi-period=5:30",
    )
    g.add_argument(
        "--search-seed",
        type=whole(0, 2**32 - 1),
        default=0,
        help="the search's seed (default 0): the same seed tries the same cells",
    )
    g.add_argument(
        "--objective",
        choices=("sharpe", "return", "calmar"),
        default="sharpe",
        help="what 'best' means (default sharpe)",
    )
    g.add_argument(
        "--walk-forward",
        metavar="train=6M,test=1M",
        help="pick the best cell per training window, report it out of sample",
    )
    r = p.add_argument_group("where it runs")
    r.add_argument(
        "--scheduler",
        metavar="tcp://HOST:8786",
        help="an existing Dask scheduler (default: [sweep] scheduler, else a "
        "LocalCluster on this machine)",
    )
    r.add_argument(
        "--workers",
        type=whole(1, MAX_WORKERS),
        help="LocalCluster worker processes (default: one per core)",
    )
    r.add_argument("--no-cache", action="store_true", help="ignore the store: compute every cell")
    r.add_argument(
        "--cache-dir",
        type=Path,
        help="the store's folder (default $XDG_CACHE_HOME/tapewatch/sweep)",
    )
    o = p.add_argument_group("output")
    o.add_argument("--json", action="store_true", help="one JSON object instead of tables")
    o.add_argument("--html", type=Path, help="write a self-contained HTML page")
    o.add_argument("--heatmap", metavar="X,Y", help="the two parameters of the heat map")
    o.add_argument(
        "--top",
        type=whole(1, 100_000),
        default=TOP,
        help=f"rows of the ranked table (default {TOP})",
    )
    o.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress on stderr (default: when stderr is a terminal)",
    )
    add_strategy_flags(p)
    add_data_dir(p)
    return p


# ---------------------------------------------------------------------------- checks


def build_plan(args: argparse.Namespace) -> SweepPlan:
    """The plan the flags describe, or a one-line ``UsageError``."""
    from tapewatch.engine.api.research import (
        SweepPlan,
        check_names,
        parse_grid,
        parse_span,
        parse_walk_forward,
    )

    axes = tuple(parse_grid(text) for text in args.grid)
    spans = tuple(parse_span(text) for text in args.range)
    check_names(axes, spans)
    if args.search is None:
        if spans:
            raise UsageError("--range is for --search random|tpe; a grid takes --grid NAME=V1,V2")
        if args.trials is not None:
            raise UsageError("--trials is for --search random|tpe; a grid runs every cell")
        if not axes:
            raise UsageError(
                "give --grid NAME=V1,V2,... or --search random|tpe; e.g. --grid rsi-period=7,14,21"
            )
    else:
        if args.trials is None:
            raise UsageError(f"--search {args.search} needs --trials N; e.g. --trials 50")
        if not spans and not axes:
            raise UsageError(
                f"--search {args.search} needs --range NAME=LOW:HIGH (or --grid "
                "values to choose from); e.g. --range rsi-period=5:30"
            )
    walk = parse_walk_forward(args.walk_forward) if args.walk_forward else None
    return SweepPlan(
        axes=axes,
        spans=spans,
        search=args.search or "grid",
        trials=args.trials or 0,
        seed=args.search_seed,
        objective=args.objective,
        walk_forward=walk,
    )


def scheduler_of(args: argparse.Namespace) -> str | None:
    """--scheduler, else [sweep] scheduler of the config file, else None (a LocalCluster)."""
    address = args.scheduler
    if address is None:
        from tapewatch.engine.api.settings import load_config_file

        address = load_config_file(getattr(args, "config", None)).sweep_scheduler
        if address is None:
            return None
    if not _ADDRESS.match(address):
        raise UsageError(
            f"--scheduler {address[:40]!r} is not a Dask address; e.g. tcp://10.0.0.5:8786"
        )
    if args.workers is not None:
        raise UsageError("--workers sizes a LocalCluster; with --scheduler the cluster has its own")
    return address


def _check_files(args: argparse.Namespace) -> None:
    from tapewatch.console.cli import _check_file, _check_writable

    _check_file("--data", args.data, must_exist=True)
    _check_writable("--html", args.html)
    if args.refresh and not args.alpaca:
        raise UsageError("--refresh re-downloads Alpaca history: use it with --alpaca")
    if args.alpaca and args.bars is not None:
        raise UsageError("--bars is for synthetic bars; with --alpaca give --start and --end")
    if args.end < args.start and args.bars is None and args.data is None:
        raise UsageError(f"--end {args.end} is before --start {args.start}")


def _heat_names(args: argparse.Namespace, plan: SweepPlan) -> tuple[str, str] | None:
    if args.heatmap is None:
        return None
    names = [n.strip() for n in args.heatmap.split(",")]
    if len(names) != 2 or names[0] == names[1]:
        raise UsageError(
            f"--heatmap {args.heatmap[:40]!r} is not two parameters X,Y; e.g. "
            "--heatmap rsi-oversold,rsi-overbought"
        )
    for name in names:
        if name not in plan.names:
            raise UsageError(
                f"--heatmap {name[:40]!r} is not swept; swept: {', '.join(plan.names)}"
            )
    return names[0], names[1]


# ---------------------------------------------------------------------------- running


def cmd_sweep(args: argparse.Namespace) -> int:
    from tapewatch.console.backtest_cli import load_source, settle_timeframe
    from tapewatch.console.cli import engine_config

    plan = build_plan(args)
    chosen_heat = _heat_names(args, plan)
    scheduler = scheduler_of(args)
    _check_files(args)
    config = engine_config(args)
    bars = load_source(args, config)
    if len(bars) == 0:
        raise UsageError("no bars in the chosen range; widen --start/--end")
    if args.data is not None:
        config = settle_timeframe(args, config, bars)
    from tapewatch.engine.api.research import ProgressLine, cache_dir, sweep_on_dask

    cache = None if args.no_cache else cache_dir(args.cache_dir)
    show = args.progress if args.progress is not None else sys.stderr.isatty()
    progress = ProgressLine(sys.stderr, in_place=sys.stderr.isatty()) if show else None
    try:
        result = sweep_on_dask(
            bars,
            config,
            plan,
            scheduler=scheduler,
            workers=args.workers,
            cache=cache,
            progress=progress,
        )
    except KeyboardInterrupt:
        kept = f"finished cells are kept in {cache}; rerun the same command to resume"
        sys.stderr.write(f"\n{PROG}: interrupted; {kept if cache else 'nothing was stored'}\n")
        return 130
    names = chosen_heat or _default_heat(result)
    from tapewatch.engine.api.research import heat as heat_of

    heat = heat_of(result.rows, *names) if names and result.rows else None
    if args.html is not None:
        from tapewatch.engine.api.research import sweep_html, write_html

        title = f"Sweep {bars.symbol} {config.strategy.timeframe}, {len(bars):,} bars"
        try:
            write_html(args.html, sweep_html(result, heat, title))
        except OSError as exc:
            raise UsageError(f"--html: cannot write {args.html} ({exc.strerror or exc})") from None
    if args.json:
        return _emit(json.dumps(result.as_dict(), sort_keys=True))
    return _emit(format_result(result, bars, config, heat, args.top))


def _default_heat(result: SweepResult) -> tuple[str, str] | None:
    """The first two parameters that took more than one value."""
    varied = [
        n for n in result.names if len({json.dumps(r.params.get(n)) for r in result.rows}) > 1
    ]
    return (varied[0], varied[1]) if len(varied) >= 2 else None


# ---------------------------------------------------------------------------- text


def _value(v: object) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]


def format_result(
    result: SweepResult,
    bars: BarArrays,
    config: EngineConfig,
    heat: Any,
    top: int,
) -> str:
    out = [
        f"Sweep {bars.symbol} {config.strategy.timeframe} over {len(bars):,} bars, "
        f"objective {result.objective} ({result.search}): {result.computed:,} computed, "
        f"{result.from_store:,} from the store, {result.skipped:,} skipped as invalid"
    ]
    if result.rows:
        head = ["#", *result.names, "score", "return", "Sharpe", "max DD", "trades"]
        rows = [head]
        for i, row in enumerate(result.rows[:top], start=1):
            rep = row.report
            rows.append(
                [
                    str(i),
                    *(_value(row.params[n]) for n in result.names),
                    f"{row.score:.3f}",
                    f"{float(rep['total_return']):.2%}",  # type: ignore[arg-type]
                    f"{float(rep['sharpe']):.2f}",  # type: ignore[arg-type]
                    f"{float(rep['max_drawdown']):.2%}",  # type: ignore[arg-type]
                    f"{rep['trades']}",
                ]
            )
        out.append("")
        out.extend(_table(rows))
        if len(result.rows) > top:
            out.append(f"... and {len(result.rows) - top:,} more (all in --json)")
    if result.walk is not None:
        out.append("")
        out.extend(_walk_lines(result))
    if heat is not None:
        from tapewatch.engine.api.research import text_heatmap

        color = sys.stdout.isatty()
        width = max(40, min(160, shutil.get_terminal_size().columns)) if color else 100
        out.append("")
        out.append(text_heatmap(heat, color=color, width=width))
    best = result.best
    if best is not None and best.params:
        from tapewatch.engine.api.research import toml_block

        out.append("")
        out.append("Best parameters (paste into config.toml):")
        out.append(toml_block(best.params))
    return "\n".join(out)


def _walk_lines(result: SweepResult) -> list[str]:
    walk = result.walk
    assert walk is not None
    lines = [f"Walk-forward {walk.spec}, best by {result.objective} on each training window:"]
    rows = [["test window", "best", "IS return", "IS Sharpe", "OOS return", "OOS Sharpe"]]
    for w in walk.windows:
        oos = w.out_of_sample
        rows.append(
            [
                f"{w.test[0][:10]}..{w.test[1][:10]}",
                " ".join(f"{k}={_value(v)}" for k, v in w.best.params.items()),
                f"{float(w.best.report['total_return']):.2%}",  # type: ignore[arg-type]
                f"{float(w.best.report['sharpe']):.2f}",  # type: ignore[arg-type]
                f"{float(oos['total_return']):.2%}",  # type: ignore[arg-type]
                f"{float(oos['sharpe']):.2f}",  # type: ignore[arg-type]
            ]
        )
    lines.extend(_table(rows))
    s, m = walk.stitched, walk.in_sample_mean
    if s:
        lines.append(
            f"Out of sample, stitched: return {s['total_return']:.2%}, Sharpe {s['sharpe']:.2f}, "
            f"max drawdown {s['max_drawdown']:.2%}, Calmar {s['calmar']:.2f}; in sample "
            f"(mean of the windows' best): return {m['total_return']:.2%}, Sharpe {m['sharpe']:.2f}"
        )
    return lines


def _emit(text: str) -> int:
    from tapewatch.console.backtest_cli import _emit as emit

    return emit(text)
