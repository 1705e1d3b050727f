"""Cells on Dask: a LocalCluster sized to the machine, or an existing scheduler's workers.

Processes, not threads (the GIL would serialise the backtests). The bars are scattered to
every worker once, then each cell ships only its small task; results come back to this
process, which stores each one as soon as it finishes (``CellStore.put``), so an interrupted
sweep keeps every finished cell and a rerun computes only what is missing.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from tapewatch.engine.backtest.memo import forget as forget_derived
from tapewatch.engine.market.bars import BarArrays
from tapewatch.engine.research.cells import CellOutcome, CellTask, evaluate
from tapewatch.engine.research.progress import ProgressLine
from tapewatch.engine.research.store import CellStore
from tapewatch.engine.settings.errors import TapewatchError

CONNECT_TIMEOUT = "10s"


class SweepError(TapewatchError):
    """The sweep cannot run (a scheduler out of reach): one line, exit status 1."""


def default_workers() -> int:
    return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None) -> Iterator[Any]:
    """A ``distributed.Client``: on ``scheduler`` (``tcp://host:8786``) when given, else on a
    LocalCluster of ``workers`` single-threaded processes (default: one per core) on loopback,
    closed on exit. No dashboard is opened (no fixed port to collide with)."""
    from dask.distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            raise SweepError(
                f"cannot reach the Dask scheduler at {scheduler} ({exc}); start it "
                "(dask scheduler) or drop --scheduler to run on this machine"
            ) from None
        try:
            yield client
        finally:
            client.close()
        return
    cluster = LocalCluster(
        n_workers=workers or default_workers(),
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        # no dashboard, and the scheduler's small HTTP server on a free port, not on 8787
        scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
        host="127.0.0.1",
        silence_logs=logging.ERROR,
    )
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


@dataclass
class Counts:
    computed: int = 0
    from_store: int = 0
    skipped: int = 0


class CellRunner:
    """Runs batches of cells: the store first, Dask for the rest, each result stored at once."""

    def __init__(
        self,
        client: Any,
        bars: BarArrays,
        store: CellStore | None,
        progress: ProgressLine | None = None,
    ) -> None:
        self.client = client
        self.bars = bars
        self.store = store
        self.progress = progress
        self.counts = Counts()
        self._scattered: Any = None

    def _data(self) -> Any:
        """The bars on every worker, sent once for the whole sweep."""
        if self._scattered is None:
            self._scattered = self.client.scatter(self.bars, broadcast=True, hash=False)
        return self._scattered

    def release(self) -> None:
        """Free what the sweep left on the workers: the scattered bars and what each worker
        derived from them (an existing cluster outlives the sweep; its workers stay small)."""
        if self._scattered is not None:
            self.client.cancel(self._scattered)
            self._scattered = None
        self.client.run(forget_derived)

    def skip(self) -> None:
        self.counts.skipped += 1

    def run(self, tasks: Sequence[CellTask]) -> dict[str, CellOutcome]:
        unique = list({t.key: t for t in tasks}.values())
        if self.progress is not None:
            self.progress.plan(len(unique))
        done: dict[str, CellOutcome] = {}
        missing: list[CellTask] = []
        for task in unique:
            stored = self.store.get(task.key) if self.store is not None else None
            if stored is not None and (stored[1] is not None or not task.curve):
                done[task.key] = CellOutcome(task.key, stored[0], stored[1])
                self.counts.from_store += 1
                if self.progress is not None:
                    self.progress.cell(from_store=True)
            else:
                missing.append(task)
        if missing:
            done.update(self._compute(missing))
        return done

    def _compute(self, tasks: list[CellTask]) -> dict[str, CellOutcome]:
        from dask.distributed import as_completed

        data = self._data()
        futures = [
            self.client.submit(evaluate, data, task, key=f"tapewatch-cell-{task.key}", pure=False)
            for task in tasks
        ]
        params = {t.key: t for t in tasks}
        out: dict[str, CellOutcome] = {}
        try:
            for future in as_completed(futures):
                outcome: CellOutcome = future.result()
                if self.store is not None:
                    self.store.put(
                        outcome.key,
                        _params_of(params[outcome.key]),
                        outcome.report,
                        outcome.curve,
                    )
                out[outcome.key] = outcome
                self.counts.computed += 1
                if self.progress is not None:
                    self.progress.cell(from_store=False)
        except BaseException:
            self.client.cancel(futures)
            raise
        return out


def _params_of(task: CellTask) -> dict[str, object]:
    """What the store keeps beside a result, for people reading the file: window and config."""
    from dataclasses import asdict

    return {"window": [task.start, task.stop], "config": asdict(task.config)}
