"""Backtest throughput and peak memory: tapewatch (its vectorised path and the engine loop)
vs backtesting.py, same bars, from a file.

The seeded synthetic bars are written once to a Parquet or CSV file; each run is its own
subprocess that reads that file as a user would (tapewatch through its loader, exactly as
``tapewatch backtest --data FILE`` does; backtesting.py through pandas) and backtests it, so
its peak RSS includes the load. Runs are interleaved (A B C A B C ...) and medians printed,
each beside the references measured in the same run, with the ratios: these machines are
shared and noisy. "vector" is what ``tapewatch backtest`` runs; "engine loop" is
``--engine-loop`` (the same fills and report, bar by bar through the engine).

    python bench/backtest_speed.py [--bars 60000 1000000] [--repeat 3] [--format parquet|csv]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from datetime import date
from pathlib import Path

SIDES = ("tapewatch", "engine", "backtesting")  # the vector path, --engine-loop, backtesting.py
START = date(1975, 1, 2)
SEED = 11


def _bars(n: int):  # type: ignore[no-untyped-def]
    from tapewatch.engine.market.synthetic import generate

    return generate("SPY", seed=SEED, start=START, n_bars=n)


def write_file(n: int, folder: Path, kind: str) -> Path:
    from tapewatch.engine.market.loader import write_csv, write_parquet

    path = folder / f"bars-{n}.{kind}"
    (write_parquet if kind == "parquet" else write_csv)(_bars(n), path)
    return path


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_tapewatch(path: Path, *, vector: bool = True) -> dict[str, float]:
    from tapewatch.engine.backtest.runner import run_backtest
    from tapewatch.engine.market.loader import load_bars
    from tapewatch.engine.settings.config import EngineConfig

    t0 = time.perf_counter()
    bars = load_bars(path, "SPY")
    loaded = time.perf_counter() - t0
    config = EngineConfig().validate()
    t0 = time.perf_counter()
    result = run_backtest(bars, config, vector=vector)
    elapsed = time.perf_counter() - t0
    return {
        "bars_per_s": len(bars) / elapsed,
        "load_s": loaded,
        "peak_mb": _peak_mb(),
        "trades": result.report.trades,
    }


def run_backtesting_py(path: Path) -> dict[str, float]:
    import numpy as np
    import pandas as pd

    warnings.filterwarnings("ignore")
    from backtesting import Backtest, Strategy

    t0 = time.perf_counter()
    raw = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    frame = pd.DataFrame(
        {
            "Open": raw["open"].to_numpy(),
            "High": raw["high"].to_numpy(),
            "Low": raw["low"].to_numpy(),
            "Close": raw["close"].to_numpy(),
            "Volume": raw["volume"].to_numpy(),
        },
        index=pd.to_datetime(raw["timestamp"], utc=True).dt.tz_localize(None),
    )
    del raw
    loaded = time.perf_counter() - t0
    n = len(frame)

    def sma(values: np.ndarray, period: int) -> np.ndarray:
        return pd.Series(values).rolling(period).mean().to_numpy()

    def rsi(values: np.ndarray, period: int) -> np.ndarray:
        delta = pd.Series(values).diff()
        gain = delta.clip(lower=0).rolling(period).mean()
        loss = (-delta.clip(upper=0)).rolling(period).mean()
        out = 100 - 100 / (1 + gain / loss)
        return out.to_numpy()

    class RsiSma(Strategy):
        def init(self) -> None:
            self.rsi = self.I(rsi, self.data.Close, 14)
            self.sma = self.I(sma, self.data.Close, 50)

        def next(self) -> None:
            r = self.rsi[-1]
            if not self.position and r < 30 and self.data.Close[-1] > self.sma[-1]:
                self.buy(size=0.02)
            elif self.position and r > 70:
                self.position.close()

    bt = Backtest(frame, RsiSma, cash=100_000, commission=0.0, finalize_trades=True)
    t0 = time.perf_counter()
    stats = bt.run()
    elapsed = time.perf_counter() - t0
    return {
        "bars_per_s": n / elapsed,
        "load_s": loaded,
        "peak_mb": _peak_mb(),
        "trades": int(stats["# Trades"]),
    }


def _child(side: str, path: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", side, "--file", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _median(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, nargs="+", default=[60_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3, help="interleaved runs per side")
    parser.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    parser.add_argument("--child", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if args.child == "backtesting":
            print(json.dumps(run_backtesting_py(args.file)))
        else:
            print(json.dumps(run_tapewatch(args.file, vector=args.child == "tapewatch")))
        return 0
    print(
        f"{'bars':>10}  {'vector bars/s':>14}  {'engine loop bars/s':>19}  "
        f"{'backtesting.py bars/s':>22}  {'vs loop':>7}  {'vs bt.py':>8}  "
        f"{'vector peak MB':>15}  {'backtesting.py peak MB':>23}  {'ratio':>6}"
    )
    with tempfile.TemporaryDirectory() as scratch:
        for n in args.bars:
            path = write_file(n, Path(scratch), args.format)
            runs: dict[str, list[dict[str, float]]] = {side: [] for side in SIDES}
            for _ in range(args.repeat):  # A B C A B C ...: drift on a shared machine hits all
                for side in SIDES:
                    runs[side].append(_child(side, path))
            trades = {side: {r["trades"] for r in runs[side]} for side in ("tapewatch", "engine")}
            if trades["tapewatch"] != trades["engine"]:
                raise SystemExit(f"the two tapewatch paths disagree on trades: {trades}")
            speed = _median(runs["tapewatch"], "bars_per_s")
            loop = _median(runs["engine"], "bars_per_s")
            ref_speed = _median(runs["backtesting"], "bars_per_s")
            peak = _median(runs["tapewatch"], "peak_mb")
            ref_peak = _median(runs["backtesting"], "peak_mb")
            print(
                f"{n:>10,}  {speed:>14,.0f}  {loop:>19,.0f}  {ref_speed:>22,.0f}  "
                f"{speed / loop:>6.1f}x  {speed / ref_speed:>7.1f}x  "
                f"{peak:>15.0f}  {ref_peak:>23.0f}  {peak / ref_peak:>5.2f}x",
                flush=True,
            )
    print(
        f"medians of {args.repeat} interleaved runs from a {args.format} file; targets: vector "
        "5-10x the engine loop, ahead of backtesting.py, peak under 300 MB at 1,000,000 bars"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
