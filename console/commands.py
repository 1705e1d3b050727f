"""The operator's commands: pause, flatten, paper↔live, breaker reset, speed, theme, quit.

Each is an ``engine.api`` command sent through the engine handle and nothing else, runs in a
worker so a slow broker never freezes the screen, shows a refusal's reason as it is, and asks
first where a mistake would cost money. The app (``console.app``) supplies the layout, the
redraw and the handle these act on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.text import Text
from textual.app import App, SystemCommand
from textual.screen import Screen
from textual.theme import Theme
from textual.worker import Worker

from tapewatch.console.accounts import AccountDirectory
from tapewatch.console.attach import DETACHED, Attachment
from tapewatch.console.demo_speed import speed_label, step_speed
from tapewatch.console.flatten_watch import FlattenWatch
from tapewatch.console.format import qty
from tapewatch.console.keymap import ACTIONS, DEMO_ONLY, effective_keys
from tapewatch.console.screens.confirm import ConfirmScreen, MessageScreen
from tapewatch.console.screens.flatten import FlattenChoice, FlattenScreen
from tapewatch.console.screens.help import HelpScreen
from tapewatch.console.screens.live import LiveConfirmScreen
from tapewatch.engine.api.commands import (
    ConfirmOrder,
    Flatten,
    Pause,
    PreviewFlatten,
    PreviewSwitch,
    ResetBreaker,
    Resume,
    SetConfirmMode,
    SetDemoSpeed,
    SkipOrder,
    SkipToSignal,
    Stop,
    SwitchAccount,
)
from tapewatch.engine.api.handle import EngineHandle
from tapewatch.engine.api.replies import (
    ConfirmModeSet,
    FlattenPreview,
    FlattenSent,
    HeldOrderSent,
    Refused,
    SpeedChanged,
    SwitchPreview,
)
from tapewatch.engine.api.snapshot import Snapshot
from tapewatch.engine.api.types import Mode, OrderRequest, TradingState

if TYPE_CHECKING:
    from tapewatch.engine.api.sessions import ConsoleSession, Embedded
log = logging.getLogger("tapewatch.console")

METHODS = {
    "pause": "pause_resume",
    "flatten": "flatten",
    "switch": "switch_account",
    "reset": "reset_breaker",
    "faster": "faster",
    "slower": "slower",
    "next_signal": "next_signal",
    "confirm_mode": "cycle_confirm_mode",
    "theme": "cycle_theme",
    "help": "keys_help",
    "quit": "quit",
}
"""Keymap action name -> the ``action_*`` method it runs."""
DEMO_METHODS = frozenset(METHODS[name] for name in DEMO_ONLY)
"""The methods of the demo-only actions (speed, next signal)."""
STOPPED_ENGINE = "the engine is stopping (ctrl+x); detached"
CONFIRM_CYCLE = {"off": "entries", "entries": "all", "all": "off"}
"""The confirm-mode key's cycle."""
CONFIRM_MEANS = {
    "off": "strategy orders go straight to the broker",
    "entries": "each new entry waits for y or n (skipped if nobody answers)",
    "all": "entries and exits wait for y (an exit is sent when its time runs out)",
}


class OperatorCommands(App[int]):
    """The command half of the console app; ``TapewatchApp`` adds layout and redraw."""

    _handle: EngineHandle | None
    _embedded: Embedded | None
    _session: ConsoleSession | None
    _engine_worker: Worker[None] | None
    _accounts: AccountDirectory
    _themes: list[Theme]
    _user_keymap: dict[str, str]
    _config_path: Path | None
    _log_path: Path | None
    _measured: bool
    _quitting: bool
    _flatten_watch: FlattenWatch | None
    _attachment: Attachment | None  # set for a console attached to a served engine
    _stopped_engine = False  # ctrl+x stopped the served engine before this console detached
    detached: str | None

    def _redraw(self, *, everything: bool) -> None:
        raise NotImplementedError

    def _handle_ready(self) -> tuple[EngineHandle, Snapshot] | None:
        """The handle and its latest snapshot; None (with a note) before start or when quitting."""
        handle = self._handle
        if handle is None:
            self.notify("Still starting: the engine is not running yet", severity="warning")
            return None
        if self._quitting:
            return None
        refusal = getattr(handle, "read_only", None)  # an attached viewer's handle says why
        if isinstance(refusal, str):
            self.notify(refusal, severity="warning")  # and nothing is sent
            return None
        snap = handle.snapshot()
        assert snap is not None  # without newer_than there is always one
        return handle, snap

    def _refused(self, reason: str, prefix: str = "") -> None:
        self.notify(f"{prefix}{reason}", severity="error", timeout=12)

    def _command(self, work: Coroutine[Any, Any, None], name: str) -> None:
        self.run_worker(work, name=name, group="command", exit_on_error=True)

    async def action_pause_resume(self) -> None:
        ready = self._handle_ready()
        if ready is None:
            return
        handle, snap = ready
        if snap.paused:
            reply = await handle.send(Resume(who=snap.operator))
            done = "Resumed: new entries allowed"
        else:
            reply = await handle.send(Pause(who=snap.operator))
            done = "Paused: no new entries; exits and flatten still work"
        if isinstance(reply, Refused):
            self._refused(reply.reason)
            return
        self.notify(done)
        self._redraw(everything=True)

    async def action_flatten(self) -> None:
        ready = self._handle_ready()
        if ready is None:
            return
        handle, snap = ready
        reply = await handle.send(PreviewFlatten(who=snap.operator))
        if isinstance(reply, Refused) or not isinstance(reply.payload, FlattenPreview):
            self._refused(reply.reason if isinstance(reply, Refused) else "no preview", "Flatten: ")
            return
        requests, in_flight = reply.payload.orders, reply.payload.in_flight
        if not requests and not in_flight:
            self.notify("Nothing to flatten: no positions and no open orders")
            return

        screen = FlattenScreen(
            requests, in_flight, handle=handle, who=snap.operator, seen=snap.version, as_of=snap.now
        )

        def answered(choice: FlattenChoice | None) -> None:
            if choice is None:
                self.notify("Flatten cancelled: nothing sent")
                return
            pause = choice == "flatten_and_pause"
            work = self._flatten(handle, snap.operator, screen.requests, pause=pause)
            self._command(work, "flatten")

        self.push_screen(screen, answered)

    async def _flatten(
        self,
        handle: EngineHandle,
        who: str,
        previewed: Sequence[OrderRequest],
        *,
        pause: bool = False,
    ) -> None:
        reply = await handle.send(Flatten(who=who, pause=pause))
        if isinstance(reply, Refused):
            self._refused(reply.reason, "Flatten failed: ")
            return
        sent = reply.payload.orders if isinstance(reply.payload, FlattenSent) else ()
        seen = sorted((r.symbol, r.side.value, r.qty) for r in previewed)
        now = sorted((o.symbol, o.side.value, o.qty) for o in sent)
        self._flatten_watch = FlattenWatch(tuple(o.client_order_id for o in sent))
        orders = "1 order" if len(sent) == 1 else f"{len(sent)} orders"
        paused = "; new entries paused until you resume (p)" if pause else ""
        if seen != now:  # one toast per action: the warning says what was sent
            self.notify(
                f"Flatten: positions changed since the preview; {orders} sent for what is open "
                f"now{paused}",
                severity="warning",
            )
        else:
            self.notify(f"Flatten: {orders} sent{paused}; watching until flat")
        self._redraw(everything=True)

    async def action_switch_account(self) -> None:
        ready = self._handle_ready()
        if ready is None:
            return
        handle, snap = ready
        mode = snap.mode
        if mode is Mode.LIVE:
            self._command(self._switch(handle, snap.operator, Mode.PAPER), "switch")
            return
        if mode is not Mode.PAPER:
            self.push_screen(
                MessageScreen(
                    "No live account in the demo",
                    "This is the offline demo: a simulated broker with synthetic bars, so there is "
                    "no paper or live account to switch to.\n\nTo trade, store your Alpaca keys "
                    "and start 'tapewatch' without 'demo'.",
                )
            )
            return
        preview = await handle.send(PreviewSwitch(who=snap.operator, mode=Mode.LIVE))
        if isinstance(preview, Refused) or not isinstance(preview.payload, SwitchPreview):
            self.push_screen(
                MessageScreen(
                    "No live credentials",
                    "Live trading needs live Alpaca keys, and none are stored.\n\n"
                    "Store them with 'tapewatch login --live' (in another terminal), then "
                    "press m again. Paper trading continues meanwhile.",
                    warning=True,
                )
            )
            return
        if snap.trading_state is TradingState.HALTED:
            self.push_screen(
                MessageScreen(
                    "Trading is HALTED",
                    "A breaker has halted trading. Switching to live is refused until it is "
                    "reset: check the Breakers pane, then press r.",
                    warning=True,
                )
            )
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._command(self._switch(handle, snap.operator, Mode.LIVE), "switch")
            else:
                self.notify("Stayed on paper: nothing changed")

        self.push_screen(LiveConfirmScreen(preview.payload.account), answered)

    async def _switch(self, handle: EngineHandle, who: str, mode: Mode) -> None:
        reply = await handle.send(SwitchAccount(who=who, mode=mode))
        if isinstance(reply, Refused):
            self._refused(reply.reason)
            return
        self.notify(reply.detail, severity="warning" if mode is Mode.LIVE else "information")
        self._redraw(everything=True)

    def action_reset_breaker(self) -> None:
        ready = self._handle_ready()
        if ready is None:
            return
        handle, snap = ready
        tripped = [s for s in snap.breakers if s.tripped and s.name != "pause"]
        if not tripped:
            hint = ": press p to resume from the pause" if snap.paused else ""
            self.notify(f"No breaker is tripped{hint}")
            return
        body = Group(
            *(Text(f"• {s.name} ({s.state.value}): {s.reason}") for s in tripped),
            Text(""),
            Text(
                "Resetting re-arms trading; it is journaled with your name. A breaker whose "
                "condition still holds trips again on the next bar."
            ),
        )

        def answered(yes: bool | None) -> None:
            if yes:
                names = [s.name for s in tripped]
                self._command(self._reset(handle, snap.operator, names), "reset")

        self.push_screen(ConfirmScreen("Reset breaker", body, yes="Reset", danger=True), answered)

    async def _reset(self, handle: EngineHandle, who: str, names: list[str]) -> None:
        for name in names:
            reply = await handle.send(ResetBreaker(who=who, name=name))
            if isinstance(reply, Refused):
                self._refused(reply.reason, f"Reset {name} refused: ")
                return
        snap = handle.snapshot()
        state = snap.trading_state.value if snap is not None else "unknown"
        self.notify(f"Reset: {', '.join(names)}; trading is {state}")
        self._redraw(everything=True)

    async def action_faster(self) -> None:
        await self._speed(up=True)

    async def action_slower(self) -> None:
        await self._speed(up=False)

    async def _speed(self, *, up: bool) -> None:
        """One rung of the ladder up or down; the replay applies it at once, mid-bar too."""
        ready = self._handle_ready()
        if ready is None:
            return
        handle, snap = ready
        if snap.mode is not Mode.DEMO:
            self.notify("Speed applies to the demo only")
            return
        target = step_speed(snap.speed, up=up)
        if target is None:
            edge = "fastest" if up else "slowest"
            self.notify(f"Replay speed {speed_label(snap.speed or 0.0)}: already the {edge}")
            return
        reply = await handle.send(SetDemoSpeed(who=snap.operator, speed=target))
        if isinstance(reply, Refused) or not isinstance(reply.payload, SpeedChanged):
            self.notify(reply.reason if isinstance(reply, Refused) else "Speed unchanged")
            return
        self.notify(f"Replay speed {speed_label(reply.payload.speed)}")
        self._redraw(everything=True)

    async def action_next_signal(self) -> None:
        ready = self._handle_ready()
        if ready is None:
            return
        handle, snap = ready
        if snap.mode is not Mode.DEMO:
            self.notify("Next signal applies to the demo only")
            return
        reply = await handle.send(SkipToSignal(who=snap.operator))
        if isinstance(reply, Refused):
            self.notify(reply.reason)
            return
        self.notify("Fast-forwarding to just before the next signal")
        self._redraw(everything=True)

    def _outside_demo(self) -> bool:
        """Not the demo (or not known yet): demo-only keys are neither shown nor active."""
        snap = self._handle.snapshot() if self._handle is not None else None
        return snap is None or snap.mode is not Mode.DEMO

    async def action_cycle_confirm_mode(self) -> None:
        """Off → entries → all: which strategy orders wait for y or n (journaled, audited)."""
        ready = self._handle_ready()
        if ready is None:
            return
        handle, snap = ready
        mode = CONFIRM_CYCLE.get(snap.confirm_mode, "off")
        reply = await handle.send(SetConfirmMode(who=snap.operator, mode=mode))
        if isinstance(reply, Refused):
            self._refused(reply.reason, "Confirm mode: ")
            return
        now = reply.payload.mode if isinstance(reply.payload, ConfirmModeSet) else mode
        self.notify(f"Confirm mode {now}: {CONFIRM_MEANS[now]}")
        self._redraw(everything=True)

    async def action_confirm_order(self) -> None:
        """y: send the order the prompt shows now."""
        await self._answer(send=True)

    async def action_skip_order(self) -> None:
        """n: skip the entry the prompt shows (an exit is refused: its deadline sends it)."""
        await self._answer(send=False)

    async def _answer(self, *, send: bool) -> None:
        ready = self._handle_ready()
        if ready is None:
            return
        handle, snap = ready
        if not snap.held:
            self.notify("Nothing waits for confirmation now", severity="warning")
            return
        cid = snap.held[0].client_order_id
        command = ConfirmOrder if send else SkipOrder
        reply = await handle.send(command(who=snap.operator, client_order_id=cid))
        if isinstance(reply, Refused):
            self._refused(reply.reason, "Not done: ")
        elif isinstance(reply.payload, HeldOrderSent) and reply.payload.order is None:
            self.notify(reply.detail, severity="warning")  # the gate stopped it on the way
        self._redraw(everything=True)

    def action_cycle_theme(self) -> None:
        names = [t.name for t in self._themes]
        index = names.index(self.theme) if self.theme in names else -1
        self.theme = names[(index + 1) % len(names)]
        self.notify(f"Theme: {self.theme}")

    def action_keys_help(self) -> None:
        where = str(self._config_path) if self._config_path else "config.toml"
        # Runtime facts differ per machine: shown only when the app shows live measurements
        # (snapshot tests run with measured=False).
        facts = self._runtime_facts if self._measured else None
        self.push_screen(HelpScreen(effective_keys(dict(self._user_keymap)), where, facts))

    def _runtime_facts(self) -> str:
        """Runs in a worker thread: the keyring lookup may talk to D-Bus."""
        from tapewatch.engine.api.process import runtime_facts

        data = self._log_path.parent.parent if self._log_path is not None else None
        return runtime_facts(data)

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """Ours first; Textual's own only where we have none of that name (its Theme and
        Quit would be a second Theme and a second Quit), demo-only ones only in the demo."""
        ours: set[str] = set()
        for action in ACTIONS:
            if action.demo_only and self._outside_demo():
                continue
            ours.add(action.description.casefold())
            yield SystemCommand(
                action.description, action.help, getattr(self, f"action_{METHODS[action.name]}")
            )
        for command in super().get_system_commands(screen):
            if command.title.casefold() not in ours:
                yield command

    # ------------------------------------------------------------------ quitting
    async def action_quit_now(self) -> None:
        """ctrl+q: works from inside a dialog too (closes it, then the usual quit checks)."""
        while len(self.screen_stack) > 1:
            self.pop_screen()
        await self.action_quit()

    async def action_take_control(self) -> None:
        """C on an attached viewer: control passes to this console (journaled, all told)."""
        attachment = self._attachment
        handle = attachment.handle if attachment is not None else None
        if handle is None:
            self.notify("Take control applies to a console attached with 'tapewatch attach'")
            return
        if handle.control:
            self.notify("This console already controls the engine")
            return
        reply = await handle.take_control()
        if isinstance(reply, Refused):
            self._refused(reply.reason, "Take control: ")
            return
        self.refresh_bindings()

    def action_stop_engine(self) -> None:
        """ctrl+x on the attached controller: stop the served engine itself (confirmed)."""
        if self._attachment is None:
            self.notify("q stops this console's engine; ctrl+x is for an attached console")
            return
        ready = self._handle_ready()  # a viewer is refused here: read-only
        if ready is None:
            return
        handle, snap = ready
        exposure = " Positions stay open at the broker." if snap.has_exposure else ""
        body = Text(
            "This stops the engine for everyone attached, after the bar in hand: no strategy "
            f"exits and no breakers watch until it is started again.{exposure} q only detaches."
        )

        def answered(yes: bool | None) -> None:
            if yes:
                self._command(self._stop_engine(handle, snap.operator), "stop-engine")
            else:
                self.notify("The engine keeps trading: nothing sent")

        self.push_screen(
            ConfirmScreen("Stop the engine?", body, yes="Stop engine", danger=True), answered
        )

    async def _stop_engine(self, handle: EngineHandle, who: str) -> None:
        reply = await handle.send(Stop(who=who, reason="stopped from an attached console"))
        if isinstance(reply, Refused):
            self._refused(reply.reason, "Stop engine: ")
            return
        self._stopped_engine = True
        self._begin_shutdown()  # nothing to follow: detach (the stop finishes without us)

    async def action_quit(self) -> None:
        if self._quitting:
            return
        if self._attachment is not None:  # attached: q detaches, never stops
            self._begin_shutdown()
            return
        handle = self._handle
        snap = handle.snapshot() if handle is not None else None
        if snap is not None and snap.has_exposure:
            open_ = [f"{p.symbol} {qty(p.qty)}" for p in snap.open_positions]
            body = Text(
                ("Open position(s): " + ", ".join(open_) + "\n" if open_ else "")
                + (f"{snap.in_flight} order(s) in flight\n" if snap.in_flight else "")
                + "\nQuitting stops the engine after the bar in hand; positions stay open at the "
                "broker and nothing is sent on exit. Flatten first (f) to close them."
            )

            def answered(yes: bool | None) -> None:
                if yes:
                    self._begin_shutdown()

            self.push_screen(
                ConfirmScreen("Quit with exposure?", body, yes="Quit", danger=True), answered
            )
            return
        self._begin_shutdown()

    def _begin_shutdown(self) -> None:
        if self._quitting:
            return
        self._quitting = True
        self.run_worker(self._shutdown_session(), name="shutdown", exit_on_error=True)

    async def _shutdown_session(self) -> None:
        """Finish commands in progress, stop the engine, wait for it, close the session."""
        commands = [w for w in self.workers if w.group == "command" and w.is_running]
        if commands:
            await self.workers.wait_for_complete(commands)
        attachment = self._attachment
        if attachment is not None:  # a served engine: close the socket, send no Stop
            await attachment.detach()
            self.detached = STOPPED_ENGINE if self._stopped_engine else DETACHED
            log.info("%s", DETACHED)
            self.exit(0)
            return
        handle = self._handle
        snap = handle.snapshot() if handle is not None else None
        if handle is not None and snap is not None:
            why = getattr(self, "stop_signal", None)  # "received SIGTERM", "terminal lost"
            await handle.send(Stop(who=snap.operator, reason=why or "operator quit"))
            worker = self._engine_worker
            if worker is not None and worker.is_running:
                # The feed stops at once; the bar in hand finishes (the stop waited for it).
                try:
                    await asyncio.wait_for(self.workers.wait_for_complete([worker]), 5.0)
                except TimeoutError:
                    log.warning("engine did not stop within 5 s; cancelling it")
                    worker.cancel()
        observers = getattr(self, "_observers", None)
        if observers is not None:
            observers.close()
        if self._embedded is not None:
            await self._embedded.aclose()
        self.exit(0)
