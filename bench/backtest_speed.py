"""Backtest throughput and peak memory: tapewatch vs backtesting.py, same bars, from a file.

The seeded synthetic bars are written once to a Parquet or CSV file; each run is its own
subprocess that reads that file as a user would (tapewatch through its loader, exactly as
``tapewatch backtest --data FILE`` does; backtesting.py through pandas) and backtests it, so
its peak RSS includes the load. Runs are interleaved (A B A B ...) and medians printed, each
beside the reference measured in the same run, with the ratio: these machines are shared and
noisy.

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


def run_tapewatch(path: Path) -> dict[str, float]:
    from tapewatch.engine.backtest.runner import run_backtest
    from tapewatch.engine.market.loader import load_bars
    from tapewatch.engine.settings.config import EngineConfig

    t0 = time.perf_counter()
    bars = load_bars(path, "SPY")
    loaded = time.perf_counter() - t0
    config = EngineConfig().validate()
    t0 = time.perf_counter()
    result = run_backtest(bars, config)
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
    parser.add_argument("--child", choices=("tapewatch", "backtesting"), help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        fn = run_tapewatch if args.child == "tapewatch" else run_backtesting_py
        print(json.dumps(fn(args.file)))
        return 0
    print(
        f"{'bars':>10}  {'tapewatch bars/s':>17}  {'backtesting.py bars/s':>22}  {'ratio':>6}  "
        f"{'tapewatch peak MB':>18}  {'backtesting.py peak MB':>23}  {'ratio':>6}"
    )
    with tempfile.TemporaryDirectory() as scratch:
        for n in args.bars:
            path = write_file(n, Path(scratch), args.format)
            ours: list[dict[str, float]] = []
            ref: list[dict[str, float]] = []
            for _ in range(args.repeat):  # A B A B ...: drift on a shared machine hits both
                ours.append(_child("tapewatch", path))
                ref.append(_child("backtesting", path))
            speed, ref_speed = _median(ours, "bars_per_s"), _median(ref, "bars_per_s")
            peak, ref_peak = _median(ours, "peak_mb"), _median(ref, "peak_mb")
            print(
                f"{n:>10,}  {speed:>17,.0f}  {ref_speed:>22,.0f}  {speed / ref_speed:>5.2f}x  "
                f"{peak:>18.0f}  {ref_peak:>23.0f}  {peak / ref_peak:>5.2f}x",
                flush=True,
            )
    print(
        f"medians of {args.repeat} interleaved runs from a {args.format} file; target: speed "
        "ratio >= 2.5x, tapewatch peak under 300 MB at 1,000,000 bars"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
