"""Is the regular session open? Alpaca's clock when we have a fresh reading, else the calendar.

``GET /v2/clock`` knows what no calendar does (an unscheduled closure), but it answers for one
moment. A reading stays authoritative until its next transition (``next_close`` while open,
``next_open`` while closed); past that, or before any reading, the XNYS calendar answers, and a
refresh is due. ``in_session`` is synchronous and cheap: the risk gate asks it on the order path.
"""

from __future__ import annotations

from datetime import datetime

from tapewatch.engine.adapters.alpaca.mapping import ClockReading
from tapewatch.engine.market.calendar import MarketCalendar


class SessionHours:
    def __init__(self, calendar: MarketCalendar, reading: ClockReading | None = None) -> None:
        self.calendar = calendar
        self.reading = reading
        self._doubted = False

    def update(self, reading: ClockReading) -> None:
        self.reading = reading
        self._doubted = False

    def doubt(self) -> None:
        """Something (an entry that sat unfilled) suggests the market closed unscheduled: the
        reading still answers, but a fresh one is due now."""
        self._doubted = True

    def _from_reading(self, now: datetime) -> bool | None:
        r = self.reading
        if r is None or now < r.timestamp:
            return None
        if r.is_open:
            return True if now < r.next_close else None
        return False if now < r.next_open else None

    def in_session(self, now: datetime) -> bool:
        """True while the regular session is open at ``now``."""
        answer = self._from_reading(now)
        return self.calendar.is_open(now) if answer is None else answer

    def needs_refresh(self, now: datetime) -> bool:
        """The reading no longer covers ``now`` (or there is none, or it is in doubt)."""
        return self._doubted or self._from_reading(now) is None
