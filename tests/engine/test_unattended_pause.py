"""The operator dead-man's switch: a paper/live engine nobody watches pauses new entries.

Driven on the engine's injected clock: bars every 5 minutes; after ``unattended_pause_after``
with no console attached, during the session, the operator-pause breaker trips with the reason,
the action is journaled, the strategy's buy is denied while its exits would still go, and one
resume re-arms it.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from tapewatch.engine.core.attendance import Attendance
from tapewatch.engine.model.events import OperatorAction, RiskDenied
from tapewatch.engine.model.types import Mode, TradingState
from tapewatch.engine.settings.config import ConfigError, EngineConfig, RiskConfig
from tapewatch.engine.settings.durations import parse_duration
from tests.helpers import STEP, T0, bars_from_closes, feed_bars, make_engine, small_config

ENTRY = [100, 101, 102, 103, 104, 110, 109.5, 109, 108.8]  # the strategy buys at the last bar


def config(after: str = "15m") -> EngineConfig:
    base = small_config(position_pct=0.5)
    return replace(base, risk=replace(base.risk, unattended_pause_after=after)).validate()


async def test_no_console_for_15_minutes_pauses_entries_and_says_why() -> None:
    engine, _broker, clock = make_engine(config(), mode=Mode.PAPER, attended=False)
    events: list[object] = []
    engine.add_sink(events.append)
    await engine.start()
    engine.arm_attendance()  # as a host a console can attach to does
    await feed_bars(engine, clock, bars_from_closes(ENTRY))  # 45 minutes, nobody attached
    assert engine.gate.operator_pause.tripped
    assert engine.gate.state is TradingState.REDUCING  # exits and breakers go on
    assert "unattended" in engine.gate.operator_pause.reason
    (action,) = [e for e in events if isinstance(e, OperatorAction)]
    assert action.action == "unattended_pause" and "15 min" in action.detail
    denied = [e for e in events if isinstance(e, RiskDenied)]
    assert denied and "no new entries" in denied[0].reason  # the buy at 108.8 was not sent
    await engine.resume("alice")  # one key re-arms it
    assert engine.gate.state is TradingState.ACTIVE


async def test_an_attached_console_keeps_it_armed_and_leaving_starts_a_new_count() -> None:
    engine, _broker, clock = make_engine(config(), mode=Mode.PAPER, attended=False)
    await engine.start()
    engine.arm_attendance()
    engine.set_attached(1)
    bars = bars_from_closes([100.0] * 12)  # an hour
    await feed_bars(engine, clock, bars[:6])
    assert not engine.gate.operator_pause.tripped
    engine.set_attached(0)  # the console left at 10:00 (bar close)
    await feed_bars(engine, clock, bars[6:8])  # 10 minutes alone: not yet
    assert not engine.gate.operator_pause.tripped
    await feed_bars(engine, clock, bars[8:10])  # 20 minutes alone
    assert engine.gate.operator_pause.tripped


@pytest.mark.parametrize("mode", [Mode.DEMO, Mode.BACKTEST])
async def test_simulations_are_never_paused_for_want_of_a_console(mode: Mode) -> None:
    engine, _broker, clock = make_engine(config(), mode=mode, attended=False)
    await engine.start()
    engine.arm_attendance()
    await feed_bars(engine, clock, bars_from_closes([100.0] * 12))
    assert not engine.gate.operator_pause.tripped


async def test_off_disables_it() -> None:
    engine, _broker, clock = make_engine(config("off"), mode=Mode.PAPER, attended=False)
    await engine.start()
    engine.arm_attendance()
    await feed_bars(engine, clock, bars_from_closes([100.0] * 12))
    assert not engine.gate.operator_pause.tripped


def test_it_only_trips_during_the_session_and_once_per_absence() -> None:
    attendance = Attendance(900.0, T0)
    later = T0 + 4 * STEP  # 20 minutes alone
    assert attendance.due(later, in_session=False) is None  # the market is shut: wait
    reason = attendance.due(later, in_session=True)
    assert reason is not None and "15 min" in reason
    assert attendance.due(later + STEP, in_session=True) is None  # once
    attendance.attached(1, later + STEP)
    attendance.attached(0, later + 2 * STEP)
    assert attendance.due(later + 4 * STEP, in_session=True) is None
    assert attendance.due(later + 5 * STEP, in_session=True) is not None


@pytest.mark.parametrize(
    ("text", "seconds"), [("15m", 900.0), ("90s", 90.0), ("1h", 3600.0), ("20", 1200.0)]
)
def test_durations_read_as_people_write_them(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "-5m", "0", "15 minutes"])
def test_a_bad_duration_is_one_clear_config_error(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        RiskConfig(unattended_pause_after=text).validate()
    message = str(info.value)
    assert "15m" in message and "off" in message and "\n" not in message


async def test_an_engine_no_host_armed_is_never_paused_for_it() -> None:
    engine, _broker, clock = make_engine(config(), mode=Mode.PAPER, attended=False)
    await engine.start()
    await feed_bars(engine, clock, bars_from_closes([100.0] * 12))
    assert not engine.gate.operator_pause.tripped
