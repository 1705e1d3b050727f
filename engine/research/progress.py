"""The sweep's progress line: cells done of all, how many came from the store, cells/s, ETA.

The rate counts only cells computed in this run (store hits cost nothing), so the ETA is what
the remaining cells will take. The clock is injected so tests can hold it still.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO


def _clock_text(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def progress_text(done: int, total: int, hits: int, computed: int, elapsed: float) -> str:
    """``sweep 12/27 cells  5 from store  3.2 cells/s  ETA 0:05`` (a bar on the left)."""
    width = 20
    filled = width * done // total if total else width
    bar = "#" * filled + "-" * (width - filled)
    rate = computed / elapsed if elapsed > 0 else 0.0
    left = total - done
    eta = _clock_text(left / rate) if rate > 0 else "--:--"
    return f"[{bar}] {done:,}/{total:,} cells  {hits:,} from store  {rate:.1f} cells/s  ETA {eta}"


class ProgressLine:
    """Writes ``progress_text`` to ``stream``: redrawn in place on a terminal (``\\r``), one
    line per update otherwise (a log or a test reading the pipe)."""

    def __init__(
        self,
        stream: TextIO,
        *,
        in_place: bool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.in_place = in_place
        self.clock = clock
        self.started: float | None = None  # the first plan: cluster start-up is not cell time
        self.done = self.total = self.hits = self.computed = 0

    def plan(self, total: int) -> None:
        """More cells are coming (a search's next batch, a walk-forward's next window)."""
        if self.started is None:
            self.started = self.clock()
        self.total += total
        self.show()

    def cell(self, *, from_store: bool) -> None:
        self.done += 1
        if from_store:
            self.hits += 1
        else:
            self.computed += 1
        self.show()

    def show(self) -> None:
        elapsed = self.clock() - self.started if self.started is not None else 0.0
        text = progress_text(self.done, self.total, self.hits, self.computed, elapsed)
        self.stream.write(("\r" + text) if self.in_place else (text + "\n"))
        self.stream.flush()

    def end(self) -> None:
        if self.in_place:
            self.stream.write("\n")
            self.stream.flush()
