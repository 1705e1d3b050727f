"""What both backtest loops do where data went missing: overnight, or a hole in history.

The stale-data breaker is shown the gap where the engine watches for staleness (a backtest
does not: a hole in history is not a silent feed, so there is nothing to record), and at a
new New York day the engine rolls its day (the drawdown breaker's base, and the re-arming of
a tripped breaker). One function, so the lean loop and the vector path cannot drift apart.
"""

from __future__ import annotations

from datetime import timedelta

from tapewatch.engine.core.clock import SimClock
from tapewatch.engine.core.engine import Engine
from tapewatch.engine.market.bars import datetime_from_ns, ns_from_datetime

STALE_EPSILON = timedelta(milliseconds=1)


def cross_gap(
    engine: Engine,
    clock: SimClock,
    *,
    prev_close_ns: int,
    stale_ns: int,
    ts: int,
    tf_ns: int,
    boundary_ns: int,
    last_equity: float,
) -> int:
    """Before the bar opening at ``ts``: the gap since ``prev_close_ns``, and the day roll
    when ``ts`` is past ``boundary_ns``. Returns the day boundary from then on."""
    watching = engine.gate.watch_staleness  # history keeps no stale watch: nothing to record
    if watching:
        engine.data_seen(datetime_from_ns(prev_close_ns))
        clock.advance_to(datetime_from_ns(prev_close_ns + stale_ns) + STALE_EPSILON)
        engine.check_stale()
    if ts < boundary_ns:
        return boundary_ns
    now = datetime_from_ns(ts + tf_ns)
    clock.advance_to(now)
    engine.roll_day(datetime_from_ns(ts), now, last_equity)
    boundary = engine.next_day_boundary
    if watching:
        engine.check_stale()  # anchors the session's staleness clock, as a timer would
    return ns_from_datetime(boundary) if boundary is not None else ts + 1
