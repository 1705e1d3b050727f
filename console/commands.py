"""The operator's commands: pause, flatten, paper↔live, breaker reset, speed, theme, quit.

Each goes through the engine's command methods and nothing else, runs in a worker so a slow
broker never freezes the screen, and asks first where a mistake would cost money. The app
(``console.app``) supplies the layout, the redraw and the session these act on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Iterable
from pathlib import Path
from typing import Any

from rich.console import Group
from rich.text import Text
from textual.app import App, SystemCommand
from textual.screen import Screen
from textual.theme import Theme
from textual.worker import Worker

from console.accounts import AccountDirectory, AccountUnavailable
from console.flatten_watch import FlattenWatch
from console.keymap import ACTIONS, effective_keys
from console.screens.confirm import ConfirmScreen, MessageScreen
from console.screens.flatten import FlattenScreen
from console.screens.help import HelpScreen
from console.screens.live import LiveConfirmScreen
from console.session import ConsoleSession
from engine.brokers.base import BrokerError
from engine.engine import Engine, EngineCommandError
from engine.models import Mode, OrderRequest, TradingState

log = logging.getLogger("tapewatch.console")

METHODS = {
    "pause": "pause_resume",
    "flatten": "flatten",
    "switch": "switch_account",
    "reset": "reset_breaker",
    "faster": "faster",
    "slower": "slower",
    "theme": "cycle_theme",
    "help": "keys_help",
    "quit": "quit",
}
"""Keymap action name -> the ``action_*`` method it runs."""


class OperatorCommands(App[int]):
    """The command half of the console app; ``TapewatchApp`` adds layout and redraw."""

    _engine: Engine | None
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

    def _redraw(self, *, everything: bool) -> None:
        raise NotImplementedError

    def _engine_ready(self) -> Engine | None:
        if self._engine is None:
            self.notify("Still starting: the engine is not running yet", severity="warning")
        elif self._quitting:
            return None
        return self._engine

    def _command(self, work: Coroutine[Any, Any, None], name: str) -> None:
        self.run_worker(work, name=name, group="command", exit_on_error=True)

    async def action_pause_resume(self) -> None:
        engine = self._engine_ready()
        if engine is None:
            return
        if engine.state.paused:
            await engine.resume()
            self.notify("Resumed: new entries allowed")
        else:
            await engine.pause()
            self.notify("Paused: no new entries; exits and flatten still work")
        self._redraw(everything=True)

    def action_flatten(self) -> None:
        engine = self._engine_ready()
        if engine is None:
            return
        requests = engine.preview_flatten()
        in_flight = engine.state.in_flight
        if not requests and not in_flight:
            self.notify("Nothing to flatten: no positions and no open orders")
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._command(self._flatten(engine, requests), "flatten")
            else:
                self.notify("Flatten cancelled: nothing sent")

        self.push_screen(FlattenScreen(requests, in_flight), answered)

    async def _flatten(self, engine: Engine, previewed: list[OrderRequest]) -> None:
        try:
            sent = await engine.flatten()
        except BrokerError as exc:
            self.notify(f"Flatten failed: {exc}", severity="error", timeout=12)
            return
        seen = sorted((r.symbol, r.side.value, r.qty) for r in previewed)
        now = sorted((o.symbol, o.side.value, o.qty) for o in sent)
        if seen != now:
            self.notify(
                "Positions changed since the preview; sent what is open now", severity="warning"
            )
        self._flatten_watch = FlattenWatch(tuple(o.client_order_id for o in sent))
        orders = "1 order" if len(sent) == 1 else f"{len(sent)} orders"
        self.notify(f"Flatten: {orders} sent; watching until flat")
        self._redraw(everything=True)

    def action_switch_account(self) -> None:
        engine = self._engine_ready()
        if engine is None:
            return
        mode = engine.state.mode
        if mode is Mode.LIVE:
            self._command(self._switch(engine, Mode.PAPER), "switch")
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
        if not self._accounts.live_available():
            self.push_screen(
                MessageScreen(
                    "No live credentials",
                    "Live trading needs live Alpaca keys, and none are stored.\n\n"
                    "Store them first, then press m again. Paper trading continues meanwhile.",
                    warning=True,
                )
            )
            return
        if engine.state.trading_state is TradingState.HALTED:
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
                self._command(self._switch(engine, Mode.LIVE), "switch")
            else:
                self.notify("Stayed on paper: nothing changed")

        self.push_screen(LiveConfirmScreen(self._accounts.describe(Mode.LIVE)), answered)

    async def _switch(self, engine: Engine, mode: Mode) -> None:
        try:
            broker, account, endpoint = await self._accounts.connect(mode)
        except (AccountUnavailable, BrokerError) as exc:
            self.notify(f"Cannot switch to {mode.value}: {exc}", severity="error", timeout=12)
            return
        try:
            await engine.switch_account(
                mode=mode, broker=broker, account=account, endpoint=endpoint
            )
        except EngineCommandError as exc:
            await broker.close()
            self.notify(f"Switch refused: {exc}", severity="error", timeout=12)
            return
        self.notify(
            f"Now trading {mode.value}: {account}",
            severity="warning" if mode is Mode.LIVE else "information",
        )
        self._redraw(everything=True)

    def action_reset_breaker(self) -> None:
        engine = self._engine_ready()
        if engine is None:
            return
        tripped = [
            s for s in engine.gate.statuses(engine.clock.now()) if s.tripped and s.name != "pause"
        ]
        if not tripped:
            hint = ": press p to resume from the pause" if engine.state.paused else ""
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
                self._command(self._reset(engine, [s.name for s in tripped]), "reset")

        self.push_screen(ConfirmScreen("Reset breaker", body, yes="Reset", danger=True), answered)

    async def _reset(self, engine: Engine, names: list[str]) -> None:
        for name in names:
            await engine.reset_breaker(name=name)
        self.notify(f"Reset: {', '.join(names)}; trading is {engine.state.trading_state.value}")
        self._redraw(everything=True)

    def action_faster(self) -> None:
        self._speed(2.0)

    def action_slower(self) -> None:
        self._speed(0.5)

    def _speed(self, factor: float) -> None:
        engine = self._engine_ready()
        if engine is None:
            return
        if engine.state.mode is not Mode.DEMO:
            self.notify("Speed applies to the demo only")
            return
        current = engine.state.speed or 60.0
        speed = engine.set_speed(current * factor)
        if speed is None:
            self.notify("This feed has no speed control")
        else:
            self.notify(f"Replay speed ×{speed:g}")
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
        from engine.clock import LiveClock
        from engine.runtime import collect_runtime_facts, format_facts

        data = self._log_path.parent.parent if self._log_path is not None else None
        return format_facts(collect_runtime_facts(LiveClock().now(), data_dir=data))

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        for action in ACTIONS:
            yield SystemCommand(
                action.description, action.help, getattr(self, f"action_{METHODS[action.name]}")
            )
        yield from super().get_system_commands(screen)

    # ------------------------------------------------------------------ quitting
    async def action_quit_now(self) -> None:
        """ctrl+q: works from inside a dialog too (closes it, then the usual quit checks)."""
        while len(self.screen_stack) > 1:
            self.pop_screen()
        await self.action_quit()

    async def action_quit(self) -> None:
        if self._quitting:
            return
        engine = self._engine
        if engine is not None and engine.state.has_exposure:
            state = engine.state
            open_ = [
                f"{p.symbol} {p.qty:g}" for p in state.positions.values() if abs(p.qty) > 1e-12
            ]
            body = Text(
                ("Open position(s): " + ", ".join(open_) + "\n" if open_ else "")
                + (f"{state.in_flight} order(s) in flight\n" if state.in_flight else "")
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
        """Finish commands in progress, stop the engine, wait for it, close the journal."""
        commands = [w for w in self.workers if w.group == "command" and w.is_running]
        if commands:
            await self.workers.wait_for_complete(commands)
        engine = self._engine
        if engine is not None:
            why = getattr(self, "stop_signal", None)  # "received SIGTERM", "terminal lost"
            await engine.stop(why or "operator quit", who=engine.who)  # the audit names it
            worker = self._engine_worker
            if worker is not None and worker.is_running:
                # The feed stops at once; the bar in hand finishes (engine.stop waited for it).
                try:
                    await asyncio.wait_for(self.workers.wait_for_complete([worker]), 5.0)
                except TimeoutError:
                    log.warning("engine did not stop within 5 s; cancelling it")
                    worker.cancel()
        observers = getattr(self, "_observers", None)
        if observers is not None:
            observers.close()
        if self._session is not None:
            await self._close_session(self._session)
        self.exit(0)

    @classmethod
    async def _close_session(cls, session: object) -> None:
        """A paper/live session closes its sockets and threads too (``aclose``)."""
        aclose = getattr(session, "aclose", None)
        if aclose is not None:
            await aclose()
        else:
            cls._close_journal(session)

    @staticmethod
    def _close_journal(session: object) -> None:
        journal = getattr(session, "journal", None)
        if journal is not None:
            journal.close()
