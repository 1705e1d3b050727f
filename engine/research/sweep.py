"""The sweep itself: which cells to run (a grid, or Optuna's ask/tell), ranking, walk-forward.

``run_sweep`` takes the bars, the base configuration (config file and flags) and a plan, and
drives a ``CellRunner``. Searches ask Optuna for a fixed-size batch of trials at a time and
tell the results back in the order asked, so a seeded search picks the same cells whatever
the cluster's size. The walk-forward picks the best cell of each training window by the
objective and runs it on the test window that follows, then stitches the test windows'
equity curves into one out-of-sample run.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from tapewatch.engine.backtest.stats import annualisation, max_drawdown, sharpe
from tapewatch.engine.market.bars import BarArrays, datetime_from_ns
from tapewatch.engine.research.cells import CellTask, calmar
from tapewatch.engine.research.executor import CellRunner
from tapewatch.engine.research.space import Axis, Span, Value, grid_cells, valid
from tapewatch.engine.research.store import cell_key, data_hash
from tapewatch.engine.research.windows import WalkForward, Window
from tapewatch.engine.settings.config import EngineConfig

OBJECTIVES = ("sharpe", "return", "calmar")
SEARCHES = ("grid", "random", "tpe")
BATCH = 8
"""Trials asked of Optuna at a time: fixed, so a seeded search does not depend on the cluster."""


def metric(report: dict[str, object], objective: str) -> float:
    """The objective's value of a cell's report (NaN ranks last)."""
    if objective == "calmar":
        value = calmar(report)
    else:
        value = float(report["total_return" if objective == "return" else "sharpe"])  # type: ignore[arg-type]
    return value if math.isfinite(value) else -math.inf


@dataclass(frozen=True, slots=True)
class SweepPlan:
    axes: tuple[Axis, ...] = ()
    spans: tuple[Span, ...] = ()
    search: str = "grid"
    trials: int = 0
    seed: int = 0
    objective: str = "sharpe"
    walk_forward: WalkForward | None = None

    @property
    def names(self) -> list[str]:
        return [a.name for a in self.axes] + [s.name for s in self.spans]


@dataclass(frozen=True, slots=True)
class CellRow:
    params: dict[str, Value]
    report: dict[str, object]
    score: float

    def as_dict(self) -> dict[str, object]:
        return {"params": self.params, "score": _json_float(self.score), "report": self.report}


@dataclass(frozen=True, slots=True)
class WindowResult:
    window: Window
    train: tuple[str, str]
    test: tuple[str, str]
    best: CellRow
    cells: int
    out_of_sample: dict[str, object]

    def as_dict(self) -> dict[str, object]:
        return {
            "train": {"start": self.train[0], "end": self.train[1]},
            "test": {"start": self.test[0], "end": self.test[1]},
            "cells": self.cells,
            "best_params": self.best.params,
            "in_sample": _figures(self.best.report),
            "out_of_sample": _figures(self.out_of_sample),
        }


@dataclass(frozen=True, slots=True)
class WalkResult:
    spec: str
    windows: tuple[WindowResult, ...]
    stitched: dict[str, float]
    in_sample_mean: dict[str, float]

    def as_dict(self) -> dict[str, object]:
        return {
            "spec": self.spec,
            "windows": [w.as_dict() for w in self.windows],
            "out_of_sample_stitched": {k: _json_float(v) for k, v in self.stitched.items()},
            "in_sample_mean": {k: _json_float(v) for k, v in self.in_sample_mean.items()},
        }


@dataclass
class SweepResult:
    objective: str
    search: str
    names: list[str]
    rows: list[CellRow] = field(default_factory=list)
    walk: WalkResult | None = None
    computed: int = 0
    from_store: int = 0
    skipped: int = 0

    @property
    def best(self) -> CellRow | None:
        if self.walk is not None and self.walk.windows:
            return self.walk.windows[-1].best  # the latest window's choice: what to trade next
        return self.rows[0] if self.rows else None

    def as_dict(self) -> dict[str, object]:
        best = self.best
        return {
            "objective": self.objective,
            "search": self.search,
            "parameters": self.names,
            "cells": [r.as_dict() for r in self.rows],
            "best": None if best is None else best.params,
            "computed": self.computed,
            "from_store": self.from_store,
            "skipped": self.skipped,
            "walk_forward": None if self.walk is None else self.walk.as_dict(),
        }


def _json_float(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _figures(report: dict[str, object]) -> dict[str, object]:
    keys = ("total_return", "cagr", "sharpe", "max_drawdown", "trades", "bars")
    out: dict[str, object] = {k: report[k] for k in keys if k in report}
    out["calmar"] = calmar(report)
    return out


def rank(rows: Sequence[CellRow]) -> list[CellRow]:
    """Best score first; ties in the parameters' order, so the table is the same every run."""
    return sorted(rows, key=lambda r: (-r.score, json.dumps(r.params, sort_keys=True)))


class _Sweeper:
    def __init__(self, bars: BarArrays, base: EngineConfig, plan: SweepPlan, runner: CellRunner):
        self.bars = bars
        self.base = base
        self.plan = plan
        self.runner = runner
        self.data = data_hash(bars)

    def task(self, config: EngineConfig, start: int, stop: int, *, curve: bool = False) -> CellTask:
        key = cell_key(config, self.data, window=(start, stop), curve=curve)
        return CellTask(key, config, start, stop, curve)

    def cells(self, start: int, stop: int) -> list[CellRow]:
        if self.plan.search == "grid":
            return self._grid(start, stop)
        return self._search(start, stop)

    def _grid(self, start: int, stop: int) -> list[CellRow]:
        chosen: list[tuple[dict[str, Value], CellTask]] = []
        for params in grid_cells(self.plan.axes) if self.plan.axes else [{}]:
            config = valid(self.base, params)
            if config is None:
                self.runner.skip()
                continue
            chosen.append((params, self.task(config, start, stop)))
        done = self.runner.run([t for _, t in chosen])
        objective = self.plan.objective
        return rank(
            [
                CellRow(p, done[t.key].report, metric(done[t.key].report, objective))
                for p, t in chosen
            ]
        )

    def _search(self, start: int, stop: int) -> list[CellRow]:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        seed = self.plan.seed
        sampler = (
            optuna.samplers.RandomSampler(seed=seed)
            if self.plan.search == "random"
            else optuna.samplers.TPESampler(seed=seed)
        )
        study = optuna.create_study(direction="maximize", sampler=sampler)
        rows: list[CellRow] = []
        left = self.plan.trials
        while left > 0:
            trials = [study.ask() for _ in range(min(BATCH, left))]
            left -= len(trials)
            asked: list[tuple[optuna.Trial, dict[str, Value], CellTask]] = []
            for trial in trials:
                params = self._suggest(trial)
                config = valid(self.base, params)
                if config is None:
                    self.runner.skip()
                    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                    continue
                asked.append((trial, params, self.task(config, start, stop)))
            done = self.runner.run([t for _, _, t in asked])
            for trial, params, task in asked:
                report = done[task.key].report
                score = metric(report, self.plan.objective)
                study.tell(trial, score if math.isfinite(score) else -1e12)
                rows.append(CellRow(params, report, score))
        unique = {json.dumps(r.params, sort_keys=True): r for r in rows}
        return rank(list(unique.values()))

    def _suggest(self, trial: object) -> dict[str, Value]:
        params: dict[str, Value] = {}
        for axis in self.plan.axes:
            params[axis.name] = trial.suggest_categorical(axis.name, list(axis.values))  # type: ignore[attr-defined]
        for span in self.plan.spans:
            if span.whole:
                value: Value = trial.suggest_int(span.name, int(span.low), int(span.high))  # type: ignore[attr-defined]
            else:
                value = trial.suggest_float(span.name, span.low, span.high)  # type: ignore[attr-defined]
            params[span.name] = value
        return params

    def walk(self, spec: WalkForward) -> WalkResult:
        from tapewatch.engine.settings.errors import UsageError

        windows = spec.windows(self.bars.ts_ns)
        if not windows:
            raise UsageError(
                f"--walk-forward {spec.describe()} leaves no test window in these "
                f"{len(self.bars):,} bars; shorten train or test, or use more data"
            )
        results: list[WindowResult] = []
        for w in windows:
            rows = self.cells(w.train_start, w.train_stop)
            if not rows:
                continue
            best = rows[0]
            config = valid(self.base, best.params)
            assert config is not None
            task = self.task(config, w.test_start, w.test_stop, curve=True)
            outcome = self.runner.run([task])[task.key]
            results.append(
                WindowResult(
                    window=w,
                    train=(self._stamp(w.train_start), self._stamp(w.train_stop - 1)),
                    test=(self._stamp(w.test_start), self._stamp(w.test_stop - 1)),
                    best=best,
                    cells=len(rows),
                    out_of_sample={**outcome.report, "_curve": outcome.curve},
                )
            )
        stitched = self._stitch(results)
        for r in results:
            r.out_of_sample.pop("_curve", None)
        mean = (
            {
                key: float(np.mean([float(r.best.report[key]) for r in results]))  # type: ignore[arg-type]
                for key in ("total_return", "sharpe", "max_drawdown")
            }
            if results
            else {}
        )
        return WalkResult(spec.describe(), tuple(results), stitched, mean)

    def _stamp(self, i: int) -> str:
        return datetime_from_ns(int(self.bars.ts_ns[i])).isoformat()

    def _stitch(self, results: Sequence[WindowResult]) -> dict[str, float]:
        """The test windows back to back as one run: each window's per-bar returns, chained."""
        if not results:
            return {}
        cash = self.base.starting_cash
        returns = []
        stamps = []
        for r in results:
            curve = np.asarray(r.out_of_sample["_curve"], dtype=np.float64)
            prev = np.concatenate(([cash], curve[:-1]))
            returns.append(curve / prev - 1.0)
            stamps.append(self.bars.ts_ns[r.window.test_start : r.window.test_stop])
        chained = cash * np.cumprod(1.0 + np.concatenate(returns))
        ts = np.concatenate(stamps)
        curve = np.concatenate(([cash], chained))
        tf = self.base.strategy.tf.seconds
        _, per_year = annualisation(ts, tf)
        years = (int(ts[-1]) - int(ts[0]) + tf * 1_000_000_000) / (365.25 * 86_400e9)
        total = float(curve[-1] / cash - 1.0)
        cagr = (curve[-1] / cash) ** (1.0 / years) - 1.0 if years > 0 and curve[-1] > 0 else 0.0
        mdd = max_drawdown(curve)  # type: ignore[arg-type]
        return {
            "total_return": total,
            "cagr": float(cagr),
            "sharpe": sharpe(curve, per_year),  # type: ignore[arg-type]
            "max_drawdown": mdd,
            "calmar": float(cagr) / mdd if mdd > 0 else 0.0,
            "bars": float(len(ts)),
        }


def run_sweep(
    bars: BarArrays, base: EngineConfig, plan: SweepPlan, runner: CellRunner
) -> SweepResult:
    """Run the plan's cells over ``bars`` (or its walk-forward) through ``runner``."""
    sweeper = _Sweeper(bars, base, plan, runner)
    result = SweepResult(plan.objective, plan.search, plan.names)
    if plan.walk_forward is not None:
        result.walk = sweeper.walk(plan.walk_forward)
    else:
        result.rows = sweeper.cells(0, len(bars))
    counts = runner.counts
    result.computed, result.from_store, result.skipped = (
        counts.computed,
        counts.from_store,
        counts.skipped,
    )
    return result
