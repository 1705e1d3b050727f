"""Audit records carry the wall-clock time; a simulated session's time goes beside it.

The demo's engine runs on a SimClock (January 2026 market time while the operator acts today):
an audit trail stamped with that time says nothing about when a person pressed the key.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tapewatch.engine.adapters.sim.broker import SimBroker
from tapewatch.engine.core.engine import Engine
from tapewatch.engine.model.types import Mode
from tapewatch.engine.observability.audit import AuditLog, attach_audit, record_hash, verify
from tests.helpers import T0, make_engine, small_config

WALL = datetime(2026, 12, 4, 18, 30, 5, tzinfo=UTC)


class WallClock:
    """A paper/live style clock (not simulated) stopped at ``WALL``."""

    def now(self) -> datetime:
        return WALL

    async def sleep_until(self, when: datetime) -> None:
        return None

    def call_at(self, when: datetime, callback: Callable[[], None]) -> None:
        return None


def ticking(start: datetime) -> Callable[[], datetime]:
    """A wall clock that moves one second per reading."""
    readings = iter(range(10_000))
    return lambda: start + timedelta(seconds=next(readings))


def records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_a_demo_action_is_stamped_with_the_wall_clock_and_the_sim_time_apart(
    tmp_path: Path,
) -> None:
    engine, _, clock = make_engine()
    path = tmp_path / "audit.jsonl"
    trail = attach_audit(engine, path, settle=60, wall=ticking(WALL))
    await engine.start()
    clock.advance_to(T0 + timedelta(minutes=20))
    await engine.pause(who="alice@local")
    trail.flush()
    start, pause = records(path)
    assert start["ts"] == WALL.isoformat() and start["sim_ts"] == T0.isoformat()
    assert pause["ts"] == (WALL + timedelta(seconds=1)).isoformat()
    assert pause["sim_ts"] == (T0 + timedelta(minutes=20)).isoformat()
    assert list(pause)[:3] == ["seq", "ts", "sim_ts"]
    assert verify(path).ok


async def test_a_real_time_session_has_no_simulated_time(tmp_path: Path) -> None:
    config = small_config()
    clock = WallClock()
    engine = Engine(
        config,
        clock=clock,
        broker=SimBroker(config.starting_cash, config.execution, clock=clock),
        mode=Mode.PAPER,
        who="ops@local",
    )
    path = tmp_path / "audit.jsonl"
    trail = attach_audit(engine, path, settle=60, wall=lambda: WALL)
    await engine.start()
    await engine.pause(who="bob@local")
    trail.flush()
    for record in records(path):
        assert "sim_ts" not in record and record["ts"] == WALL.isoformat()
    assert verify(path).ok


def test_old_records_without_sim_ts_still_verify_and_the_field_is_covered(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    log.append(ts=WALL, who="a", action="pause")  # as written before sim_ts existed
    log.append(ts=WALL, sim_ts=T0, who="a", action="resume")
    assert verify(path).ok
    first, second = records(path)
    assert "sim_ts" not in first and second["sim_ts"] == T0.isoformat()
    assert second["hash"] == record_hash(second)  # sim_ts is part of what is hashed
    tampered = path.read_text().replace(T0.isoformat(), (T0 + timedelta(hours=1)).isoformat())
    path.write_text(tampered)
    result = verify(path)
    assert not result.ok and result.first_broken_seq == 2
