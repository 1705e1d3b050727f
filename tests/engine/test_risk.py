"""Breakers trip at their limits, stay latched, reset and restore; the gate's decision matrix."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tapewatch.engine.model.events import BreakerChanged
from tapewatch.engine.model.types import Intent, OrderRequest, Side, TradingState
from tapewatch.engine.risk.base import BreakerStatus
from tapewatch.engine.risk.drawdown import DrawdownBreaker
from tapewatch.engine.risk.gate import RiskGate
from tapewatch.engine.risk.latch import Latch
from tapewatch.engine.risk.pause import PauseBreaker
from tapewatch.engine.risk.stale import StaleDataBreaker
from tapewatch.engine.settings.config import RiskConfig

OPEN = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)  # 09:30 New York
CLOSE = datetime(2024, 3, 4, 21, 0, tzinfo=UTC)  # 16:00 New York
TF = 300


def in_session(now: datetime) -> bool:
    """Weekdays 14:30-21:00 UTC: enough of a calendar for these tests."""
    minutes = now.hour * 60 + now.minute
    return now.weekday() < 5 and 14 * 60 + 30 <= minutes < 21 * 60


def at(minutes: float) -> datetime:
    return OPEN + timedelta(minutes=minutes)


def make_gate() -> RiskGate:
    gate = RiskGate(
        RiskConfig(max_drawdown=0.05, stale_bars=2.0, drawdown_action="halt"), TF, in_session
    )
    gate.start_day("2024-03-04", 100_000.0)
    return gate


def order(side: Side, qty: float, intent: Intent = Intent.ENTRY) -> OrderRequest:
    return OrderRequest(f"tw-test-{side}-{qty}-{intent}", "SPY", side, qty, intent)


# -- drawdown ----------------------------------------------------------------------------------


def test_drawdown_trips_at_the_limit_and_not_before() -> None:
    dd = DrawdownBreaker(0.05, "halt")
    dd.start_day(100_000.0)
    assert dd.on_equity(96_500.0, at(1)) is False
    assert not dd.status(at(1)).warning  # 3.5% < 80% of 5%
    assert dd.on_equity(95_000.01, at(2)) is False
    status = dd.status(at(2))
    assert not status.tripped and status.warning
    assert status.value == pytest.approx(4.99999) and status.threshold == pytest.approx(5.0)
    assert status.unit == "%"
    assert dd.on_equity(95_000.0, at(3)) is True
    assert dd.tripped and dd.tripped_at == at(3) and dd.state is TradingState.HALTED
    assert dd.reason == "drawdown 5.0% ≥ 5.0% of day's starting equity $100,000.00"


def test_drawdown_latches_after_equity_recovers_and_resets() -> None:
    dd = DrawdownBreaker(0.05, "halt")
    dd.start_day(100_000.0)
    assert dd.on_equity(94_000.0, at(1)) is True
    assert dd.on_equity(90_000.0, at(2)) is False  # already tripped: no second trip
    assert dd.on_equity(101_000.0, at(3)) is False
    assert dd.tripped and dd.tripped_at == at(1)
    assert "6.0%" in dd.reason
    dd.reset()
    assert not dd.tripped and dd.reason == "" and dd.tripped_at is None
    assert dd.on_equity(101_000.0, at(4)) is False
    assert dd.status(at(4)).value == 0.0  # gains are not a negative drawdown


def test_drawdown_stays_latched_across_a_new_day() -> None:
    dd = DrawdownBreaker(0.05, "halt")
    dd.start_day(100_000.0)
    dd.on_equity(90_000.0, at(1))
    dd.start_day(90_000.0)
    assert dd.tripped


def test_drawdown_does_nothing_before_the_day_starts() -> None:
    dd = DrawdownBreaker(0.05, "halt")
    assert dd.on_equity(1.0, at(1)) is False and not dd.tripped


def test_drawdown_refuses_a_nonsense_limit() -> None:
    with pytest.raises(ValueError):
        DrawdownBreaker(0.0)


# -- pause -------------------------------------------------------------------------------------


def test_pause_is_a_reducing_latch() -> None:
    pause = PauseBreaker()
    assert pause.trip(at(1), "") is True
    assert pause.state is TradingState.REDUCING
    assert pause.reason == "paused by operator"
    assert pause.trip(at(2), "again") is False
    assert pause.tripped_at == at(1)
    pause.reset()
    assert not pause.tripped
    assert pause.status(at(3)) == BreakerStatus(
        "pause", False, TradingState.REDUCING, "", None, 0.0, 1.0, ""
    )


# -- stale data --------------------------------------------------------------------------------


def test_stale_trips_after_the_threshold_and_not_before() -> None:
    stale = StaleDataBreaker(TF, 2.0, in_session)
    assert stale.check(at(0)) is False  # session starts: the clock starts here
    stale.on_bar(at(5))
    assert stale.check(at(14) + timedelta(seconds=59)) is False  # 599 s after the last bar
    status = stale.status(at(14))
    assert status.value == 540.0 and status.threshold == 600.0 and status.unit == "s"
    assert status.warning  # 540 s ≥ 80% of 600 s
    assert stale.check(at(15)) is True
    assert stale.tripped and stale.tripped_at == at(15) and stale.state is TradingState.REDUCING
    assert stale.reason == "no new bar for 600 s (limit 600 s = 2 bars)"


def test_stale_counts_from_session_start_when_no_bar_came() -> None:
    stale = StaleDataBreaker(TF, 2.0, in_session)
    assert stale.check(at(0)) is False
    assert stale.check(at(9)) is False
    assert stale.check(at(10)) is True


def test_stale_latches_when_bars_resume_and_resets() -> None:
    stale = StaleDataBreaker(TF, 2.0, in_session)
    stale.check(at(0))
    stale.on_bar(at(5))
    assert stale.check(at(16)) is True
    stale.on_bar(at(20))
    assert stale.check(at(21)) is False and stale.tripped
    stale.reset()
    assert stale.check(at(22)) is False and not stale.tripped


def test_stale_only_during_the_session() -> None:
    stale = StaleDataBreaker(TF, 2.0, in_session)
    stale.check(at(380))  # 20:50 UTC, in session
    stale.on_bar(CLOSE)  # the day's last bar closes at 16:00 New York
    evening = CLOSE + timedelta(hours=3)
    assert stale.check(evening) is False and not stale.tripped
    assert not stale.status(evening).warning
    next_open = OPEN + timedelta(days=1)
    # The overnight gap does not count: the clock restarts at the first in-session check.
    assert stale.check(next_open + timedelta(seconds=1)) is False
    assert stale.check(next_open + timedelta(minutes=10)) is False
    assert stale.check(next_open + timedelta(minutes=10, seconds=1)) is True


def test_stale_ignores_bars_arriving_out_of_order() -> None:
    stale = StaleDataBreaker(TF, 2.0, in_session)
    stale.check(at(0))
    stale.on_bar(at(10))
    stale.on_bar(at(5))
    assert stale.last_bar_at == at(10)


# -- the gate ----------------------------------------------------------------------------------


def test_gate_states_follow_the_most_severe_tripped_breaker() -> None:
    gate = make_gate()
    assert gate.state is TradingState.ACTIVE
    assert gate.day_start_equity == 100_000.0
    gate.pause(at(1), "paused by operator")
    assert gate.state is TradingState.REDUCING
    gate.on_equity(94_000.0, at(2))
    assert gate.state is TradingState.HALTED
    gate.resume(at(3))
    assert gate.state is TradingState.HALTED
    gate.reset(at(4), "drawdown")
    assert gate.state is TradingState.ACTIVE


def test_gate_returns_one_event_per_latch_change_and_none_otherwise() -> None:
    gate = make_gate()
    events = gate.pause(at(1), "paused by operator")
    assert events == [
        BreakerChanged(
            ts=at(1),
            name="pause",
            tripped=True,
            state=TradingState.REDUCING,
            reason="paused by operator",
            tripped_at=at(1),
        )
    ]
    assert gate.pause(at(2), "again") == []
    assert gate.on_equity(99_000.0, at(3)) == []
    [tripped] = gate.on_equity(95_000.0, at(4))
    assert (tripped.name, tripped.tripped, tripped.state) == ("drawdown", True, TradingState.HALTED)
    assert gate.on_equity(94_000.0, at(5)) == []
    [resumed] = gate.resume(at(6))
    assert (resumed.name, resumed.tripped, resumed.tripped_at, resumed.ts) == (
        "pause",
        False,
        None,
        at(6),
    )
    assert gate.resume(at(7)) == []


def test_gate_reset_all_and_unknown_names() -> None:
    gate = make_gate()
    gate.pause(at(1))
    gate.on_equity(90_000.0, at(2))
    events = gate.reset(at(3))
    assert sorted(e.name for e in events) == ["drawdown", "pause"]
    assert all(not e.tripped for e in events)
    assert gate.reset(at(4)) == []
    assert gate.reset(at(4), "stale") == []
    with pytest.raises(KeyError, match="known: drawdown, pause, stale"):
        gate.reset(at(5), "nope")


def test_reset_drawdown_re_trips_if_still_beyond_the_limit() -> None:
    gate = make_gate()
    gate.on_equity(90_000.0, at(1))
    gate.reset(at(2), "drawdown")
    assert [e.name for e in gate.on_equity(90_000.0, at(3))] == ["drawdown"]


def test_gate_staleness_through_bars() -> None:
    gate = make_gate()
    assert gate.check_staleness(at(0)) == []
    gate.on_bar(at(5))
    assert gate.check_staleness(at(14)) == []
    [event] = gate.check_staleness(at(15))
    assert event.name == "stale" and event.state is TradingState.REDUCING
    assert gate.state is TradingState.REDUCING


def test_new_day_restarts_the_stale_clock() -> None:
    gate = make_gate()
    gate.check_staleness(at(385))  # 20:55 UTC, the last check of the day
    gate.on_bar(CLOSE)
    next_open = OPEN + timedelta(days=1)
    gate.start_day("2024-03-05", 100_500.0)  # no out-of-session check happened overnight
    assert gate.check_staleness(next_open + timedelta(seconds=5)) == []
    assert gate.day_start_equity == 100_500.0


def _trip(gate: RiskGate, state: TradingState) -> None:
    if state is TradingState.REDUCING:
        gate.pause(at(1), "paused by operator")
    elif state is TradingState.HALTED:
        gate.on_equity(94_000.0, at(1))


ALLOW, DENY = True, False


@pytest.mark.parametrize(
    ("name", "side", "qty", "intent", "position", "active", "reducing", "halted"),
    [
        ("entry from flat", Side.BUY, 10.0, Intent.ENTRY, 0.0, ALLOW, DENY, DENY),
        ("add to a long", Side.BUY, 5.0, Intent.ENTRY, 10.0, ALLOW, DENY, DENY),
        ("exit the whole long", Side.SELL, 10.0, Intent.EXIT, 10.0, ALLOW, ALLOW, DENY),
        ("partial exit", Side.SELL, 4.0, Intent.EXIT, 10.0, ALLOW, ALLOW, DENY),
        ("sell through zero", Side.SELL, 12.0, Intent.EXIT, 10.0, ALLOW, DENY, DENY),
        ("short from flat", Side.SELL, 3.0, Intent.ENTRY, 0.0, ALLOW, DENY, DENY),
        ("cover a short", Side.BUY, 3.0, Intent.EXIT, -3.0, ALLOW, ALLOW, DENY),
        ("buy through zero", Side.BUY, 4.0, Intent.EXIT, -3.0, ALLOW, DENY, DENY),
        ("flatten a long", Side.SELL, 10.0, Intent.FLATTEN, 10.0, ALLOW, ALLOW, ALLOW),
        ("flatten a short", Side.BUY, 3.0, Intent.FLATTEN, -3.0, ALLOW, ALLOW, ALLOW),
    ],
)
def test_check_matrix(
    name: str,
    side: Side,
    qty: float,
    intent: Intent,
    position: float,
    active: bool,
    reducing: bool,
    halted: bool,
) -> None:
    for state, expected in (
        (TradingState.ACTIVE, active),
        (TradingState.REDUCING, reducing),
        (TradingState.HALTED, halted),
    ):
        gate = make_gate()
        _trip(gate, state)
        assert gate.state is state
        decision = gate.check(order(side, qty, intent), position)
        assert decision.allowed is expected, (name, state)
        if not expected:
            assert decision.breaker and decision.reason


def test_denials_name_the_breaker_and_say_why() -> None:
    gate = make_gate()
    gate.pause(at(1), "paused by operator")
    decision = gate.check(order(Side.BUY, 1.0), 0.0)
    assert (decision.breaker, decision.reason) == ("pause", "paused by operator: no new entries")
    gate.on_equity(94_000.0, at(2))
    decision = gate.check(order(Side.SELL, 1.0, Intent.EXIT), 5.0)
    assert decision.breaker == "drawdown"
    assert decision.reason.startswith("HALTED: drawdown 6.0% ≥ 5.0%")


def test_a_whole_floored_position_may_be_sold_when_reducing() -> None:
    gate = make_gate()
    gate.pause(at(1))
    assert gate.check(order(Side.SELL, 6.000060001, Intent.EXIT), 6.00006).allowed
    assert not gate.check(order(Side.SELL, 6.00007, Intent.EXIT), 6.00006).allowed


def test_restore_from_events_last_per_breaker_wins() -> None:
    first = make_gate()
    journal = [
        *first.pause(at(1), "paused by operator"),
        *first.resume(at(2)),
        *first.on_equity(93_000.0, at(3)),
        *first.pause(at(4), "lunch"),
    ]
    restarted = make_gate()
    restarted.restore(journal)
    assert restarted.state is TradingState.HALTED
    assert restarted.drawdown.tripped and restarted.drawdown.tripped_at == at(3)
    assert restarted.drawdown.reason == first.drawdown.reason
    assert restarted.operator_pause.tripped and restarted.operator_pause.reason == "lunch"
    assert restarted.operator_pause.tripped_at == at(4)
    assert not restarted.stale.tripped
    restarted.restore([*journal, *first.reset(at(5))])
    assert restarted.state is TradingState.ACTIVE


class RateLimitStub(Latch):
    name = "rate_limit"
    state = TradingState.REDUCING

    def status(self, now: datetime) -> BreakerStatus:
        return BreakerStatus(
            self.name, self.tripped, self.state, self.reason, self.tripped_at, 0, 200, "req/min"
        )


def test_added_breakers_take_part_and_pick_up_earlier_restores() -> None:
    gate = make_gate()
    tripped = BreakerChanged(
        ts=at(1),
        name="rate_limit",
        tripped=True,
        state=TradingState.REDUCING,
        reason="429 storm",
        tripped_at=at(1),
    )
    gate.restore([tripped])
    assert gate.state is TradingState.ACTIVE  # not in the gate yet
    limiter = RateLimitStub()
    gate.add(limiter)
    assert limiter.tripped and gate.state is TradingState.REDUCING
    decision = gate.check(order(Side.BUY, 1.0), 0.0)
    assert (decision.breaker, decision.reason) == ("rate_limit", "429 storm: no new entries")
    assert [s.name for s in gate.statuses(at(2))] == ["drawdown", "pause", "stale", "rate_limit"]
    with pytest.raises(ValueError):
        gate.add(RateLimitStub())


def test_statuses_report_every_breaker() -> None:
    gate = make_gate()
    gate.on_equity(97_000.0, at(1))
    statuses = {s.name: s for s in gate.statuses(at(1))}
    assert set(statuses) == {"drawdown", "pause", "stale"}
    assert statuses["drawdown"].value == pytest.approx(3.0)
    assert statuses["drawdown"].threshold == pytest.approx(5.0)
    assert statuses["stale"].threshold == 600.0
    assert not any(s.tripped for s in statuses.values())
