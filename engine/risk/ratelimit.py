"""Rate-limit breaker: tiers 2 and 3 of the API budget (tier 1, backoff on 429, is in the REST
layer).

Tier 2: at ``warn`` (80%) of the minute's request budget used, a warning (a Notice once per
crossing, a log line, WARN in the Breakers pane). Tier 3: at ``block`` (95%), REDUCING: no new
entries, so the budget left goes to exits and the operator's flatten.

Unlike every other breaker this one is deliberately NOT a latch: it clears itself as soon as the
rolling budget recovers below ``block``, because the issue asks for "no new entries until the
budget recovers" and a spent budget needs no operator to heal. So ``tripped`` is read live from
the budget on every gate check (a lock and a deque trim, microseconds); ``reset()`` and
``restore()`` do nothing (a restart starts with a fresh budget, which the server's
X-RateLimit headers correct on the first response). ``poll(now)``, run every second or so by
the live wiring, turns crossings into events for the engine to publish and journal.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from datetime import datetime

from tapewatch.engine.model.events import BreakerChanged, Event, Notice
from tapewatch.engine.model.types import TradingState
from tapewatch.engine.risk.base import BreakerStatus

log = logging.getLogger("tapewatch.risk.ratelimit")

NAME = "ratelimit"
WARN_REARM = 0.1  # the warning re-arms below warn - 0.1 (like the RateLimitBudgetHigh alert)


class RateLimitBreaker:
    """REDUCING while ``budget()`` (0..1 of the minute's requests used) is at ``block`` or more."""

    name = NAME
    state = TradingState.REDUCING

    def __init__(
        self,
        budget: Callable[[], float],
        warn: float = 0.8,
        block: float = 0.95,
        *,
        limit: int = 200,
        rearm: float = WARN_REARM,
    ) -> None:
        if not 0.0 < warn <= block <= 1.0:
            raise ValueError("need 0 < warn <= block <= 1")
        if limit < 1 or rearm < 0:
            raise ValueError("limit must be at least 1 and rearm not negative")
        self._budget = budget
        self.warn = warn
        self.block = block
        self.limit = limit
        self._rearm_below = warn - rearm
        self.tripped_at: datetime | None = None
        self._warned = False  # a warning Notice went out and has not re-armed yet
        self._published = False  # the trip the last BreakerChanged announced

    # -- the live reading ------------------------------------------------------------------

    def used_ratio(self) -> float:
        """The budget's reading, clamped to 0..1 (NaN counts as fully spent: fail closed)."""
        ratio = float(self._budget())
        if math.isnan(ratio):
            return 1.0
        return min(1.0, max(0.0, ratio))

    @property
    def tripped(self) -> bool:
        """Read live, so the gate blocks entries the moment the budget crosses ``block``."""
        return self.used_ratio() >= self.block

    @tripped.setter
    def tripped(self, _value: bool) -> None:
        # Settable only to fit the gate's LatchedBreaker protocol; nothing may latch it.
        raise AttributeError("the rate-limit breaker is read from the budget, not set")

    @property
    def reason(self) -> str:
        ratio = self.used_ratio()
        return self._blocked_reason(ratio) if ratio >= self.block else ""

    @reason.setter
    def reason(self, _value: str) -> None:
        raise AttributeError("the rate-limit breaker's reason is read from the budget")

    @property
    def tier(self) -> int:
        """1: normal (only 429 backoff), 2: warning, 3: no new entries."""
        ratio = self.used_ratio()
        return 3 if ratio >= self.block else 2 if ratio >= self.warn else 1

    def _used(self, ratio: float) -> str:
        return f"{ratio * self.limit:.0f}/{self.limit} req/min ({ratio:.0%})"

    def _blocked_reason(self, ratio: float) -> str:
        return f"rate-limit budget {self._used(ratio)} used, at or above {self.block:.0%}"

    # -- crossings as events ---------------------------------------------------------------

    def poll(self, now: datetime) -> list[Event]:
        """Events for every crossing since the last poll: a warning Notice (once per crossing
        of ``warn``), and a BreakerChanged when tier 3 starts or ends."""
        ratio = self.used_ratio()
        events: list[Event] = []
        if not self._warned and ratio >= self.warn:
            self._warned = True
            message = f"rate limit: {self._used(ratio)} used; new entries stop at {self.block:.0%}"
            log.warning("%s", message)
            events.append(Notice(ts=now, level="warning", message=message))
        elif self._warned and ratio < self._rearm_below:
            self._warned = False
            message = f"rate limit: back to {self._used(ratio)} used"
            log.info("%s", message)
            events.append(Notice(ts=now, level="info", message=message))
        blocked = ratio >= self.block
        if blocked != self._published:
            self._published = blocked
            if blocked:
                self.tripped_at = self.tripped_at or now
                reason = self._blocked_reason(ratio)
                log.warning("%s: no new entries until it recovers", reason)
            else:
                self.tripped_at = None
                reason = f"rate-limit budget recovered: {self._used(ratio)} used"
                log.info("%s; entries allowed again", reason)
            events.append(
                BreakerChanged(
                    ts=now,
                    name=self.name,
                    tripped=blocked,
                    state=self.state,
                    reason=reason,
                    tripped_at=self.tripped_at,
                )
            )
        return events

    # -- the Breaker protocol --------------------------------------------------------------

    def status(self, now: datetime) -> BreakerStatus:
        ratio = self.used_ratio()
        tripped = ratio >= self.block
        if tripped and self.tripped_at is None:
            self.tripped_at = now  # first seen here, before a poll announced it
        return BreakerStatus(
            name=self.name,
            tripped=tripped,
            state=self.state,
            reason=self._blocked_reason(ratio) if tripped else "",
            tripped_at=self.tripped_at if tripped else None,
            value=ratio * self.limit,
            threshold=float(self.limit),
            unit="req/min",
            warning=ratio >= self.warn,
        )

    def restore(self, tripped: bool, reason: str, tripped_at: datetime | None) -> None:
        """Nothing to restore: the budget is live, and a restart starts a fresh one."""

    def reset(self) -> None:
        """Nothing to reset: the breaker clears itself when the budget recovers."""


async def watch(
    breaker: RateLimitBreaker,
    now: Callable[[], datetime],
    publish: Callable[[list[Event]], None],
    every: float = 1.0,
) -> None:
    """Poll ``breaker`` every ``every`` seconds and hand its crossings to ``publish``."""
    while True:
        await asyncio.sleep(every)
        events = breaker.poll(now())
        if events:
            publish(events)
