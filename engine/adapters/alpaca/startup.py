"""Start-up waits out Alpaca's bad moments instead of exiting into a restart loop.

Under systemd, exiting on a 429 storm is a restart loop that hammers the API it is waiting
for. So each start-up read (clock, asset, account, configuration, history) that fails with a
429, a 5xx, a timeout or a refused connection is tried again after a jittered, doubling wait,
1 s up to 60 s, and each wait is one line ("waiting for Alpaca: HTTP 429, retrying in 8 s").
Anything else (401/403 keys, an unknown symbol, another 4xx) is raised at once: waiting cannot
fix it. The wait is an ``asyncio`` sleep, so cancelling the start-up task (SIGTERM, Ctrl+C)
ends it at once. Headless runs wait as long as it takes; the console, where a person watches a
loading screen, sets ``give_up_after`` and then reports the failure. Sleep, randomness and the
line's destination are injectable for tests.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from tapewatch.engine.adapters.alpaca.errors import is_transient, wait_reason
from tapewatch.engine.core.broker import BrokerError

T = TypeVar("T")

log = logging.getLogger("tapewatch.live")


def _warn(line: str) -> None:
    log.warning("%s", line)


@dataclass
class StartupWait:
    """Retries one start-up step at a time until it answers or fails for good."""

    base: float = 1.0  # the first wait, doubled after each failure of the same step
    cap: float = 60.0  # no wait is longer
    jitter: float = 0.25  # each wait is cut by up to this share, so restarts do not align
    say: Callable[[str], None] = _warn
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep
    rng: random.Random = field(default_factory=random.Random)
    give_up_after: float | None = None  # seconds of waiting in all; None: wait as long as it takes
    waits: list[float] = field(default_factory=list)  # every wait taken, for the record

    def delay(self, attempt: int) -> float:
        """The wait after failure number ``attempt`` (1-based): ≤ cap, growing until it."""
        full = min(self.cap, self.base * 2 ** min(attempt - 1, 62))
        return full * (1.0 - self.rng.uniform(0.0, self.jitter))

    async def run(self, step: Callable[[], Awaitable[T]]) -> T:
        """``await step()``, waiting out transient failures; others propagate unchanged."""
        attempt = 0
        while True:
            try:
                return await step()
            except BrokerError as exc:
                if not is_transient(exc):
                    raise
                attempt += 1
                seconds = self.delay(attempt)
                if (
                    self.give_up_after is not None
                    and sum(self.waits) + seconds > self.give_up_after
                ):
                    raise
                self.waits.append(seconds)
                self.say(f"waiting for Alpaca: {wait_reason(exc)}, retrying in {_seconds(seconds)}")
                log.info("start-up step failed (%s); waiting %.2f s", exc, seconds)
                await self.sleep(seconds)


def _seconds(value: float) -> str:
    return f"{value:.0f} s" if value >= 1.5 else f"{value:.1f} s"
