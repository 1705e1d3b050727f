"""The Textual app: layout, keys, modals, and the wiring between engine and panes.

The app paints first and builds the session (numpy, the calendar data, plotext; for paper and
live also alpaca-py and pandas) in a thread afterwards, then sees it only through an
``engine.api`` handle. Panes redraw from the handle's snapshot in frames (``console.pacing``):
an engine event asks for one, every change before it rides on it, at most ~10 a second; a 1 Hz
timer catches what moves with time alone, and only a newer snapshot version is drawn. The event
stream also feeds the toasts. Commands are ``engine.api``
commands sent through the handle, each in a worker so a slow broker never freezes the screen.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, Grid
from textual.filter import LineFilter
from textual.notifications import Notification, Notify, SeverityLevel
from textual.theme import Theme
from textual.widgets import Tab, Tabs
from textual.worker import Worker, WorkerFailed, WorkerState

from tapewatch.console.accounts import AccountDirectory, AccountUnavailable, NoAccounts
from tapewatch.console.activity import Entry
from tapewatch.console.alerts import AlertBudget, alert_for
from tapewatch.console.attach import AttachedHandle, Attachment, attached_as
from tapewatch.console.commands import DEMO_METHODS, METHODS, OperatorCommands
from tapewatch.console.confirm_prompt import PROMPT_ACTIONS, HeldOrderPrompt
from tapewatch.console.flatten_watch import FlattenWatch
from tapewatch.console.footer import KeyFooter
from tapewatch.console.keymap import ACTIONS
from tapewatch.console.pacing import FRAME_INTERVAL, FramePacer, StallProbe, Throttle
from tapewatch.console.panes.activity import ActivityPane
from tapewatch.console.panes.banner import NOTE_SECONDS, Banner
from tapewatch.console.panes.bars import CHART_INTERVAL, BarsPane
from tapewatch.console.panes.base import Palette, View
from tapewatch.console.panes.breakers import BreakersPane
from tapewatch.console.panes.header import HeaderPane
from tapewatch.console.panes.indicators import IndicatorsPane
from tapewatch.console.panes.latency import BUCKETS, STAGES, LatencyPane, latency_histograms
from tapewatch.console.panes.orders import OrdersPane
from tapewatch.console.panes.positions import PositionsPane
from tapewatch.console.screens.reconcile import ask
from tapewatch.console.terminal import Terminal
from tapewatch.console.themes import VARIABLE_DEFAULTS, load_themes, resolve_theme
from tapewatch.engine.api.errors import ConfigError, DataError, JournalError
from tapewatch.engine.api.handle import EngineHandle, EventStream
from tapewatch.engine.api.process import STOP_DEADLINE, ExitDeadline
from tapewatch.engine.api.sessions import Embedded, close_journal, embed
from tapewatch.engine.api.snapshot import Snapshot
from tapewatch.engine.api.types import Mode

if TYPE_CHECKING:
    from tapewatch.engine.api.sessions import ConsoleSession, SessionFactory


class Closeable(Protocol):
    def close(self) -> None: ...


log = logging.getLogger("tapewatch.console")

SHUTDOWN_BUDGET = 7.5  # seconds for a quit or a hang-up to finish cleanly (inside 10 s)
CLOCK = 1.0  # seconds between looks at what moves with time alone (clocks, timers, health)
TICK = FRAME_INTERVAL  # the shortest time between two frames (scripts wait on it)
HISTOGRAM_EVERY = 5.0  # seconds between latency histogram refreshes (computed in a thread)
COMPACT_WIDTH = 100  # below this width or height the panes become pages
COMPACT_HEIGHT = 30
TALL_HEIGHT = 40  # from this height the activity pane has a row of its own
MAX_TOASTS = 3  # on screen at once; every one is in the activity pane too
PAGES = (
    ("market", "1 Market"),
    ("positions", "2 Positions"),
    ("orders", "3 Orders"),
    ("latency", "4 Latency"),
    ("activity", "5 Activity"),
)
USER_ERRORS = (ConfigError, DataError, JournalError, OSError, AccountUnavailable)
"""Start-up failures the user can fix (bad data dir, bad settings, keys Alpaca refused or an
Alpaca that cannot be reached): one line, exit 2."""
_OPERATOR_ACTIONS = frozenset(METHODS.values()) - {"keys_help", "cycle_theme"}
QUIET = ("help", "confirm_mode")
"""Actions kept out of the footer (the help screen and the palette list them)."""


class TapewatchApp(OperatorCommands):
    CSS_PATH = "app.tcss"
    TITLE = "tapewatch"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS: ClassVar[list[BindingType]] = [
        *(
            Binding(a.keys, METHODS[a.name], a.description, id=a.name, show=a.name not in QUIET)
            for a in ACTIONS
        ),
        *(
            Binding(str(i), f"page('{name}')", label, show=False)
            for i, (name, label) in enumerate(PAGES, 1)
        ),
        Binding("ctrl+q", "quit_now", "Quit", show=False, priority=True),
        # y and n answer the confirm-mode prompt, before any other use of the key (n is the
        # demo's next signal otherwise); they act only while the prompt shows.
        Binding("y", "confirm_order", "Send", show=False, priority=True),
        Binding("n", "skip_order", "Skip", show=False, priority=True),
        Binding("C", "take_control", "Take control", show=False),  # an attached viewer
        Binding("ctrl+x", "stop_engine", "Stop engine", show=False),  # attached, confirmed
    ]

    def __init__(
        self,
        *,
        session: ConsoleSession | None = None,
        session_factory: SessionFactory | None = None,
        accounts: AccountDirectory | None = None,
        themes: list[Theme] | None = None,
        theme: str | None = None,
        keymap: dict[str, str] | None = None,
        drive: bool = True,
        measured: bool = True,
        freeze_gc: bool = False,
        log_path: Path | None = None,
        config_path: Path | None = None,
        startup_notice: str | None = None,
        handle_signals: bool = False,
        observe: Callable[[Any], Closeable] | None = None,
        terminal: Terminal | None = None,
        attach: Attachment | None = None,
        on_hangup: str = "keep-running",
        serve_in: Path | None = None,
    ) -> None:
        """``session`` is used as is; otherwise ``session_factory`` builds one in a thread.

        ``drive=False`` never runs the feed (the caller advances the engine itself: snapshot
        tests); ``measured=False`` hides timings that vary from run to run. ``terminal`` is
        what the screen can show; by default read from the environment on a real terminal.
        ``attach`` runs the console over a served engine it did not build (``tapewatch attach``):
        q detaches and the engine keeps trading.
        ``on_hangup`` is what a hang-up does ([console] on_hangup: keep-running, pause, stop);
        ``serve_in`` is the data directory whose ``<mode>/engine.sock`` serves the engine API.
        """
        super().__init__()
        if session is None and session_factory is None and attach is None:
            raise ValueError("give a session, a session_factory or an attachment")
        self._attachment = attach  # a served engine's console: nothing is built here
        self.detached: str | None = None  # "detached; the engine keeps trading", once it has
        self._themes = themes if themes is not None else load_themes()
        self._initial_theme = resolve_theme(theme, self._themes)
        self._user_keymap = dict(keymap or {})
        self._session: ConsoleSession | None = session
        self._factory = session_factory
        self._accounts: AccountDirectory = accounts or NoAccounts()
        self._drive = drive
        self._measured = measured
        self._freeze_gc = freeze_gc
        self._log_path = log_path
        self._config_path = config_path
        self._startup_notice = startup_notice
        self._handle_signals = handle_signals
        self._observe = observe
        self._observers: Closeable | None = None
        self._terminal_given = terminal
        self.terminal = terminal or Terminal()  # decided at mount: the driver is known then
        self._embedded: Embedded | None = None
        self._handle: EngineHandle | None = None
        self._snapshot: Snapshot | None = None  # the one the panes drew last
        self._subscription: EventStream | None = None
        self._engine_worker: Worker[None] | None = None
        self._drawn = -1  # the snapshot version drawn
        self._frame_title = ""
        self._seen_version = -1  # the engine state version drawn
        self._command_toast: Notification | None = None  # the operator's toast showing now
        self._replacing: dict[str, Notification] = {}  # a command's toast -> the one it replaces
        self._reconcile_asks = 0
        self._alerts_shown: dict[str, str] = {}
        self._pacer = FramePacer()
        self._throttles: dict[Any, Throttle] = {}  # pane -> its redraw limit (Pane.EVERY)
        self._owed: set[Any] = set()  # throttled panes whose newer picture waits for its turn
        self._probe = StallProbe()
        self._page = "market"
        self._compact: bool | None = None  # unknown until the first size
        self._quitting = False
        self._flatten_watch: FlattenWatch | None = None
        self._alerts = AlertBudget()
        self._histogram_counts: tuple[int, ...] = ()
        self._histogram_at = -HISTOGRAM_EVERY
        self.error_message: str | None = None  # one line for the terminal after exit
        self.stop_signal: str | None = None  # the signal (or "terminal lost") that stopped us
        self._on_hangup = on_hangup
        self._serve_in = serve_in
        self.hung_up: str | None = None  # why the terminal went away, once it has
        self.serving: Path | None = None  # the engine socket, once it is served
        self._clock: Any = None  # the 1 Hz look's timer (stopped by a hang-up)
        self._dark = False  # the terminal hung up and the engine trades on: draw nothing
        self.deadline: ExitDeadline | None = None
        if handle_signals:  # a real terminal: survive its hang-up, bound every stop
            self.deadline = ExitDeadline(STOP_DEADLINE)
            self._use_hangup_safe_driver()

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        # Kept as attributes: queries on the app search the top screen, which may be a dialog.
        self._frame = Container(id="frame")
        self._header = HeaderPane(id="header")
        self._tabs = Tabs(*(Tab(label, id=name) for name, label in PAGES), id="page-tabs")
        self._grid = Grid(id="panes", classes="-page-market")
        self._bars = BarsPane(id="bars")
        self._latency = LatencyPane(id="latency")
        self._breakers = BreakersPane(id="breakers")
        self._banner = Banner(id="banner")
        self._activity = ActivityPane(id="activity")
        self._panes = (
            self._bars,
            IndicatorsPane(id="indicators"),
            PositionsPane(id="positions"),
            self._latency,
            OrdersPane(id="orders"),
            self._breakers,
            self._activity,
        )
        with self._frame:
            yield self._header
            yield self._banner
            yield self._tabs
            with self._grid:
                yield from self._panes
        self._prompt = HeldOrderPrompt(id="held-order")
        yield self._prompt
        yield KeyFooter()

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return dict(VARIABLE_DEFAULTS)

    def get_line_filters(self) -> list[LineFilter]:
        return [*super().get_line_filters(), *self.terminal.filters]

    def on_mount(self) -> None:
        self.terminal = Terminal.for_app(self._terminal_given, self.is_headless, os.environ)
        self.terminal.apply(self)
        for theme in self._themes:
            self.register_theme(theme)
        self.theme = self._initial_theme
        if self._user_keymap:
            self.set_keymap(self._user_keymap)
        self.theme_changed_signal.subscribe(self, lambda _theme: self._redraw(everything=True))
        self._apply_size(self.size.width, self.size.height)
        for pane in self._panes:
            every = getattr(pane, "EVERY", 0.0)
            if every > 0:
                self._throttles[pane] = Throttle(every)
        self._clock = self.set_interval(CLOCK, self._request_frame, name="clock")
        if self._measured:
            self.run_worker(self._probe.run(), name="stall-probe", exit_on_error=False)
        if self._startup_notice:  # one line under the header, never a toast over the panes
            where = f" · log: {self._log_path}" if self._log_path else ""
            self._banner.show_note(self._startup_notice + where)
            self._log_notice(self._startup_notice + where, "information")
            self.set_timer(NOTE_SECONDS, self._banner.clear_note, name="startup-note")
        if self._handle_signals:
            self._install_stop_signals()
        if self._attachment is not None:
            self.run_worker(self._attachment.run(self), name="attach", exit_on_error=True)
        elif self._session is not None:
            self._attach_session(self._session)
        else:
            # Only after the first frame is on screen: the build thread's imports (numpy,
            # plotext, alpaca-py) would otherwise compete with that paint for the GIL.
            self.call_after_refresh(self._start_build)

    # ------------------------------------------------------------------ stopping from outside
    def _use_hangup_safe_driver(self) -> None:
        try:
            from textual.drivers.linux_driver import LinuxDriver

            from tapewatch.console.hangup import HangupSafeDriver
        except ImportError:  # no termios (Windows): Textual's own driver
            return
        if self.driver_class is LinuxDriver:
            self.driver_class = HangupSafeDriver

    def _install_stop_signals(self) -> None:
        """SIGTERM and SIGINT stop the session cleanly; SIGHUP (a dropped SSH link) is a
        hang-up, which stops it only under ``on_hangup = "stop"``.

        Plain ``signal.signal`` rather than the loop's handlers: the handler runs in the main
        thread even when the loop is stuck, so the exit deadline is armed whatever happens next.
        """
        loop = asyncio.get_running_loop()

        def on_signal(signum: int, _frame: object) -> None:
            name = signal.Signals(signum).name
            hang_up = signum == signal.SIGHUP
            if self.deadline is not None and not (hang_up and not self._hangup_stops):
                self.deadline.arm(f"received {name}")
            act = self._hang_up if hang_up else self._stop_from_outside
            with contextlib.suppress(RuntimeError):  # a closed loop: the deadline ends us
                loop.call_soon_threadsafe(act, f"received {name}" if hang_up else name)

        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(sig, on_signal)

    def terminal_lost(self) -> None:
        """The driver found the terminal gone (EIO): a hang-up, as for SIGHUP."""
        if self.deadline is not None and self._hangup_stops:
            self.deadline.arm("terminal lost")
        self._hang_up("terminal lost")

    @property
    def _hangup_stops(self) -> bool:
        """An attached console detaches on a hang-up; an embedded one follows ``on_hangup``."""
        return self._on_hangup == "stop" or self._attachment is not None

    def _hang_up(self, why: str) -> None:
        """The terminal went away: an attached console detaches; an embedded one journals the
        hang-up and follows ``on_hangup``.

        keep-running and pause: nothing more is drawn (no frames, no clock, no event
        handling), the engine trades on, its socket serves ``tapewatch attach``, and the
        embedded console stops counting as attached. stop: the usual clean stop."""
        if self.hung_up is not None or self._quitting:
            return
        self.hung_up = why
        log.info("the terminal hung up (%s): on_hangup = %s", why, self._on_hangup)
        if self._hangup_stops:
            if self._embedded is None:  # attached (it detaches), or nothing built to journal in
                self._stop_from_outside(why)
            else:
                self.run_worker(self._journal_hangup(), name="hangup", exit_on_error=False)
            return
        self._go_dark()
        if self._embedded is not None:
            self.run_worker(self._journal_hangup(), name="hangup", exit_on_error=False)

    def _go_dark(self) -> None:
        """Stop every redraw: the frames, the 1 Hz clock, the stall probe, the event feed."""
        drop = getattr(self._driver, "drop_output", None)
        if drop is not None:
            drop()
        if self._clock is not None:
            self._clock.stop()
        self._dark = True
        for worker in self.workers:
            if worker.name in ("stall-probe", "events"):
                worker.cancel()
        if self._subscription is not None:
            self._subscription.close()

    async def _journal_hangup(self) -> None:
        """The hang-up as the operator's action (journaled, audited), then its policy."""
        embedded, why = self._embedded, self.hung_up or "terminal lost"
        assert embedded is not None
        snap = embedded.handle.snapshot()
        who = snap.operator if snap is not None else "operator"
        try:
            reply = await embedded.hang_up(self._on_hangup, who, why)
            log.info("hang-up: %s", reply)
        except Exception:  # the policy still holds: the engine trades on (or stops below)
            log.exception("journaling the hang-up failed")
        finally:
            if self._on_hangup == "stop":
                self._stop_from_outside(why)

    def _stop_from_outside(self, why: str) -> None:
        if self.stop_signal is None:
            self.stop_signal = why
            log.info("stopping: %s", why)
        self._begin_shutdown()

    async def _shutdown_session(self) -> None:
        """The quit path, bounded: a hung broker never keeps a stopping console alive.

        Past ``SHUTDOWN_BUDGET`` (the engine's own wait for the bar in hand fits inside it) the
        rest is abandoned: the journal is closed (every record is already committed) and the
        app exits; whatever the broker did is settled at the next start.
        """
        try:
            await asyncio.wait_for(super()._shutdown_session(), SHUTDOWN_BUDGET)
        except TimeoutError:
            log.warning("the stop took longer than %g s: leaving the broker calls", SHUTDOWN_BUDGET)
            if self._session is not None:
                with contextlib.suppress(Exception):
                    close_journal(self._session)
            self.exit(0)

    def _start_build(self) -> None:
        self.run_worker(self._build_session, thread=True, name="build", exit_on_error=False)

    def on_resize(self, event: events.Resize) -> None:
        self._apply_size(event.size.width, event.size.height)

    def _apply_size(self, width: int, height: int) -> None:
        compact = width < COMPACT_WIDTH or height < COMPACT_HEIGHT
        tall = not compact and height >= TALL_HEIGHT  # activity in a row; else it swaps (5, 3)
        self._grid.set_class(tall, "-tall")
        self._grid.set_class(not compact and not tall, "-mid")
        if compact == self._compact:
            return
        self._compact = compact
        self.screen.set_class(compact, "-compact")
        self._grid.set_class(compact, "-compact")
        self._redraw(everything=True)

    # ------------------------------------------------------------------ session start-up
    def _build_session(self) -> ConsoleSession:
        """Runs in a thread: the factory imports numpy and plotext (and alpaca-py for paper)."""
        assert self._factory is not None
        session = self._factory()
        import plotext  # noqa: F401 - warm the import off the UI thread

        return session

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.name == "histograms":
            if event.state is WorkerState.SUCCESS and worker.result is not None:
                latency = self._latency
                latency.histograms = worker.result
                if self._snapshot is not None and latency.display:
                    latency.redraw(self._view(self._snapshot))
            return
        if worker.name != "build":
            return
        if event.state is WorkerState.SUCCESS and worker.result is not None:
            session: ConsoleSession = worker.result
            if self._quitting:
                close_journal(session)
                return
            self._attach_session(session)
        elif event.state is WorkerState.ERROR:
            error = worker.error
            if isinstance(error, USER_ERRORS):
                log.error("could not start the session: %s", error)
                self.error_message = f"tapewatch: error: {error}"
                self.exit(2, return_code=2)  # exit(2) alone sets the result, not the status
            elif error is not None:
                self._handle_exception(
                    error if isinstance(error, Exception) else RuntimeError(str(error))
                )

    def _attach_session(self, session: ConsoleSession) -> None:
        self._session = session
        embedded = self._embedded = embed(session, self._accounts)  # alert rules: numpy, now
        self._handle = embedded.handle
        if self._observe is not None:
            self._observers = self._observe(session)
        if self._serve_in is not None:
            self.run_worker(
                self._serve(embedded, self._serve_in), name="serve", exit_on_error=False
            )
        self._subscription = embedded.handle.events()
        self.run_worker(self._watch_events(self._subscription), name="events", exit_on_error=True)
        if self.hung_up is not None:  # the terminal went while the session was being built
            self._go_dark()
            self.run_worker(self._journal_hangup(), name="hangup", exit_on_error=False)
        if self._drive:
            self._engine_worker = self.run_worker(
                self._run_engine(embedded), name="engine", exit_on_error=True
            )
        self._redraw(everything=True)
        self.refresh_bindings()  # the mode is known now: demo-only keys show or stay hidden
        self._probe.samples.clear()  # the stall window starts once start-up is over
        if self._freeze_gc:
            gc.collect()
            gc.freeze()  # start-up objects never change: keep full collections short

    async def _serve(self, embedded: Embedded, data_dir: Path) -> None:
        """The engine API on ``<data dir>/<mode>/engine.sock``, as ``run --headless`` serves
        it: ``tapewatch attach`` and ``status`` reach this session, before and after a hang-up.
        Another engine already serving there is a warning, not the end of this session."""
        from tapewatch.engine.api.errors import TapewatchError
        from tapewatch.engine.api.wire import socket_path

        snap = embedded.handle.snapshot()
        assert snap is not None
        path = socket_path(data_dir, snap.mode)
        try:
            self.serving = await embedded.serve(path)
        except (TapewatchError, OSError) as exc:
            log.warning("not serving the engine API: %s", exc)
            if self.hung_up is None:
                self.notify(f"Not serving {path}: {exc}", severity="warning", timeout=10)
        except Exception:  # never the end of the trading: the console runs unserved
            log.exception("serving the engine API on %s failed", path)

    async def _run_engine(self, embedded: Embedded) -> None:
        await embedded.run()
        if self.hung_up is not None:  # nobody can see it: stopped over the socket, or no bars
            self._stop_from_outside(self.stop_signal or "the engine stopped after a hang-up")
        elif not self._quitting:
            self.notify("The feed ended: no more bars", severity="warning", timeout=10)

    async def _watch_events(self, subscription: EventStream) -> None:
        async for event in subscription:
            self._probe.wake()
            self._request_frame()  # a burst of events is one frame
            self._activity.add_event(event)
            watch = self._flatten_watch
            alert = alert_for(event, watch.client_order_ids if watch is not None else ())
            if alert is None or self._quitting:
                continue
            if self._alerts.allow(time.monotonic()):
                message, severity = alert
                self._toast(message, severity=severity, timeout=6)  # type: ignore[arg-type]

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """A command's or the console's toast: logged in the activity pane, and it takes the
        place of the previous one still showing, so one operator action is one toast."""
        self._log_notice(f"{title}: {message}" if title else message, severity)
        previous = self._command_toast
        toast = self._toast(message, title=title, severity=severity, timeout=timeout, markup=markup)
        if previous is not None:
            self._replacing[toast.identity] = previous  # goes when this one shows
        self._command_toast = toast

    def _toast(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> Notification:
        """A toast and nothing else (events are in the activity pane already)."""
        wait = self.NOTIFICATION_TIMEOUT if timeout is None else timeout
        toast = Notification(message, title, severity, wait, markup=markup)
        self.post_message(Notify(toast))
        return toast

    def on_notify(self, event: Notify) -> None:
        """At most ``MAX_TOASTS`` at once, the oldest going first: a pile never reaches the
        header (nor hides the newest past the bottom of the screen)."""
        previous = self._replacing.pop(event.notification.identity, None)
        if previous is not None and previous in self._notifications:
            self._unnotify(previous, refresh=False)
        others = [n for n in self._notifications if n is not event.notification]
        for old in others[: max(0, len(others) - (MAX_TOASTS - 1))]:
            self._unnotify(old, refresh=False)
        self._refresh_notifications()

    def _log_notice(self, message: str, severity: str) -> None:
        when = self._snapshot.now if self._snapshot is not None else datetime.now(UTC)
        tone = {"warning": "warn", "error": "bad"}.get(severity, "plain")
        self._activity.add(Entry(when, "notice", message, tone))  # type: ignore[arg-type]

    # ------------------------------------------------------------------ attached (console.attach)
    def use_handle(self, handle: AttachedHandle, *, again: bool) -> None:
        """Draw and follow a served engine's handle (again: after a reconnect, whose engine
        may have restarted and counts its versions afresh)."""
        self._handle = handle
        self._drawn = self._seen_version = -1
        if again:
            self.notify("Reconnected to the engine: following it again")
        else:
            self._banner.show_note(f"Attached to a running engine: {attached_as(handle)}")
            self.set_timer(NOTE_SECONDS, self._banner.clear_note, name="attach-note")
        self._subscription = handle.events()
        self.run_worker(self._watch_events(self._subscription), name="events", exit_on_error=True)
        self._redraw(everything=True)
        self.refresh_bindings()

    def show_link(self, text: str | None) -> None:
        self._banner.show_link(text)

    def attach_failed(self, line: str, code: int) -> None:
        self.error_message = f"tapewatch attach: error: {line}"
        self.exit(code, return_code=code)

    def notify_control(self, change: Any) -> None:
        """A handover between attached consoles: a notice on every one of them."""
        mine = "you control the engine now" if change.control else "this console is read-only"
        self.notify(f"{change.notice}: {mine}", severity="warning", timeout=12)
        self.refresh_bindings()

    @property
    def quitting(self) -> bool:
        return self._quitting

    def request_frame(self) -> None:
        """A newer snapshot arrived over the socket: draw it in the next frame."""
        self._request_frame()

    # ------------------------------------------------------------------ redraw
    def _request_frame(self, at_least: float = 0.0) -> None:
        """Something may have changed: draw it in the next frame (one timer for any number)."""
        if self._dark:
            return  # no terminal: nothing is drawn again
        delay = self._pacer.request(at_least)
        if delay is not None:  # (Textual's timers cannot take a zero delay)
            self.set_timer(max(delay, 0.001), self._draw_frame, name="frame")

    def _draw_frame(self) -> None:
        """One frame: a newer snapshot if there is one, and panes still owed a picture."""
        self._pacer.begin()
        handle = self._handle
        if handle is None:
            return
        snap = handle.snapshot(newer_than=self._drawn)
        if snap is not None:
            # The engine's state moved: every pane. Only time moved: the clocks and timers.
            self._draw(snap, everything=snap.state_version != self._seen_version)
        elif self._snapshot is not None:
            view = self._view(self._snapshot)
            for pane in tuple(self._owed):
                self._draw_pane(pane, view, force=False)
            bars = self._bars
            if bars.pending and bars.display:
                bars.redraw(view)
        waits = [self._throttles[p].wait() for p in self._owed]
        if self._bars.pending:
            waits.append(CHART_INTERVAL)
        if waits:
            self._request_frame(at_least=min(waits))
        if self._snapshot is not None:
            self._refresh_histograms(self._snapshot)

    def _raise_alerts(self, snap: Snapshot) -> None:
        """The Prometheus alert conditions, raised as notifications in the console too."""
        active = {a.name: a.message for a in snap.alerts}
        for alert in snap.alerts:
            if alert.name not in self._alerts_shown:
                self._log_notice(f"alert {alert.name}: {alert.message}", "warning")
                self._toast(
                    alert.message, title=f"alert: {alert.name}", severity="warning", timeout=15
                )
        for name in self._alerts_shown:
            if name not in active:
                self._log_notice(f"alert {name} cleared", "information")
                self._toast(f"{name} cleared", title="alert", timeout=5)
        self._alerts_shown = active

    def _ask_reconciliation(self, snap: Snapshot) -> None:
        """The host asked a person about differences with the broker: open the modal."""
        pending = snap.reconciliation
        if pending is None or pending.asks <= self._reconcile_asks:
            return
        self._reconcile_asks = pending.asks
        if pending.differences and self._handle is not None:
            ask(self, self._handle, pending.differences, snap.operator)

    def _refresh_histograms(self, snap: Snapshot) -> None:
        """Every few seconds, when new latencies arrived, rebuild the histograms off the loop."""
        if not self._measured or not self._latency.display or self._handle is None:
            return
        now = time.monotonic()
        if now - self._histogram_at < HISTOGRAM_EVERY:
            return
        counts = tuple(snap.latency_of(stage).count for stage, _ in STAGES)
        if counts == self._histogram_counts:
            return
        self._histogram_counts, self._histogram_at = counts, now
        self.run_worker(
            self._histograms(self._handle),
            name="histograms",
            exclusive=True,
            group="histograms",
            exit_on_error=False,
        )

    @staticmethod
    async def _histograms(handle: EngineHandle) -> dict[str, str]:
        return latency_histograms(await handle.latency_histograms(BUCKETS))

    @property
    def drawn_version(self) -> int:
        """The engine state version the panes last drew (tests wait on it)."""
        return self._seen_version

    def _view(self, snap: Snapshot) -> View:
        return View(
            state=snap, palette=Palette.of(self), measured=self._measured, mono=self.no_color
        )

    def _redraw(self, *, everything: bool) -> None:
        """Redraw from the handle's latest snapshot (after a command, a resize, a theme)."""
        handle = self._handle
        if handle is None:
            return
        snap = handle.snapshot()
        if snap is not None:
            self._draw(snap, everything=everything, force=True)

    def _draw_pane(self, pane: Any, view: View, *, force: bool) -> None:
        """Draw ``pane`` now, unless its throttle says not yet (then it is owed a frame)."""
        throttle = self._throttles.get(pane)
        if throttle is not None:
            if not force and throttle.wait() > 0:
                self._owed.add(pane)
                return
            throttle.drawn()
            self._owed.discard(pane)
        pane.redraw(view)

    def _draw(self, snap: Snapshot, *, everything: bool, force: bool = False) -> None:
        """Everything when the state moved; header and breakers when only time did."""
        if self._dark:
            return
        self._snapshot = snap
        self._drawn = snap.version
        if everything:
            self._seen_version = snap.state_version
        view = self._view(snap)
        frame = self._frame
        live = snap.mode is Mode.LIVE
        frame.set_class(live, "-live")
        title = f"LIVE · REAL MONEY · {snap.account}" if live else ""
        if title != self._frame_title:  # setting a title repaints the whole screen, even unchanged
            self._frame_title = title
            frame.border_title = title
        if self._measured:
            self._latency.loop_lag = self._probe.summary()
        self._activity.observe(snap)  # connection changes, even while it is not shown
        self._banner.redraw(view)  # hidden until there is an outage: asked every time
        panes: Iterable[Any] = (
            (self._header, *self._panes)
            if everything
            else (self._header, self._breakers, self._activity)
        )
        for pane in panes:
            if pane.display:
                self._draw_pane(pane, view, force=force)
        self._prompt.redraw(snap)  # its countdown moves with time alone
        if self._flatten_watch is not None:
            outcome = self._flatten_watch.check(snap)
            if outcome is not None:
                self._flatten_watch = None
                self.notify(outcome[0], severity=outcome[1], timeout=12)  # type: ignore[arg-type]
        if not self._quitting:
            self._raise_alerts(snap)
            self._ask_reconciliation(snap)

    # ------------------------------------------------------------------ pages (small terminals)
    def action_page(self, name: str) -> None:
        self._tabs.active = name

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        name = event.tab.id or "market"
        panes = self._grid
        panes.remove_class(*(f"-page-{n}" for n, _ in PAGES))
        panes.add_class(f"-page-{name}")
        self._page = name
        self._redraw(everything=True)
        if name in ("orders", "activity"):  # so the arrow keys scroll the log at once
            (self._activity if name == "activity" else self._panes[4]).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "page":  # pages on small screens; 5 and 3 swap activity and orders on mid
            return bool(self._compact) or (
                self._grid.has_class("-mid") and parameters[:1] in (("orders",), ("activity",))
            )
        if action in PROMPT_ACTIONS:  # only while an order waits and no dialog is open
            return self._prompt.answerable and len(self.screen_stack) == 1
        if action in DEMO_METHODS and self._outside_demo():
            return False  # not in the footer, and the key does nothing, outside the demo
        # While a dialog is open only its own keys (and ctrl+q) act.
        return not (action in _OPERATOR_ACTIONS and len(self.screen_stack) > 1)

    # ------------------------------------------------------------------ crashes
    def _handle_exception(self, error: Exception) -> None:
        """A crash: full traceback to the log, one line on the terminal, non-zero exit."""
        cause = error.error if isinstance(error, WorkerFailed) else error
        log.error("console crashed", exc_info=cause)
        where = f" (details in {self._log_path})" if self._log_path else ""
        self.error_message = f"tapewatch: internal error: {type(cause).__name__}: {cause}{where}"
        super()._handle_exception(error)
        self._exit_renderables.clear()  # no traceback over the user's terminal


def create_app(
    session: ConsoleSession,
    *,
    theme: str | None = None,
    accounts: AccountDirectory | None = None,
    keymap: dict[str, str] | None = None,
    drive: bool = False,
    measured: bool = False,
) -> TapewatchApp:
    """An app over a given session that paints the same screen on every run.

    For snapshot tests and screenshots: no feed pacing (``drive=False``; advance the engine
    with ``engine.api.sessions.prime``), no measured timings, a fixed config path in the help
    screen; every time on screen is the engine's simulated clock.
    """
    return TapewatchApp(
        session=session,
        accounts=accounts,
        theme=theme,
        keymap=keymap,
        drive=drive,
        measured=measured,
        config_path=Path("~/.config/tapewatch/config.toml"),
    )
