"""1-minute bars in, N-minute bars out: Alpaca's stream only sends minute bars.

Bars are start-labelled (a 5-minute bar at 09:30 covers [09:30, 09:35)) on a grid anchored at
each regular session's open, the grid the backtester and the synthetic market use; a period
never spans two sessions and the last one is cut short at the close (13:00 on half days).
Minutes outside the regular session are ignored. Without a calendar the grid is plain UTC
multiples of the timeframe, for symbols that trade around the clock.

A period is ready to close as soon as its last minute arrives (a minute bar for [09:34, 09:35)
comes just after 09:35), when a minute of a later period arrives, or at its end plus a grace
period (the last minute may have had no trades). Before closing, the owner asks ``missing()``
for minutes that never came and back-fills them from REST (``merge``) once. A correction
(``updatedBars``) replaces its minute while the period is being built; one for a period
already closed cannot change a decision already made, so it is reported as ``late``.

Pure and synchronous (no clock, no I/O): the feed drives it and owns the REST calls.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

from tapewatch.engine.market.calendar import Session
from tapewatch.engine.model.types import Bar, Timeframe

MINUTE = timedelta(minutes=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Sessions(Protocol):
    """The part of MarketCalendar the aggregator needs."""

    def session_for(self, now: datetime) -> Session | None: ...

    def sessions(self, start: date, end: date) -> list[Session]: ...


@dataclass(frozen=True, slots=True)
class Period:
    start: datetime
    end: datetime

    def minutes(self) -> list[datetime]:
        out = []
        t = self.start
        while t < self.end:
            out.append(t)
            t += MINUTE
        return out


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one minute (or correction) did: periods now ready to close, or a late change."""

    ready: tuple[datetime, ...] = ()
    late: Bar | None = None  # the already-closed bar this minute would have changed
    ignored: bool = False  # outside the regular session


@dataclass(slots=True)
class _Building:
    period: Period
    minutes: dict[datetime, Bar] = field(default_factory=dict)
    asked: bool = False  # REST was already asked for its missing minutes


class MinuteAggregator:
    def __init__(
        self,
        symbol: str,
        timeframe: Timeframe,
        *,
        sessions: Sessions | None = None,
        grace: timedelta = timedelta(seconds=10),
        keep_closed: int = 32,
    ) -> None:
        self.symbol = symbol
        self.step = timeframe.delta
        self.grace = grace
        self._sessions = sessions
        self._building: dict[datetime, _Building] = {}
        self._closed: OrderedDict[datetime, Bar | None] = OrderedDict()
        self._keep = keep_closed
        self._closed_through: datetime | None = None  # start of the newest closed period
        self._seen_until: datetime | None = None  # end of the newest minute received

    # -- the grid ---------------------------------------------------------------------------

    def period(self, ts: datetime) -> Period | None:
        """The period containing the minute starting at ``ts`` (None outside the session)."""
        if self._sessions is None:
            offset = (ts - _EPOCH) // self.step
            start = _EPOCH + offset * self.step
            return Period(start, start + self.step)
        session = self._sessions.session_for(ts)
        if session is None:
            return None
        start = session.open + ((ts - session.open) // self.step) * self.step
        return Period(start, min(start + self.step, session.close))

    # -- minutes in -----------------------------------------------------------------------

    def _is_late(self, start: datetime) -> bool:
        through = self._closed_through
        return start in self._closed or (through is not None and start <= through)

    def _late(self, start: datetime) -> Outcome:
        closed = self._closed.get(start)
        return Outcome(late=closed) if closed is not None else Outcome(ignored=True)

    def add(self, bar: Bar, *, from_rest: bool = False) -> Outcome:
        """A finished minute bar (a repeat of a minute replaces it)."""
        if bar.symbol != self.symbol:
            return Outcome(ignored=True)
        period = self.period(bar.ts)
        if period is None:
            return Outcome(ignored=True)
        if self._is_late(period.start):
            return self._late(period.start)
        building = self._building.get(period.start)
        if building is None:
            building = self._building[period.start] = _Building(period, asked=from_rest)
        building.minutes[bar.ts] = bar
        end = bar.ts + MINUTE
        if self._seen_until is None or end > self._seen_until:
            self._seen_until = end
        ready = [s for s, b in self._building.items() if b.period.end <= bar.ts]
        if end >= period.end:
            ready.append(period.start)
        return Outcome(ready=tuple(sorted(ready)))

    def correct(self, bar: Bar) -> Outcome:
        """An ``updatedBars`` minute: applied while building, ``late`` once closed."""
        period = self.period(bar.ts)
        if bar.symbol != self.symbol or period is None:
            return Outcome(ignored=True)
        if self._is_late(period.start):
            return self._late(period.start)
        building = self._building.get(period.start)
        if building is None or bar.ts not in building.minutes:
            return self.add(bar)  # a correction for a minute we never got counts as the minute
        building.minutes[bar.ts] = bar
        return Outcome()

    # -- closing ----------------------------------------------------------------------------

    @property
    def open_periods(self) -> list[datetime]:
        return sorted(self._building)

    def due(self) -> datetime | None:
        """When the earliest open period must close even if its last minute never comes."""
        if not self._building:
            return None
        return min(b.period.end for b in self._building.values()) + self.grace

    def expired(self, now: datetime) -> list[datetime]:
        """Open periods whose end plus grace has passed at ``now``."""
        return sorted(s for s, b in self._building.items() if b.period.end + self.grace <= now)

    def missing(self, start: datetime) -> list[datetime]:
        """Minutes of the open period never received (empty once REST was asked)."""
        building = self._building.get(start)
        if building is None or building.asked:
            return []
        return [m for m in building.period.minutes() if m not in building.minutes]

    def merge(self, start: datetime, bars: Iterable[Bar]) -> None:
        """Back-filled minutes for the open period (REST's are complete: they win)."""
        building = self._building.get(start)
        if building is None:
            return
        for bar in bars:
            if bar.symbol == self.symbol and building.period.start <= bar.ts < building.period.end:
                building.minutes[bar.ts] = bar
        building.asked = True

    def close(self, start: datetime) -> Bar | None:
        """Build the period's bar and retire it; None if not one minute traded (or not open)."""
        building = self._building.pop(start, None)
        if building is None:
            return None
        minutes = [building.minutes[t] for t in sorted(building.minutes)]
        bar = None
        if minutes:
            bar = Bar(
                symbol=self.symbol,
                ts=start,
                open=minutes[0].open,
                high=max(m.high for m in minutes),
                low=min(m.low for m in minutes),
                close=minutes[-1].close,
                volume=sum(m.volume for m in minutes),
            )
        self._closed[start] = bar
        while len(self._closed) > self._keep:
            self._closed.popitem(last=False)
        if self._closed_through is None or start > self._closed_through:
            self._closed_through = start
        if self._seen_until is None or building.period.end > self._seen_until:
            self._seen_until = building.period.end
        return bar

    # -- gaps -------------------------------------------------------------------------------

    def gap_before(self, ts: datetime) -> tuple[datetime, datetime] | None:
        """Whole periods between the data we have and the minute at ``ts`` that hold session
        minutes (a reconnect or a silent socket): the range to back-fill, else None."""
        period = self.period(ts)
        seen = self._seen_until
        if period is None or seen is None or seen >= period.start:
            return None
        last = self.period(seen - MINUTE)
        begin = last.end if last is not None and last.end > seen else seen
        if begin >= period.start:
            return None
        if self._sessions is not None:
            days = self._sessions.sessions(begin.date() - timedelta(days=1), period.start.date())
            if not any(s.open < period.start and s.close > begin for s in days):
                return None  # only closed hours between (overnight, weekend)
        return begin, period.start

    def history(self, bars: Iterable[Bar], now: datetime) -> list[Bar]:
        """Seed from REST history: closed bars for every finished period, in time order; the
        period still running at ``now`` stays open for the stream to complete."""
        out: list[Bar] = []
        for bar in sorted(bars, key=lambda b: b.ts):
            for start in self.add(bar, from_rest=True).ready:
                closed = self.close(start)
                if closed is not None:
                    out.append(closed)
        for start in self.expired(now):
            closed = self.close(start)
            if closed is not None:
                out.append(closed)
        for building in self._building.values():
            building.asked = False  # the running period's later minutes come from the stream
        return out
