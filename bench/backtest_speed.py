"""Backtest throughput and peak memory: tapewatch's full engine vs backtesting.py, same bars.

Each side runs in its own subprocess (so peak RSS is its own) on the same seeded synthetic
bars; bar generation is not timed. Figures are printed beside the reference measured in the
same run, with the ratio, because these machines are shared and noisy.

    python bench/backtest_speed.py [--bars 60000 1000000] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import warnings
from datetime import date

START = date(1975, 1, 2)
SEED = 11


def _bars(n: int):  # type: ignore[no-untyped-def]
    from tapewatch.engine.market.synthetic import generate

    return generate("SPY", seed=SEED, start=START, n_bars=n)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_tapewatch(n: int) -> dict[str, float]:
    from tapewatch.engine.backtest.runner import run_backtest
    from tapewatch.engine.settings.config import EngineConfig

    bars = _bars(n)
    config = EngineConfig().validate()
    t0 = time.perf_counter()
    result = run_backtest(bars, config)
    elapsed = time.perf_counter() - t0
    return {
        "bars_per_s": n / elapsed,
        "seconds": elapsed,
        "peak_mb": _peak_mb(),
        "trades": result.report.trades,
    }


def run_backtesting_py(n: int) -> dict[str, float]:
    import numpy as np
    import pandas as pd

    warnings.filterwarnings("ignore")
    from backtesting import Backtest, Strategy

    arrays = _bars(n)
    frame = pd.DataFrame(
        {
            "Open": arrays.open,
            "High": arrays.high,
            "Low": arrays.low,
            "Close": arrays.close,
            "Volume": arrays.volume,
        },
        index=pd.to_datetime(arrays.ts_ns, utc=True).tz_localize(None),
    )
    del arrays

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
        "seconds": elapsed,
        "peak_mb": _peak_mb(),
        "trades": int(stats["# Trades"]),
    }


def _child(side: str, n: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", side, "--bars", str(n)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, nargs="+", default=[60_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=1, help="best of N runs per side")
    parser.add_argument("--child", choices=("tapewatch", "backtesting"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        fn = run_tapewatch if args.child == "tapewatch" else run_backtesting_py
        print(json.dumps(fn(args.bars[0])))
        return 0
    print(
        f"{'bars':>10}  {'tapewatch bars/s':>17}  {'backtesting.py bars/s':>22}  {'ratio':>6}  "
        f"{'tapewatch peak MB':>18}  {'backtesting.py peak MB':>23}"
    )
    for n in args.bars:
        ours = max(
            (_child("tapewatch", n) for _ in range(args.repeat)), key=lambda r: r["bars_per_s"]
        )
        ref = max(
            (_child("backtesting", n) for _ in range(args.repeat)), key=lambda r: r["bars_per_s"]
        )
        ratio = ours["bars_per_s"] / ref["bars_per_s"]
        print(
            f"{n:>10,}  {ours['bars_per_s']:>17,.0f}  {ref['bars_per_s']:>22,.0f}  {ratio:>5.2f}x  "
            f"{ours['peak_mb']:>18.0f}  {ref['peak_mb']:>23.0f}",
            flush=True,
        )
    print("target: ratio >= 2.5x; tapewatch peak under 300 MB at 1,000,000 bars")
    return 0


if __name__ == "__main__":
    sys.exit(main())
