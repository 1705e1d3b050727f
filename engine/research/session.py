"""A whole sweep as a front end asks for it: the cluster, the store and the runner, wired.

The CLI calls ``sweep_on_dask`` once; tests and the benchmark that hold a client of their own
build a ``CellRunner`` and call ``run_sweep`` directly.
"""

from __future__ import annotations

from pathlib import Path

from tapewatch.engine.market.bars import BarArrays
from tapewatch.engine.research.executor import CellRunner, dask_client
from tapewatch.engine.research.progress import ProgressLine
from tapewatch.engine.research.store import CellStore
from tapewatch.engine.research.sweep import SweepPlan, SweepResult, run_sweep
from tapewatch.engine.settings.config import EngineConfig


def sweep_on_dask(
    bars: BarArrays,
    base: EngineConfig,
    plan: SweepPlan,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    cache: Path | None = None,
    progress: ProgressLine | None = None,
) -> SweepResult:
    """Run ``plan`` on Dask (``scheduler``, else a LocalCluster of ``workers``), keeping each
    cell in the store at ``cache`` (None: no store, every cell computed)."""
    store = CellStore(cache) if cache is not None else None
    try:
        with dask_client(scheduler, workers) as client:
            runner = CellRunner(client, bars, store, progress)
            try:
                result = run_sweep(bars, base, plan, runner)
            finally:
                if progress is not None:
                    progress.end()
            runner.release()  # not after Ctrl+C or a lost scheduler: that exit stays quick
            return result
    finally:
        if store is not None:
            store.close()
