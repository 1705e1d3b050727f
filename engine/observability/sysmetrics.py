"""Process facts for the metrics endpoint: memory, CPU, disk free, and event-loop lag.

Stdlib only and cheap enough to read at every scrape. The loop-lag sampler is a tiny task on
the loop it measures: it asks to wake after ``interval`` and records how late it woke, which
is exactly how long a bar or an order would have waited behind whatever held the loop.
"""

from __future__ import annotations

import asyncio
import os
import resource
import sys
import time
from collections import deque
from pathlib import Path

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_memory_bytes() -> int:
    """Current resident set size (Linux ``/proc/self/statm``; elsewhere the peak RSS)."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * _PAGE_SIZE
    except (OSError, IndexError, ValueError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB on Linux


def cpu_seconds() -> float:
    """User plus system CPU time this process has used."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def disk_free_bytes(path: Path) -> int | None:
    """Bytes an unprivileged writer can still use on the filesystem holding ``path``.

    The data directory may not exist yet (first run): its nearest existing parent answers.
    """
    probe = path
    while True:
        try:
            st = os.statvfs(probe)
            return st.f_bavail * st.f_frsize
        except FileNotFoundError:
            if probe.parent == probe:
                return None
            probe = probe.parent
        except OSError:
            return None


class LoopLagSampler:
    """Measures how late the event loop runs a timer; keeps the last sample and a window's max."""

    def __init__(self, interval: float = 0.25, window: float = 60.0) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be positive (got {interval})")
        self.interval = interval
        self.last = 0.0
        self.samples = 0
        self._recent: deque[float] = deque(maxlen=max(1, int(window / interval)))
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def max_recent(self) -> float:
        """The worst lag over the window (a scrape every 15 s would miss a short stall)."""
        return max(self._recent, default=0.0)

    def record(self, lag: float) -> None:
        lag = lag if lag > 0.0 else 0.0
        self.last = lag
        self.samples += 1
        self._recent.append(lag)

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Start sampling on ``loop`` (default: the running loop). Calling it twice is harmless."""
        if self.running:
            return
        loop = loop or asyncio.get_running_loop()
        self._task = loop.create_task(self._run(), name="tapewatch-loop-lag")

    def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()

    async def _run(self) -> None:
        interval = self.interval
        while True:
            due = time.perf_counter() + interval
            await asyncio.sleep(interval)
            self.record(time.perf_counter() - due)
