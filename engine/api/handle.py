"""The console's one way to the engine: send commands, read snapshots, follow events.

``EngineHandle`` is the contract; ``InProcessHandle`` implements it over an engine in this
process (a socket implementation can follow without the console changing). What only the
engine's host can do — connect another account (it holds the keys and builds brokers), put
reconciliation differences to a person and carry out the answer — sits behind ``SessionHost``,
which the composition root provides.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

from tapewatch.engine.api.commands import (
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
)
from tapewatch.engine.api.replies import (
    Accepted,
    ConfirmModeSet,
    FlattenPreview,
    FlattenSent,
    HeldOrderSent,
    Refused,
    Reply,
    SpeedChanged,
)
from tapewatch.engine.api.snapshot import ActiveAlert, Hours, Reconciliation, Snapshot, snapshot_of
from tapewatch.engine.core.broker import BrokerError
from tapewatch.engine.model.events import Event
from tapewatch.engine.model.types import Mode
from tapewatch.engine.observability.latency import STAGES

if TYPE_CHECKING:
    from tapewatch.engine.api.commands import Choice
    from tapewatch.engine.core.engine import Engine
CLOCK_EVERY = 1.0  # seconds between re-readings of what changes with time alone
STOPPED = "The engine is stopping: no more commands"
NO_HOST = "This session has no other account to switch to"


class EventStream(Protocol):
    """The engine's events in order (bounded: a slow reader loses the oldest), until closed."""

    def __aiter__(self) -> AsyncIterator[Event]: ...

    def close(self) -> None: ...


class EngineHandle(Protocol):
    async def send(self, command: Command) -> Reply:
        """Carry out ``command``; a refusal is a reply, never an exception."""
        ...

    def snapshot(self, newer_than: int | None = None) -> Snapshot | None:
        """The latest picture; None when its version is not newer than ``newer_than``."""
        ...

    def events(self) -> EventStream:
        """A new subscription to the engine's events."""
        ...

    async def latency_histograms(self, buckets: int) -> dict[str, tuple[int, ...]]:
        """Per stage, the counts of up to ``buckets`` latency buckets (slow: off the loop)."""
        ...


class SessionHost(Protocol):
    """What only the engine's host may do: it owns brokers, keys and the reconciler."""

    def describe_account(self, mode: Mode) -> str | None:
        """One line naming ``mode``'s account and endpoint; None when it has no keys."""
        ...

    async def switch_account(self, mode: Mode, who: str) -> Reply:
        """Connect ``mode``'s account and hand it to the engine (which may refuse)."""
        ...

    def reconciliation(self) -> Reconciliation | None:
        """Differences waiting for a person; None when this session has no reconciler."""
        ...

    async def resolve_reconciliation(self, choice: Choice, who: str) -> Reply: ...


class InProcessHandle:
    """An ``EngineHandle`` over an engine running on this event loop.

    Snapshots are rebuilt when the engine's state moved, when the host's reconciliation
    changed, and every ``clock_every`` seconds for what moves with time alone (the clock,
    breaker timers, stream health, market hours, alert rules); ``version`` increases only when
    the rebuilt picture differs. ``alerts`` evaluates the Prometheus alert rules on that cadence.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        host: SessionHost | None = None,
        hours: Hours | None = None,
        alerts: bool = True,
        clock_every: float = CLOCK_EVERY,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._host = host
        self._hours = hours
        self._clock_every = clock_every
        self._monotonic = monotonic
        self._rules: Any = None
        if alerts:
            from tapewatch.engine.observability.alerts import (
                EngineAlerts,  # numpy + prometheus: only when attached
            )

            self._rules = EngineAlerts(engine)
        self._active: dict[str, ActiveAlert] = {}
        self._snapshot: Snapshot | None = None
        self._read_at = 0.0
        self._stopping = False

    # ------------------------------------------------------------------ snapshots
    def snapshot(self, newer_than: int | None = None) -> Snapshot | None:
        self._refresh()
        snap = self._snapshot
        assert snap is not None
        if newer_than is not None and snap.version <= newer_than:
            return None
        return snap

    def _refresh(self) -> None:
        engine = self._engine
        old = self._snapshot
        now = self._monotonic()
        reconciliation = self._host.reconciliation() if self._host is not None else None
        timed = old is None or now - self._read_at >= self._clock_every
        if (
            not timed
            and old is not None
            and old.state_version == engine.state.version
            and old.reconciliation == reconciliation
        ):
            return
        if timed:
            self._read_at = now
            self._evaluate_alerts(now)
        version = old.version if old is not None else 0
        fresh = snapshot_of(
            engine,
            version=version,
            hours=self._hours,
            alerts=tuple(self._active.values()),
            reconciliation=reconciliation,
            previous=old,
        )
        if old is None or fresh != old:
            self._snapshot = replace(fresh, version=version + 1)

    def _evaluate_alerts(self, now: float) -> None:
        if self._rules is None:
            return
        changes = self._rules.update(now)
        for alert in changes.raised:
            self._active[alert.name] = ActiveAlert(alert.name, alert.message, alert.severity)
        for name in changes.cleared:
            self._active.pop(name, None)

    def events(self) -> EventStream:
        return self._engine.subscribe()

    async def latency_histograms(self, buckets: int) -> dict[str, tuple[int, ...]]:
        recorder = self._engine.latency

        def read() -> dict[str, tuple[int, ...]]:
            out: dict[str, tuple[int, ...]] = {}
            for stage in STAGES:
                try:
                    summary = recorder.summary(stage, buckets=buckets)
                except Exception:  # a value recorded mid-iteration: try again next time
                    continue
                out[stage] = tuple(count for _, count in summary.buckets)
            return out

        return await asyncio.to_thread(read)

    # ------------------------------------------------------------------ commands
    async def send(self, command: Command) -> Reply:
        if self._stopping and not isinstance(command, Stop):
            return Refused(STOPPED)
        engine = self._engine
        who = command.who
        if isinstance(command, Pause):
            await engine.pause(who=who, reason=command.reason)
            return Accepted("paused: no new entries; exits and flatten still work")
        if isinstance(command, Resume):
            await engine.resume(who=who)
            return Accepted("resumed: new entries allowed")
        if isinstance(command, PreviewFlatten):
            orders = tuple(engine.preview_flatten())
            preview = FlattenPreview(orders, engine.state.in_flight)
            return Accepted(f"{len(orders)} order(s)", preview)
        if isinstance(command, Flatten):
            try:
                sent = await engine.flatten(who=who, pause=command.pause)
            except BrokerError as exc:
                return Refused(str(exc))
            paused = "; new entries paused until resume" if command.pause else ""
            return Accepted(f"{len(sent)} order(s) sent{paused}", FlattenSent(tuple(sent)))
        if isinstance(command, ResetBreaker):
            return await self._reset(command)
        if isinstance(command, PreviewSwitch):
            return self._preview_switch(command.mode)
        if isinstance(command, SwitchAccount):
            if self._host is None:
                return Refused(NO_HOST)
            return await self._host.switch_account(command.mode, who)
        if isinstance(command, SetDemoSpeed):
            return self._speed(command.speed)
        if isinstance(command, SkipToSignal):
            return self._skip_to_signal()
        if isinstance(command, ResolveReconciliation):
            if self._host is None or self._host.reconciliation() is None:
                return Refused("Nothing to reconcile: this session has no broker to compare with")
            return await self._host.resolve_reconciliation(command.choice, who)
        if isinstance(command, ConfirmOrder | SkipOrder | SetConfirmMode):
            return await self._confirm(command)
        if isinstance(command, HungUp):
            return await self._hung_up(command)
        if isinstance(command, Stop):
            self._stopping = True
            await engine.stop(command.reason, who=who)
            return Accepted("stopped")
        return Refused(f"Unknown command {type(command).__name__}")

    async def _hung_up(self, command: HungUp) -> Reply:
        """Journal (and so audit) the hang-up as the operator's action, then apply its policy."""
        from tapewatch.engine.settings.fields import HANGUP_POLICIES

        policy = command.policy
        if policy not in HANGUP_POLICIES:
            return Refused(f"on_hangup must be one of {', '.join(HANGUP_POLICIES)}, not {policy!r}")
        engine = self._engine
        # The engine's own operator-action path: one OperatorAction, journaled and flushed.
        engine._operator("hangup", command.who, f"{policy}: {command.why}")
        if policy == "pause":
            await engine.pause(who=command.who, reason=f"paused on hang-up ({command.why})")
            return Accepted("terminal gone: new entries paused, the engine trades on")
        if policy == "stop":
            return Accepted("terminal gone: stopping")
        return Accepted("terminal gone: the engine trades on")

    async def _confirm(self, command: ConfirmOrder | SkipOrder | SetConfirmMode) -> Reply:
        """Confirm mode's commands: send or skip the held order, or change the mode."""
        from tapewatch.engine.core.engine import EngineCommandError

        engine = self._engine
        try:
            if isinstance(command, SetConfirmMode):
                mode = engine.set_confirm_mode(command.mode, who=command.who)
                return Accepted(f"confirm mode {mode}", ConfirmModeSet(mode))
            if isinstance(command, SkipOrder):
                await engine.skip_order(command.client_order_id, who=command.who)
                return Accepted(f"{command.client_order_id} skipped")
            order = await engine.confirm_order(command.client_order_id, who=command.who)
        except EngineCommandError as exc:
            return Refused(str(exc))
        if order is None:
            line = engine.state.order_row(command.client_order_id)
            why = f": {line.reason}" if line is not None and line.reason else ""
            return Accepted(f"{command.client_order_id} not sent{why}", HeldOrderSent(None))
        return Accepted(f"{command.client_order_id} sent", HeldOrderSent(order))

    async def _reset(self, command: ResetBreaker) -> Reply:
        from tapewatch.engine.core.engine import EngineCommandError

        try:
            await self._engine.reset_breaker(who=command.who, name=command.name)
        except EngineCommandError as exc:
            return Refused(str(exc))
        return Accepted(f"trading is {self._engine.state.trading_state.value}")

    def _preview_switch(self, mode: Mode) -> Reply:
        from tapewatch.engine.api.replies import SwitchPreview

        account = self._host.describe_account(mode) if self._host is not None else None
        if account is None:
            flag = " --live" if mode is Mode.LIVE else ""
            return Refused(
                f"No {mode.value.lower()} credentials are stored: add them with "
                f"'tapewatch login{flag}'"
            )
        return Accepted(account, SwitchPreview(mode, account))

    def _speed(self, speed: float) -> Reply:
        engine = self._engine
        if engine.state.mode is not Mode.DEMO:
            return Refused("Speed applies to the demo only")
        if not speed > 0:
            return Refused(f"Speed must be above 0, not {speed:g}")
        now = engine.set_speed(speed)
        if now is None:
            return Refused("This feed has no speed control")
        return Accepted(f"replay speed ×{now:g}", SpeedChanged(now))

    def _skip_to_signal(self) -> Reply:
        engine = self._engine
        if engine.state.mode is not Mode.DEMO:
            return Refused("Next signal applies to the demo only")
        started = engine.skip_to_signal()
        if started is None:
            return Refused("This feed cannot look ahead for signals")
        if not started:
            return Refused("The next bar is a signal already: it arrives at the current speed")
        return Accepted("fast-forwarding to just before the next signal")
