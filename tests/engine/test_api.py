"""The engine API: every command's answer, the snapshot's immutability, versions and wire form,
and a handle driving a demo engine end to end (a gated replay: no wall clock)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tapewatch.engine.api.commands import (
    COMMANDS,
    Command,
    ConfirmOrder,
    Flatten,
    HungUp,
    Pause,
    PreviewFlatten,
    PreviewSwitch,
    ResetBreaker,
    ResolveReconciliation,
    Resume,
    SetConfirmMode,
    SetDemoSpeed,
    SkipOrder,
    SkipToSignal,
    Stop,
    SwitchAccount,
    command_from_data,
    command_to_data,
)
from tapewatch.engine.api.handle import NO_HOST, STOPPED, InProcessHandle
from tapewatch.engine.api.replies import (
    Accepted,
    AccountSwitched,
    ConfirmModeSet,
    FlattenPreview,
    FlattenSent,
    Refused,
    Reply,
    SpeedChanged,
    SwitchPreview,
    reply_from_data,
    reply_to_data,
)
from tapewatch.engine.api.snapshot import (
    ActiveAlert,
    Reconciliation,
    Snapshot,
    Stream,
    snapshot_from_data,
    snapshot_to_data,
)
from tapewatch.engine.api.types import (
    POSITION,
    Difference,
    Intent,
    Mode,
    OperatorAction,
    OrderRequest,
    Side,
    StreamHealth,
    TradingState,
)
from tapewatch.engine.core.broker import BrokerError
from tests.console.conftest import BUY, SLIDE, AlwaysOpen, Session, make_session
from tests.helpers import T0

WHO = "operator@desk"


class Ticker:
    """An injected monotonic clock: time moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeHost:
    """A SessionHost that records what it was asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object, str]] = []
        self.asks = 0
        self.pending: tuple[Difference, ...] = ()

    def describe_account(self, mode: Mode) -> str | None:
        return f"{mode.value} account LV-1 at https://live.example" if mode is Mode.LIVE else None

    async def switch_account(self, mode: Mode, who: str) -> Reply:
        self.calls.append(("switch", mode, who))
        return Accepted(f"Now trading {mode.value}: LV-1", AccountSwitched(mode, "LV-1"))

    def reconciliation(self) -> Reconciliation | None:
        return Reconciliation(self.asks, self.pending)

    async def resolve_reconciliation(self, choice: str, who: str) -> Reply:
        self.calls.append(("resolve", choice, who))
        return Accepted(choice)


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    s = make_session(tmp_path, [BUY, *SLIDE])
    yield s
    s.journal.close()


async def started(session: Session, **kwargs: object) -> InProcessHandle:
    await session.engine.start()
    session.engine.warm(session.feed.warmup())
    return InProcessHandle(session.engine, hours=session.calendar, alerts=False, **kwargs)  # type: ignore[arg-type]


async def holding(session: Session) -> None:
    """Trade the crafted buy and its fill (bars straight into the engine)."""
    source = session.feed.iter_sync()  # moves the clock to each bar's close as it yields it
    for _ in range(2):
        await session.engine.on_bar(next(source))
    assert session.engine.state.positions["SPY"].qty > 0


# -- each command, accepted or refused with its reason -----------------------------------------


async def test_pause_and_resume_are_accepted_and_journaled_with_who(session: Session) -> None:
    handle = await started(session)
    assert isinstance(await handle.send(Pause(who=WHO)), Accepted)
    snap = handle.snapshot()
    assert snap is not None and snap.paused and snap.trading_state is TradingState.REDUCING
    assert isinstance(await handle.send(Resume(who=WHO)), Accepted)
    snap = handle.snapshot()
    assert snap is not None and not snap.paused
    operator = session.journal_events("operator")
    actions = [(e.action, e.who) for e in operator if isinstance(e, OperatorAction)]
    assert actions == [("pause", WHO), ("resume", WHO)]


async def test_flatten_previews_then_sends_the_same_orders(session: Session) -> None:
    handle = await started(session)
    empty = await handle.send(PreviewFlatten(who=WHO))
    assert isinstance(empty, Accepted) and empty.payload == FlattenPreview((), 0)
    await holding(session)
    preview = await handle.send(PreviewFlatten(who=WHO))
    assert isinstance(preview, Accepted) and isinstance(preview.payload, FlattenPreview)
    [order] = preview.payload.orders
    assert (order.symbol, order.side) == ("SPY", Side.SELL)
    sent = await handle.send(Flatten(who=WHO))
    assert isinstance(sent, Accepted) and isinstance(sent.payload, FlattenSent)
    [placed] = sent.payload.orders
    assert (placed.symbol, placed.side, placed.qty) == (order.symbol, order.side, order.qty)
    assert session.operator_actions()[-1] == "flatten"


async def test_a_broker_failure_during_flatten_is_a_refusal(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    handle = await started(session)

    async def failing(who: str | None = None, *, pause: bool = False) -> list[object]:
        raise BrokerError("Alpaca answered 503: try again")

    monkeypatch.setattr(session.engine, "flatten", failing)
    assert await handle.send(Flatten(who=WHO)) == Refused("Alpaca answered 503: try again")


async def test_reset_breaker_names_what_is_unknown(session: Session) -> None:
    handle = await started(session)
    reply = await handle.send(ResetBreaker(who=WHO, name="nonsense"))
    assert isinstance(reply, Refused) and "no breaker named 'nonsense'" in reply.reason
    assert "drawdown" in reply.reason  # the known names, so the fix is obvious
    reset = await handle.send(ResetBreaker(who=WHO, name="drawdown"))
    assert reset == Accepted("trading is ACTIVE")
    assert session.operator_actions() == ["reset_breaker"]


async def test_switching_needs_a_host_and_goes_through_it(session: Session) -> None:
    bare = await started(session)
    assert await bare.send(SwitchAccount(who=WHO, mode=Mode.LIVE)) == Refused(NO_HOST)
    assert await bare.send(PreviewSwitch(who=WHO, mode=Mode.LIVE)) == Refused(
        "No live credentials are stored: add them with 'tapewatch login --live'"
    )
    host = FakeHost()
    handle = InProcessHandle(session.engine, host=host, alerts=False)
    preview = await handle.send(PreviewSwitch(who=WHO, mode=Mode.LIVE))
    assert isinstance(preview, Accepted)
    assert preview.payload == SwitchPreview(Mode.LIVE, "LIVE account LV-1 at https://live.example")
    assert isinstance(await handle.send(PreviewSwitch(who=WHO, mode=Mode.PAPER)), Refused)
    switched = await handle.send(SwitchAccount(who=WHO, mode=Mode.LIVE))
    assert isinstance(switched, Accepted) and switched.payload == AccountSwitched(Mode.LIVE, "LV-1")
    assert host.calls == [("switch", Mode.LIVE, WHO)]


async def test_reconciliation_answers_go_to_the_host(session: Session) -> None:
    bare = await started(session)
    refused = await bare.send(ResolveReconciliation(who=WHO, choice="adopt"))
    assert isinstance(refused, Refused) and "Nothing to reconcile" in refused.reason
    host = FakeHost()
    handle = InProcessHandle(session.engine, host=host, alerts=False)
    reply = await handle.send(ResolveReconciliation(who=WHO, choice="keep_paused"))
    assert reply == Accepted("keep_paused") and host.calls == [("resolve", "keep_paused", WHO)]


async def test_speed_applies_to_a_paced_demo_feed_only(tmp_path: Path) -> None:
    paper = make_session(tmp_path / "paper", [BUY], mode=Mode.PAPER)
    handle = await started(paper)
    assert await handle.send(SetDemoSpeed(who=WHO, speed=120.0)) == Refused(
        "Speed applies to the demo only"
    )
    paper.journal.close()
    demo = make_session(tmp_path / "demo", [BUY])
    handle = await started(demo)
    refused = await handle.send(SetDemoSpeed(who=WHO, speed=120.0))
    assert refused == Refused("This feed has no speed control")  # not running a feed yet
    assert await handle.send(SetDemoSpeed(who=WHO, speed=0.0)) == Refused(
        "Speed must be above 0, not 0"
    )
    demo.journal.close()


async def test_after_stop_every_command_is_refused(session: Session) -> None:
    handle = await started(session)
    assert await handle.send(Stop(who=WHO, reason="operator quit")) == Accepted("stopped")
    assert await handle.send(Pause(who=WHO)) == Refused(STOPPED)
    [stopped] = session.journal_events("session_stopped")
    assert getattr(stopped, "reason", "") == "operator quit"


# -- the snapshot: immutable, versioned -----------------------------------------------------------


async def test_a_snapshot_is_frozen_and_never_follows_the_engine(session: Session) -> None:
    handle = await started(session)
    before = handle.snapshot()
    assert before is not None
    with pytest.raises(dataclasses.FrozenInstanceError):
        before.paused = True  # type: ignore[misc]
    for field in dataclasses.fields(Snapshot):
        value = getattr(before, field.name)
        assert not isinstance(value, list | dict | set), f"{field.name} is mutable"
    bars = before.bars
    await holding(session)
    assert before.bars is bars and len(before.bars) == 2 and before.positions == ()
    after = handle.snapshot()
    assert after is not None and len(after.bars) == 4 and after.position("SPY") is not None


async def test_the_version_moves_on_change_only(session: Session) -> None:
    ticker = Ticker()
    handle = await started(session, monotonic=ticker)
    first = handle.snapshot()
    assert first is not None and first.version == 1
    assert handle.snapshot(newer_than=first.version) is None  # nothing changed
    ticker.now += 5.0
    assert handle.snapshot(newer_than=first.version) is None  # time passed, the picture held
    await handle.send(Pause(who=WHO))
    paused = handle.snapshot(newer_than=first.version)
    assert paused is not None and paused.version == 2 and paused.paused
    assert paused.state_version > first.state_version
    session.engine.clock.advance_to(session.engine.clock.now() + timedelta(minutes=1))  # type: ignore[attr-defined]
    assert handle.snapshot(newer_than=paused.version) is None  # re-read only on the cadence
    ticker.now += 1.0
    timed = handle.snapshot(newer_than=paused.version)
    assert timed is not None and timed.version == 3
    assert timed.state_version == paused.state_version and timed.now > paused.now


async def test_the_snapshot_carries_what_the_panes_draw(session: Session) -> None:
    handle = await started(session)
    await holding(session)
    snap = handle.snapshot()
    assert snap is not None
    assert (snap.mode, snap.account, snap.symbol, snap.timeframe) == (
        Mode.DEMO,
        "DEMO",
        "SPY",
        "5Min",
    )
    assert snap.operator == "tester@local" and snap.running
    assert snap.strategy.rsi_period == 2 and snap.strategy.rsi_oversold == 65.0
    assert snap.market is not None and snap.market.open
    assert snap.market.next_change == AlwaysOpen().next_close(snap.now)
    assert {b.name for b in snap.breakers} >= {"pause", "drawdown"}
    assert [s.stage for s in snap.latency][:1] == ["bar_to_decision"]
    assert snap.latency_of("bar_to_decision").count == 2
    assert snap.orders[0].status == "filled" and snap.has_exposure
    assert snap.last_signal is not None and snap.reconciliation is None


# -- the wire form --------------------------------------------------------------------------------


def wire(data: object) -> object:
    return json.loads(json.dumps(data))


async def test_a_real_snapshot_round_trips_through_json_exactly(session: Session) -> None:
    handle = await started(session)
    await holding(session)
    session.engine.latency.record("submit_to_ack", 0.0123)
    snap = handle.snapshot()
    assert snap is not None
    health = StreamHealth(
        "reconnecting", T0, reason="timed out", code=None, failures=2, retry_in=1.5
    )
    difference = Difference(POSITION, "SPY", journal_qty=0.0, broker_qty=4.0)
    full = dataclasses.replace(
        snap,
        streams=(Stream("data", health),),
        alerts=(ActiveAlert("DrawdownHigh", "drawdown 3.1%", "error"),),
        reconciliation=Reconciliation(1, (difference,)),
    )
    back = snapshot_from_data(wire(snapshot_to_data(full)))  # type: ignore[arg-type]
    assert back == full
    assert back.positions == full.positions and back.last_signal == full.last_signal
    with pytest.raises(ValueError, match="schema"):
        snapshot_from_data({**snapshot_to_data(full), "schema": 99})


def test_commands_and_replies_round_trip_through_json() -> None:
    commands: list[Command] = [
        Pause(who=WHO),
        Resume(who=WHO),
        PreviewFlatten(who=WHO),
        Flatten(who=WHO),
        ResetBreaker(who=WHO, name=None),
        ResetBreaker(who=WHO, name="drawdown"),
        PreviewSwitch(who=WHO, mode=Mode.LIVE),
        SwitchAccount(who=WHO, mode=Mode.PAPER),
        SetDemoSpeed(who=WHO, speed=120.0),
        SkipToSignal(who=WHO),
        ResolveReconciliation(who=WHO, choice="flatten"),
        ConfirmOrder(who=WHO, client_order_id="c1"),
        SkipOrder(who=WHO, client_order_id="c1"),
        SetConfirmMode(who=WHO, mode="entries"),
        HungUp(who=WHO, policy="pause", why="received SIGHUP"),
        Stop(who=WHO, reason="operator quit"),
    ]
    assert {type(c).__name__ for c in commands} == set(COMMANDS)
    for command in commands:
        assert command_from_data(wire(command_to_data(command))) == command  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="choice must be one of"):
        command_from_data({"command": "ResolveReconciliation", "who": WHO, "choice": "yolo"})
    with pytest.raises(ValueError, match="unknown command"):
        command_from_data({"command": "Buy", "who": WHO})
    request = OrderRequest("c1", "SPY", Side.SELL, 3.0, Intent.FLATTEN, bar_ts=T0)
    replies: list[Reply] = [
        Refused("trading is HALTED: reset the breaker before switching accounts"),
        Accepted("paused"),
        Accepted("1 order(s)", FlattenPreview((request,), 1)),
        Accepted("", SpeedChanged(120.0)),
        Accepted("", SwitchPreview(Mode.LIVE, "LIVE account")),
        Accepted("confirm mode all", ConfirmModeSet("all")),
    ]
    for reply in replies:
        assert reply_from_data(wire(reply_to_data(reply))) == reply  # type: ignore[arg-type]


# -- a handle driving a demo engine ---------------------------------------------------------------


async def test_a_handle_drives_a_running_demo_engine(session: Session) -> None:
    handle = InProcessHandle(session.engine, hours=session.calendar, alerts=False)
    events = handle.events()
    run = asyncio.create_task(session.engine.run(session.feed))
    for _ in range(200):
        await asyncio.sleep(0)
        snap = handle.snapshot()
        if snap is not None and snap.running:
            break
    snap = handle.snapshot()
    assert snap is not None and snap.running and len(snap.bars) == 2  # warmed, no bar traded
    speed = await handle.send(SetDemoSpeed(who=WHO, speed=240.0))
    assert speed == Accepted("replay speed ×240", SpeedChanged(240.0))
    session.gate.release(2)  # the buy, then its fill
    for _ in range(200):
        await asyncio.sleep(0)
        snap = handle.snapshot()
        if snap is not None and snap.position("SPY") is not None:
            break
    assert snap is not None and snap.speed == 240.0 and snap.position("SPY") is not None
    assert isinstance(await handle.send(Pause(who=WHO)), Accepted)
    seen = []
    async for event in events:
        seen.append(event)
        if isinstance(event, OperatorAction):
            break
    assert isinstance(seen[-1], OperatorAction) and seen[-1].who == WHO
    await handle.send(Stop(who=WHO, reason="test over"))
    session.gate.release(100)
    await asyncio.wait_for(run, 5.0)
    events.close()
    final = handle.snapshot()
    assert final is not None and not final.running
