"""Sweep throughput: a 3x3x3 grid (RSI period x oversold x overbought) over the same bars,
three ways, interleaved, with medians and ratios from the same run.

- tapewatch: ``engine.research`` on a LocalCluster of 2 single-threaded workers, no store
  (every cell computed), the bars scattered once; cluster start-up shown apart.
- vectorbt 1.2.0: one broadcast parameter grid (27 signal columns, one ``from_signals``); the
  first call's numba compile is shown apart and included in "cold".
- ``tapewatch backtest`` once per cell: 27 processes reading the same Parquet file.

Cells/s and bar-cells/s (bars x cells per second) for each, and the sweep's peak memory (the
driving process plus both workers, each one's peak RSS). Needs the dev extras.

    python bench/sweep_speed.py [--bars 1000000] [--rounds 3] [--skip-cli]
"""

from __future__ import annotations

import argparse
import itertools
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

PERIODS = (7, 14, 21)
OVERSOLD = (25.0, 30.0, 35.0)
OVERBOUGHT = (65.0, 70.0, 75.0)
CELLS = len(PERIODS) * len(OVERSOLD) * len(OVERBOUGHT)
SMA = 50
SEED = 11
START = date(1975, 1, 2)


def _peak_mb() -> float:
    """This process's peak RSS (VmHWM: reset at exec, unlike ru_maxrss, which a spawned
    worker would inherit from the process that forked it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def tapewatch_sweep(client: Any, bars: Any) -> float:
    from tapewatch.engine.research.executor import CellRunner
    from tapewatch.engine.research.space import Axis
    from tapewatch.engine.research.sweep import SweepPlan, run_sweep
    from tapewatch.engine.settings.config import EngineConfig

    plan = SweepPlan(
        axes=(
            Axis("rsi-period", PERIODS),
            Axis("rsi-oversold", OVERSOLD),
            Axis("rsi-overbought", OVERBOUGHT),
        )
    )
    t0 = time.perf_counter()
    result = run_sweep(bars, EngineConfig().validate(), plan, CellRunner(client, bars, None))
    took = time.perf_counter() - t0
    assert result.computed == CELLS, result.computed
    return took


def vectorbt_grid(bars: Any) -> float:
    """RSI (simple averages, as tapewatch's default) and SMA 50 for every period, entries
    RSI < oversold and close > SMA, exits RSI > overbought, 2% of equity per entry."""
    import numpy as np
    import pandas as pd
    import vectorbt as vbt

    t0 = time.perf_counter()
    index = pd.to_datetime(bars.ts_ns)  # tz-naive, vectorbt's fast case
    close = pd.Series(bars.close, index=index)
    sma = close.rolling(SMA).mean().to_numpy()
    rsi = vbt.RSI.run(close, window=list(PERIODS), ewm=False).rsi.to_numpy()  # (n, periods)
    columns = list(itertools.product(range(len(PERIODS)), OVERSOLD, OVERBOUGHT))
    c = bars.close[:, None]
    pick = np.array([p for p, _, _ in columns])
    low = np.array([o for _, o, _ in columns])
    high = np.array([h for _, _, h in columns])
    entries = (rsi[:, pick] < low) & (c > sma[:, None])
    exits = rsi[:, pick] > high
    names = pd.MultiIndex.from_tuples(
        [(PERIODS[p], o, h) for p, o, h in columns], names=["period", "oversold", "overbought"]
    )
    portfolio = vbt.Portfolio.from_signals(
        close,
        pd.DataFrame(entries, index=index, columns=names),
        pd.DataFrame(exits, index=index, columns=names),
        size=0.02,
        size_type="percent",
        init_cash=100_000.0,
        freq="5min",
    )
    portfolio.total_return()
    return time.perf_counter() - t0


def cli_per_cell(path: Path) -> float:
    t0 = time.perf_counter()
    for period, low, high in itertools.product(PERIODS, OVERSOLD, OVERBOUGHT):
        subprocess.run(
            [
                sys.executable,
                "-m",
                "tapewatch.console.cli",
                "backtest",
                "--data",
                str(path),
                "--rsi-period",
                str(period),
                "--rsi-oversold",
                str(low),
                "--rsi-overbought",
                str(high),
                "--json",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return time.perf_counter() - t0


def _line(name: str, seconds: list[float], bars: int, reference: float | None) -> str:
    median = statistics.median(seconds)
    ratio = f"  {reference / median:5.2f}x vectorbt warm" if reference else ""
    return (
        f"{name:<34} {median:8.2f} s  {CELLS / median:8.2f} cells/s  "
        f"{bars * CELLS / median / 1e6:8.2f} M bar-cells/s{ratio}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-cli", action="store_true", help="leave out the 27 processes")
    args = parser.parse_args()

    from tapewatch.engine.market.loader import write_parquet
    from tapewatch.engine.market.synthetic import generate
    from tapewatch.engine.research.executor import dask_client

    bars = generate("SPY", seed=SEED, start=START, n_bars=args.bars)
    folder = Path(tempfile.mkdtemp(prefix="sweep-bench-"))
    path = folder / "bars.parquet"
    write_parquet(bars, path)
    print(f"{CELLS} cells (RSI period x oversold x overbought) over {len(bars):,} bars")

    t0 = time.perf_counter()
    cold = vectorbt_grid(bars)  # the first call compiles vectorbt's numba kernels
    print(f"vectorbt cold (numba compile included): {cold:.2f} s")
    t0 = time.perf_counter()
    with dask_client(workers=2) as client:
        started = time.perf_counter() - t0
        print(f"LocalCluster start (2 workers, not counted below): {started:.2f} s")
        times: dict[str, list[float]] = {"tapewatch": [], "vectorbt": [], "cli": []}
        for _ in range(args.rounds):  # interleaved: the machine is shared and noisy
            times["tapewatch"].append(tapewatch_sweep(client, bars))
            times["vectorbt"].append(vectorbt_grid(bars))
            if not args.skip_cli:
                times["cli"].append(cli_per_cell(path))
        workers_peak = client.run(_peak_mb)
    warm = statistics.median(times["vectorbt"])
    compile_s = max(0.0, cold - warm)
    print(f"vectorbt numba compile (cold - warm median): {compile_s:.2f} s")
    n = len(bars)
    print(_line("tapewatch sweep (2 workers)", times["tapewatch"], n, warm))
    print(_line("vectorbt grid, warm", times["vectorbt"], n, warm))
    print(_line("vectorbt grid, cold (compile incl.)", [cold], n, warm))
    if times["cli"]:
        print(_line("tapewatch backtest x 27 processes", times["cli"], n, warm))
    sweep = statistics.median(times["tapewatch"])
    print(f"tapewatch vs vectorbt cold: {cold / sweep:.2f}x; vs warm: {warm / sweep:.2f}x")
    if times["cli"]:
        print(f"tapewatch vs backtest per cell: {statistics.median(times['cli']) / sweep:.2f}x")
    total = sum(workers_peak.values())
    print(
        f"sweep peak memory: driver {_peak_mb():.0f} MB (vectorbt ran here too) + workers "
        f"{' + '.join(f'{v:.0f}' for v in workers_peak.values())} MB = workers {total:.0f} MB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
