"""Sweep and single-backtest throughput against vectorbt, and the sweep's own peak memory.

A 3x3x3 grid (RSI period x oversold x overbought) over the same seeded synthetic bars, three
ways, interleaved (A B C A B C ...), medians and ratios from the same run:

- tapewatch: ``engine.research`` on a LocalCluster of 2 single-threaded workers, no store
  (every cell computed), the bars scattered once per sweep; cluster start-up shown apart.
- vectorbt 1.2.0: one broadcast parameter grid (27 signal columns, one ``from_signals``).
- ``tapewatch backtest`` once per cell: 27 processes reading the same Parquet file (written
  by a process of its own, so pyarrow's peak is not counted in the driver's).

Then one 1M-bar backtest of the default cell (RSI 14 simple averages, SMA 50, entries
RSI < 30 and close > SMA, exits RSI > 70, 2% of equity, 100,000 cash): tapewatch's fast path
(``run_backtest``, its derived-work memo forgotten before every run, so no run reuses another's
indicators) against vectorbt's ``Portfolio.from_signals`` with ``total_return()``, both warm
(one discarded run each first), bars/s and the ratio, interleaved with the sweeps. vectorbt's
single cell is timed twice: from its close Series already built (its core), and with the
Series built inside the timing from the same numpy arrays tapewatch starts from
(``pd.to_datetime`` of the stamps, the way the issue's vectorbt figure was taken).

vectorbt runs in its own long-lived child process, and tapewatch's single backtests in a
second one, so this process's peak is only the sweep's driver. Each child regenerates the same
bars itself (``generate`` is deterministic for a seed) and answers a line protocol on stdin and
stdout: "grid" or "single" -> the seconds it took, "peak" -> its peak RSS (VmHWM). Timing
starts after the imports and with the close series (tz-naive DatetimeIndex) already built, as
tapewatch's side starts from built bars. The vectorbt child's FIRST "grid" is the cold one: its
numba compile is reported as cold minus the warm median and counted in "cold". vectorbt 1.2.0
compiles its kernels with ``njit(cache=True)``, so an on-disk cache from an earlier run would
make "cold" warm: the child's ``NUMBA_CACHE_DIR`` points at a fresh temp dir (numba's
user-provided cache locator comes before the in-tree ``__pycache__`` one), removed at the end.

Memory: the sweep's peak is the sum of each of its processes' VmHWM (the peak since that
process started): this driver (which also hosts the LocalCluster's scheduler and nannies),
every worker, and any helper the cluster started (multiprocessing's resource tracker), read at
the end of the last sweep, against the 1 GB goal; the children's peaks are printed beside it
for reference. A last block says which of the issue's goals are met.
Needs the dev extras.

    python bench/sweep_speed.py [--bars 1000000] [--rounds 3] [--skip-cli]
"""

from __future__ import annotations

import argparse
import itertools
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import IO, Any

PERIODS = (7, 14, 21)
OVERSOLD = (25.0, 30.0, 35.0)
OVERBOUGHT = (65.0, 70.0, 75.0)
CELLS = len(PERIODS) * len(OVERSOLD) * len(OVERBOUGHT)
DEFAULT_CELL = (14, 30.0, 70.0)  # tapewatch's default strategy: the single backtest
SMA = 50
SIZE = 0.02
CASH = 100_000.0
SEED = 11
START = date(1975, 1, 2)
MEMORY_GOAL_MB = 1024.0
SIDES = ("vectorbt", "tapewatch")


def _peak_mb(pid: int | str = "self") -> float:
    """A process's peak RSS (VmHWM: reset at exec, unlike ru_maxrss, which a spawned worker
    would inherit from the process that forked it); this process's ru_maxrss without /proc."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def sweep_peaks(client: Any, exclude: set[int]) -> dict[str, float]:
    """Peak MB of every process the sweep runs on: this driver (the scheduler and the
    nannies live in it), each worker, and any other process the cluster started (the
    multiprocessing resource tracker); the bench's own children in ``exclude`` left out."""
    import psutil

    workers = set(client.run(os.getpid).values())
    peaks = {"driver": _peak_mb()}
    found: set[int] = set()
    for child in psutil.Process().children(recursive=True):
        if child.pid in exclude:
            continue
        kind = "worker" if child.pid in workers else "helper"
        found.add(child.pid)
        peaks[f"{kind} {sum(name.startswith(kind) for name in peaks) + 1}"] = _peak_mb(child.pid)
    if workers - found:
        raise RuntimeError(f"workers {sorted(workers - found)} are not this process's children")
    return peaks


def _bars(n: int) -> Any:
    from tapewatch.engine.market.synthetic import generate

    return generate("SPY", seed=SEED, start=START, n_bars=n)


# --- tapewatch ------------------------------------------------------------------------------


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
    runner = CellRunner(client, bars, None)
    result = run_sweep(bars, EngineConfig().validate(), plan, runner)
    took = time.perf_counter() - t0
    runner.release()  # as ``tapewatch sweep`` does at the end: the next round starts clean
    assert result.computed == CELLS, result.computed
    return took


def tapewatch_single(bars: Any) -> float:
    """One backtest of the default cell through the fast path, nothing reused from the last."""
    from tapewatch.engine.backtest import memo
    from tapewatch.engine.backtest.runner import run_backtest
    from tapewatch.engine.settings.config import EngineConfig

    config = EngineConfig().validate()
    memo.forget()
    t0 = time.perf_counter()
    run_backtest(bars, config)
    return time.perf_counter() - t0


def tapewatch_path(bars: Any) -> str:
    """Which loop the single backtest takes (the bench means the vector path)."""
    from tapewatch.engine.backtest.runner import chosen_path
    from tapewatch.engine.settings.config import EngineConfig

    return chosen_path(bars, EngineConfig().validate(), lean=True, vector=True)


# --- vectorbt -------------------------------------------------------------------------------


def vectorbt_close(bars: Any) -> Any:
    """The close as a Series on a tz-naive DatetimeIndex (vectorbt's fast case)."""
    import pandas as pd

    return pd.Series(bars.close, index=pd.to_datetime(bars.ts_ns))


def _vectorbt_run(close: Any, columns: list[tuple[int, float, float]]) -> None:
    """RSI (simple averages, as tapewatch's default) and SMA 50 for every period in
    ``columns``, entries RSI < oversold and close > SMA, exits RSI > overbought, 2% of
    equity per entry, one ``from_signals`` over all the columns, total return computed."""
    import numpy as np
    import pandas as pd
    import vectorbt as vbt

    periods = sorted({p for p, _, _ in columns})
    sma = close.rolling(SMA).mean().to_numpy()
    rsi = vbt.RSI.run(close, window=periods, ewm=False).rsi.to_numpy().reshape(len(close), -1)
    c = close.to_numpy()[:, None]
    pick = np.array([periods.index(p) for p, _, _ in columns])
    low = np.array([o for _, o, _ in columns])
    high = np.array([h for _, _, h in columns])
    entries = (rsi[:, pick] < low) & (c > sma[:, None])
    exits = rsi[:, pick] > high
    names = pd.MultiIndex.from_tuples(columns, names=["period", "oversold", "overbought"])
    portfolio = vbt.Portfolio.from_signals(
        close,
        pd.DataFrame(entries, index=close.index, columns=names),
        pd.DataFrame(exits, index=close.index, columns=names),
        size=SIZE,
        size_type="percent",
        init_cash=CASH,
        freq="5min",
    )
    portfolio.total_return()


def vectorbt_grid(close: Any) -> float:
    t0 = time.perf_counter()
    _vectorbt_run(close, list(itertools.product(PERIODS, OVERSOLD, OVERBOUGHT)))
    return time.perf_counter() - t0


def vectorbt_single(close: Any) -> float:
    t0 = time.perf_counter()
    _vectorbt_run(close, [DEFAULT_CELL])
    return time.perf_counter() - t0


def vectorbt_single_from_arrays(bars: Any) -> float:
    """The same cell with the Series built inside the timing from the arrays tapewatch starts
    from (``pd.to_datetime`` of the epoch-ns stamps, as the issue's vectorbt figure was taken)."""
    t0 = time.perf_counter()
    _vectorbt_run(vectorbt_close(bars), [DEFAULT_CELL])
    return time.perf_counter() - t0


# --- the children ---------------------------------------------------------------------------


def _handlers(side: str, n: int) -> dict[str, Callable[[], float]]:
    """What a child answers to, over bars it builds itself (the same seed as the driver's)."""
    bars = _bars(n)
    if side == "vectorbt":
        import vectorbt  # noqa: F401  (imported before "ready", not inside a timed call)

        close = vectorbt_close(bars)
        return {
            "grid": lambda: vectorbt_grid(close),
            "single": lambda: vectorbt_single(close),
            "single-arrays": lambda: vectorbt_single_from_arrays(bars),
        }
    path = tapewatch_path(bars)
    if path != "vector":
        raise SystemExit(f"the default backtest takes the {path} loop, not the vector path")
    return {"single": lambda: tapewatch_single(bars)}


def serve(side: str, n: int) -> int:
    """A child's loop: one reply line per request line, until "peak" or end of input.
    Replies go to the real stdout; anything a library prints goes to stderr instead."""
    out = sys.stdout
    sys.stdout = sys.stderr
    t0 = time.perf_counter()
    handlers = _handlers(side, n)
    print(f"ready {time.perf_counter() - t0:.6f}", file=out, flush=True)
    for line in sys.stdin:
        request = line.strip()
        if request == "peak":
            print(f"{_peak_mb():.6f}", file=out, flush=True)
            return 0
        if request not in handlers:
            print(f"error unknown request {request!r}", file=out, flush=True)
            return 2
        print(f"{handlers[request]():.6f}", file=out, flush=True)
    return 0


class Child:
    """A long-lived ``--child SIDE`` process that answers requests with a number."""

    def __init__(self, side: str, n: int, env: dict[str, str] | None = None) -> None:
        self.side = side
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--child", side, "--bars", str(n)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
            env=env,
        )
        self.started = self._reply("ready")

    def _reply(self, expected: str | None = None) -> float:
        stdout: IO[str] = self.process.stdout  # type: ignore[assignment]
        words = stdout.readline().split()
        if expected is not None and words[:1] == [expected]:
            words = words[1:]
        try:
            return float(words[0])
        except (IndexError, ValueError):
            code = self.process.poll()
            raise RuntimeError(f"the {self.side} child answered {words!r} (exit {code})") from None

    def ask(self, request: str) -> float:
        stdin: IO[str] = self.process.stdin  # type: ignore[assignment]
        stdin.write(request + "\n")
        stdin.flush()
        return self._reply()

    def close(self) -> float:
        """Its peak RSS in MB; the child exits."""
        peak = self.ask("peak")
        self.process.wait(timeout=60)
        return peak


def vectorbt_child(n: int, cache: Path) -> Child:
    """The vectorbt child, its numba on-disk cache pointed at the empty ``cache`` dir."""
    return Child("vectorbt", n, env={**os.environ, "NUMBA_CACHE_DIR": str(cache)})


def write_bars(n: int, path: Path) -> None:
    """The bars as the Parquet file the per-cell ``tapewatch backtest`` processes read."""
    from tapewatch.engine.market.loader import write_parquet

    write_parquet(_bars(n), path)


# --- the CLI per cell -----------------------------------------------------------------------


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


# --- the report -----------------------------------------------------------------------------


def _sweep_line(name: str, seconds: list[float], bars: int, reference: float) -> str:
    median = statistics.median(seconds)
    return (
        f"{name:<38} {median:8.2f} s  {CELLS / median:8.2f} cells/s  "
        f"{bars * CELLS / median / 1e6:8.2f} M bar-cells/s  "
        f"{reference / median:5.2f}x vectorbt warm"
    )


def _single_line(name: str, seconds: list[float], bars: int, reference: float) -> str:
    median = statistics.median(seconds)
    return (
        f"{name:<38} {median:8.3f} s  {bars / median / 1e6:8.2f} M bars/s  "
        f"{reference / median:5.2f}x vectorbt warm"
    )


def _memory_line(peaks: dict[str, float]) -> str:
    total = sum(peaks.values())
    within = "within" if total <= MEMORY_GOAL_MB else "over"
    parts = " + ".join(f"{name} {mb:.0f}" for name, mb in peaks.items())
    return (
        f"sweep peak memory (VmHWM, MB): {parts} = {total:.0f} MB "
        f"({within} the {MEMORY_GOAL_MB:.0f} MB goal)"
    )


def _goal(name: str, value: str, goal: str, met: bool) -> str:
    return f"  {name:<36} {value:>10}  goal {goal:<10} {'met' if met else 'not met'}"


def _goals(
    cold_ratio: float, warm_ratio: float, single_ratios: tuple[float, float], memory: float
) -> str:
    built, arrays = single_ratios
    return "\n".join(
        [
            "goals:",
            _goal("sweep vs vectorbt cold", f"{cold_ratio:.2f}x", "> 1x", cold_ratio > 1.0),
            _goal("sweep vs vectorbt warm", f"{warm_ratio:.2f}x", ">= 0.5x", warm_ratio >= 0.5),
            _goal("single vs vectorbt, Series built", f"{built:.2f}x", ">= 1x", built >= 1.0),
            _goal("single vs vectorbt, from arrays", f"{arrays:.2f}x", ">= 1x", arrays >= 1.0),
            _goal(
                "sweep peak memory",
                f"{memory:.0f} MB",
                f"<= {MEMORY_GOAL_MB:.0f} MB",
                memory <= MEMORY_GOAL_MB,
            ),
        ]
    )


# --- the driver -----------------------------------------------------------------------------


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-cli", action="store_true", help="leave out the 27 processes")
    parser.add_argument("--child", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--parquet", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args()


def drive(n_bars: int, rounds: int, skip_cli: bool) -> None:
    from tapewatch.engine.research.executor import dask_client

    bars = _bars(n_bars)
    n = len(bars)
    folder = Path(tempfile.mkdtemp(prefix="sweep-bench-"))
    cache = folder / "numba-cache"
    cache.mkdir()
    path = folder / "bars.parquet"
    if not skip_cli:  # written by a process of its own: pyarrow's peak is not the sweep's
        subprocess.run(
            [sys.executable, __file__, "--bars", str(n_bars), "--parquet", str(path)], check=True
        )
    print(f"{CELLS} cells (RSI period x oversold x overbought) over {n:,} bars")
    try:
        vbt = vectorbt_child(n_bars, cache)
        single = Child("tapewatch", n_bars)
        print(
            f"children up (imports and bars, not counted): vectorbt {vbt.started:.2f} s, "
            f"tapewatch {single.started:.2f} s"
        )
        cold = vbt.ask("grid")  # its first call: vectorbt compiles its numba kernels
        written = sum(1 for p in cache.rglob("*") if p.is_file())
        print(f"vectorbt grid cold (numba compile included): {cold:.2f} s")
        print(f"  numba cache: a fresh dir, {written} files written by the cold call")
        vbt.ask("single")  # warm-ups, not counted
        single.ask("single")
        t0 = time.perf_counter()
        with dask_client(workers=2) as client:
            print(f"LocalCluster start (2 workers, not counted): {time.perf_counter() - t0:.2f} s")
            times: dict[str, list[float]] = {
                k: [] for k in ("sweep", "grid", "cli", "tw single", "vbt single", "vbt arrays")
            }
            for _ in range(rounds):  # interleaved: the machine is shared and noisy
                times["sweep"].append(tapewatch_sweep(client, bars))
                times["grid"].append(vbt.ask("grid"))
                if not skip_cli:
                    times["cli"].append(cli_per_cell(path))
                times["tw single"].append(single.ask("single"))
                times["vbt single"].append(vbt.ask("single"))
                times["vbt arrays"].append(vbt.ask("single-arrays"))
            peaks = sweep_peaks(client, {vbt.process.pid, single.process.pid})
        vbt_peak, single_peak = vbt.close(), single.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    warm = statistics.median(times["grid"])
    sweep = statistics.median(times["sweep"])
    print(f"vectorbt numba compile (cold - warm median): {max(0.0, cold - warm):.2f} s")
    print(_sweep_line("tapewatch sweep (2 workers)", times["sweep"], n, warm))
    print(_sweep_line("vectorbt grid, warm", times["grid"], n, warm))
    print(_sweep_line("vectorbt grid, cold (compile incl.)", [cold], n, warm))
    if times["cli"]:
        print(_sweep_line("tapewatch backtest x 27 processes", times["cli"], n, warm))
        per_cell = statistics.median(times["cli"])
        print(f"tapewatch sweep vs backtest per cell: {per_cell / sweep:.2f}x")
    vbt_single = statistics.median(times["vbt single"])
    print(_single_line("tapewatch backtest, 1 cell (vector)", times["tw single"], n, vbt_single))
    print(_single_line("vectorbt from_signals, 1 cell, warm", times["vbt single"], n, vbt_single))
    print(_single_line("vectorbt, index built from the arrays", times["vbt arrays"], n, vbt_single))
    print(_memory_line(peaks))
    print(
        f"for reference, children's peaks: vectorbt {vbt_peak:.0f} MB, "
        f"tapewatch single backtests {single_peak:.0f} MB"
    )
    memory = sum(peaks.values())
    tw_single = statistics.median(times["tw single"])
    single_ratios = (vbt_single / tw_single, statistics.median(times["vbt arrays"]) / tw_single)
    print(_goals(cold / sweep, warm / sweep, single_ratios, memory))


def main() -> int:
    args = _arguments()
    if args.child:
        return serve(args.child, args.bars)
    if args.parquet:
        write_bars(args.bars, args.parquet)
        return 0
    drive(args.bars, args.rounds, args.skip_cli)
    return 0


if __name__ == "__main__":
    sys.exit(main())
