"""Confirm mode in the engine: held strategy orders, the operator's answers, the deadline.

A price cycle (four rises, three small dips) makes the RSI 3 / SMA 5 strategy buy on the third
dip and sell on the next rally, so every test sees entries and exits within a few bars. Time is
a SimClock: a deadline passes when the test moves it, never by waiting.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from tapewatch.engine.api.commands import (
    ConfirmOrder,
    SetConfirmMode,
    SkipOrder,
    command_from_data,
    command_to_data,
)
from tapewatch.engine.api.handle import InProcessHandle
from tapewatch.engine.api.replies import Accepted, ConfirmModeSet, Refused
from tapewatch.engine.api.snapshot import snapshot_from_data, snapshot_to_data
from tapewatch.engine.core.clock import SimClock
from tapewatch.engine.core.confirm import OrderHold, next_mode
from tapewatch.engine.core.engine import Engine
from tapewatch.engine.model.events import Event, Notice, OperatorAction, OrderIntended
from tapewatch.engine.model.types import Bar, Intent
from tapewatch.engine.settings.config import ConfirmConfig
from tapewatch.engine.settings.config_file import load_config_file
from tapewatch.engine.settings.errors import ConfigError
from tapewatch.engine.storage.journal import Journal
from tests.helpers import STEP, bars_from_closes, make_engine, small_config

WHO = "alice@desk"
CYCLE = (1.0, 1.0, 1.0, 1.0, -0.1, -0.1, -0.1)


def cycle_bars(count: int = 70) -> list[Bar]:
    closes, price = [], 100.0
    for i in range(count):
        price += CYCLE[i % len(CYCLE)] * 0.5
        closes.append(price)
    return bars_from_closes(closes)


def confirm_engine(
    mode: str = "entries", timeout: float = 30.0, journal: Journal | None = None
) -> tuple[Engine, SimClock, list[Event]]:
    config = replace(small_config(), confirm=ConfirmConfig(mode, timeout).validate())
    engine, _, clock = make_engine(config, journal=journal)
    seen: list[Event] = []
    engine.add_sink(seen.append)
    return engine, clock, seen


async def deliver(engine: Engine, clock: SimClock, bars: list[Bar]) -> None:
    for bar in bars:
        clock.advance_to(bar.ts + STEP)
        await engine.on_bar(bar)


async def until_held(engine: Engine, clock: SimClock, bars: list[Bar]) -> list[Bar]:
    """Deliver bars until an order waits for confirmation; the rest are returned."""
    for i, bar in enumerate(bars):
        clock.advance_to(bar.ts + STEP)
        await engine.on_bar(bar)
        if engine.hold.pending:
            return bars[i + 1 :]
    raise AssertionError("no order was held")


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def intents(seen: list[Event]) -> list[OrderIntended]:
    return [e for e in seen if isinstance(e, OrderIntended)]


def test_confirm_settings_default_off_and_read_from_the_console_table(tmp_path: Path) -> None:
    assert small_config().confirm == ConfirmConfig("off", 30.0)
    path = tmp_path / "config.toml"
    path.write_text('[console]\nconfirm_orders = "all"\nconfirm_timeout_seconds = 12\n')
    assert load_config_file(path).engine.confirm == ConfirmConfig("all", 12.0)
    path.write_text('[console]\nconfirm_orders = "maybe"\n')
    with pytest.raises(ConfigError, match=r"config\.toml:2: console\.confirm_orders"):
        load_config_file(path)


def test_the_toggle_cycles_off_entries_all() -> None:
    assert [next_mode(m) for m in ("off", "entries", "all")] == ["entries", "all", "off"]
    with pytest.raises(ValueError, match="confirm mode"):
        OrderHold("sometimes")


async def test_an_entry_waits_and_yes_sends_it_with_its_reason() -> None:
    engine, clock, seen = confirm_engine("entries")
    await engine.start()
    await until_held(engine, clock, cycle_bars())
    (held,) = engine.hold.pending
    assert held.request.intent is Intent.ENTRY
    assert held.deadline == held.asked_at + timedelta(seconds=30)
    assert "RSI" in held.why and not intents(seen)
    handle = InProcessHandle(engine, alerts=False)
    snap = handle.snapshot()
    assert snap is not None and snap.held == (held,) and snap.confirm_mode == "entries"
    reply = await handle.send(ConfirmOrder(who=WHO, client_order_id=held.client_order_id))
    assert isinstance(reply, Accepted), reply
    (sent,) = intents(seen)
    assert sent.request.client_order_id == held.client_order_id
    assert not engine.hold.pending
    action = [e for e in seen if isinstance(e, OperatorAction)][-1]
    assert (action.action, action.who) == ("confirm_order", WHO)
    row = engine.state.order_row(held.client_order_id)
    assert row is not None and row.why == held.why


async def test_no_skips_the_entry_and_the_order_log_says_who() -> None:
    engine, clock, seen = confirm_engine("entries")
    await engine.start()
    await until_held(engine, clock, cycle_bars())
    (held,) = engine.hold.pending
    handle = InProcessHandle(engine, alerts=False)
    reply = await handle.send(SkipOrder(who=WHO, client_order_id=held.client_order_id))
    assert isinstance(reply, Accepted)
    assert not intents(seen) and not engine.hold.pending
    row = engine.state.order_row(held.client_order_id)
    assert row is not None and (row.status, row.reason) == ("skipped", f"skipped by {WHO}")
    again = await handle.send(ConfirmOrder(who=WHO, client_order_id=held.client_order_id))
    assert isinstance(again, Refused) and "not waiting" in again.reason


async def test_an_entry_past_its_deadline_is_skipped_with_a_notice_never_sent_late() -> None:
    engine, clock, seen = confirm_engine("entries", timeout=20)
    await engine.start()
    await until_held(engine, clock, cycle_bars())
    (held,) = engine.hold.pending
    clock.advance_to(held.deadline)  # the timer fires at the deadline
    await settle()
    assert not engine.hold.pending and not intents(seen)
    notices = [e.message for e in seen if isinstance(e, Notice)]
    assert any("not confirmed within 20 s: skipped" in m for m in notices), notices
    late = await engine_handle(engine).send(
        ConfirmOrder(who=WHO, client_order_id=held.client_order_id)
    )
    assert isinstance(late, Refused)
    assert not intents(seen)


async def test_a_yes_that_arrives_after_the_deadline_but_before_the_timer_ran_is_refused() -> None:
    engine, clock, seen = confirm_engine("entries")
    await engine.start()
    await until_held(engine, clock, cycle_bars())
    (held,) = engine.hold.pending
    clock.advance_to(held.deadline + timedelta(seconds=1))  # the timer's task has not run yet
    reply = await engine_handle(engine).send(
        ConfirmOrder(who=WHO, client_order_id=held.client_order_id)
    )
    assert isinstance(reply, Refused) and "too late" in reply.reason
    await settle()
    assert not intents(seen)


async def test_an_exit_is_sent_at_its_deadline_and_cannot_be_skipped() -> None:
    engine, clock, seen = confirm_engine("all")
    await engine.start()
    rest = await until_held(engine, clock, cycle_bars())
    (entry,) = engine.hold.pending
    await engine.confirm_order(entry.client_order_id, who=WHO)
    rest = await until_held(engine, clock, rest)
    (exit_,) = engine.hold.pending
    assert exit_.request.intent is Intent.EXIT
    reply = await engine_handle(engine).send(
        SkipOrder(who=WHO, client_order_id=exit_.client_order_id)
    )
    assert isinstance(reply, Refused) and "exit is not skipped" in reply.reason
    clock.advance_to(exit_.deadline)
    await settle()
    sent = [i.request.client_order_id for i in intents(seen)]
    assert sent == [entry.client_order_id, exit_.client_order_id]


async def test_a_signal_while_an_order_waits_places_nothing() -> None:
    engine, clock, seen = confirm_engine("entries", timeout=3_600)
    await engine.start()
    rest = await until_held(engine, clock, cycle_bars())
    (held,) = engine.hold.pending
    await deliver(engine, clock, rest[:10])  # another buy signal in there, inside the hour
    assert engine.hold.pending == (held,)  # still the one, nothing stacked behind it
    assert not intents(seen)
    notices = [e.message for e in seen if isinstance(e, Notice)]
    assert any("not acted on" in m and "waiting for confirmation" in m for m in notices)


async def test_flatten_never_waits_and_drops_what_was_held() -> None:
    engine, clock, _ = confirm_engine("all", timeout=3_600)
    await engine.start()
    rest = await until_held(engine, clock, cycle_bars())
    await engine.confirm_order(engine.hold.pending[0].client_order_id, who=WHO)
    await until_held(engine, clock, rest)
    (exit_,) = engine.hold.pending
    sent = await engine.flatten(who=WHO)
    assert len(sent) == 1 and sent[0].client_order_id != exit_.client_order_id
    assert not engine.hold.pending
    row = engine.state.order_row(exit_.client_order_id)
    assert row is not None and row.status == "skipped" and "flatten" in row.reason


async def test_a_pause_after_the_prompt_still_stops_the_entry() -> None:
    engine, clock, seen = confirm_engine("entries")
    await engine.start()
    await until_held(engine, clock, cycle_bars())
    (held,) = engine.hold.pending
    await engine.pause(who=WHO)
    await engine.confirm_order(held.client_order_id, who=WHO)
    assert not intents(seen)
    row = engine.state.order_row(held.client_order_id)
    assert row is not None and row.status == "denied"


async def test_the_mode_command_is_journaled_and_audited_with_who() -> None:
    with tempfile.TemporaryDirectory() as folder:
        journal = Journal(Path(folder) / "journal.sqlite")
        engine, _, _ = confirm_engine("off", journal=journal)
        await engine.start()
        handle = engine_handle(engine)
        reply = await handle.send(SetConfirmMode(who=WHO, mode="entries"))
        assert isinstance(reply, Accepted) and reply.payload == ConfirmModeSet("entries")
        assert engine.hold.mode == "entries"
        bad = await handle.send(SetConfirmMode(who=WHO, mode="sometimes"))
        assert isinstance(bad, Refused) and "off, entries, all" in bad.reason
        acts = [e for _, e in journal.events() if isinstance(e, OperatorAction)]
        assert [(a.action, a.who, a.detail) for a in acts] == [
            ("confirm_mode", WHO, "off -> entries")
        ]
        journal.close()


async def test_a_backtest_never_holds_even_when_the_settings_ask() -> None:
    config = replace(small_config(), confirm=ConfirmConfig("all", 30.0))
    from tapewatch.engine.root.backtest import build_backtest

    parts = build_backtest(config, cycle_bars()[0].ts)
    assert parts.engine.hold.mode == "off"


def test_commands_and_the_held_order_cross_the_wire_as_data() -> None:
    for command in (
        ConfirmOrder(who=WHO, client_order_id="c-1"),
        SkipOrder(who=WHO, client_order_id="c-1"),
        SetConfirmMode(who=WHO, mode="all"),
    ):
        assert command_from_data(command_to_data(command)) == command


async def test_the_snapshot_with_a_held_order_round_trips() -> None:
    engine, clock, _ = confirm_engine("entries")
    await engine.start()
    await until_held(engine, clock, cycle_bars())
    snap = engine_handle(engine).snapshot()
    assert snap is not None and snap.held
    assert snapshot_from_data(snapshot_to_data(snap)) == snap


def engine_handle(engine: Engine) -> InProcessHandle:
    return InProcessHandle(engine, alerts=False)


async def test_answers_and_mode_changes_reach_the_audit_trail(tmp_path: Path) -> None:
    import json

    from tapewatch.engine.observability.audit import AuditLog, AuditTrail

    engine, clock, _ = confirm_engine("entries")
    path = tmp_path / "audit.jsonl"
    trail = AuditTrail(AuditLog(path), engine, settle=0.0)
    engine.add_sink(trail)
    await engine.start()
    await until_held(engine, clock, cycle_bars())
    (held,) = engine.hold.pending
    await engine.skip_order(held.client_order_id, who=WHO)
    engine.set_confirm_mode("all", who=WHO)
    trail.flush()
    records = [json.loads(line) for line in path.read_text().splitlines()]
    acts = [(r["action"], r["who"]) for r in records if r["action"] != "session_start"]
    assert acts == [("skip_order", WHO), ("confirm_mode", WHO)]


async def test_an_exit_sent_at_its_deadline_by_the_next_bar_fills_no_earlier_than_sent() -> None:
    from tapewatch.engine.model.events import OrderFilled

    engine, clock, seen = confirm_engine("all")
    await engine.start()
    rest = await until_held(engine, clock, cycle_bars())
    await engine.confirm_order(engine.hold.pending[0].client_order_id, who=WHO)
    rest = await until_held(engine, clock, rest)
    (exit_,) = engine.hold.pending
    await deliver(engine, clock, rest[:2])  # the replay's way: the clock jumps to each close
    await settle()
    (sent,) = [i for i in intents(seen) if i.request.client_order_id == exit_.client_order_id]
    fills = [e for e in seen if isinstance(e, OrderFilled)]
    (filled,) = [f for f in fills if f.fill.client_order_id == exit_.client_order_id]
    assert filled.fill.ts >= sent.ts  # never priced by a bar that opened before it was sent
