"""Run an engine without a screen: decisions to stdout, clean stop on SIGINT/SIGTERM/SIGHUP.

A stop never interrupts the engine in the middle of a bar if it can help it: the signal sets a
flag, the current bar finishes (so any order it sends is journaled and acknowledged), then the
session ends. "If it can help it": a hung broker must not hold the stop past ``stop_budget``
seconds, so every wait here is bounded and a bar still in hand then is cancelled (its intent is
journaled; whatever the broker did is settled at the next start).

With ``serve_at`` the engine's API is served on that Unix socket for the whole run
(``engine.api.socket_server``): consoles and ``tapewatch status`` in other processes see the
same handle a console in this one would, and their coming and going never touches the trading.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from tapewatch.engine.core.engine import Engine
from tapewatch.engine.core.feed import Feed
from tapewatch.engine.model.events import (
    BreakerChanged,
    DayStarted,
    Event,
    Notice,
    OperatorAction,
    OrderFilled,
    OrderSubmitted,
    OrderUpdated,
    RiskDenied,
    SessionStarted,
    SessionStopped,
    SignalEvaluated,
    TradingStateChanged,
)
from tapewatch.engine.observability.sdnotify import systemd_session
from tapewatch.engine.settings.errors import TapewatchError

if TYPE_CHECKING:
    from tapewatch.engine.api.handle import SessionHost
    from tapewatch.engine.api.snapshot import Hours
    from tapewatch.engine.api.socket_server import EngineServer
    from tapewatch.engine.root.live import SessionHours

log = logging.getLogger("tapewatch.headless")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
STOP_BUDGET = 7.0
"""Seconds from a stop to the end of ``run_headless``: the engine's own wait for the bar in hand
(5 s) fits, and the caller's closing of sockets still ends inside 10 s."""


def _num(value: float | None, fmt: str = ".2f") -> str:
    return "—" if value is None else format(value, fmt)


def format_event(event: Event) -> str | None:
    """One log line per decision-relevant event (None for events not worth a line)."""
    stamp = event.ts.strftime("%Y-%m-%d %H:%M:%SZ")
    if isinstance(event, SignalEvaluated):
        return (
            f"{stamp} {event.symbol} close {event.close:.2f} RSI {_num(event.rsi, '.1f')} "
            f"SMA {_num(event.sma)} -> {event.action.upper()}"
        )
    if isinstance(event, OrderSubmitted):
        o = event.order
        what = f"{o.side.value} {o.qty:g} {o.symbol}"
        return f"{stamp} order {what} {o.status.value} ({o.client_order_id})"
    if isinstance(event, OrderFilled):
        f = event.fill
        return f"{stamp} FILL {f.side.value} {f.qty:g} {f.symbol} @ {f.price:.4f} fee {f.fee:.2f}"
    if isinstance(event, OrderUpdated):
        o = event.order
        reason = f": {o.reason}" if o.reason else ""
        return f"{stamp} order {o.client_order_id} {o.status.value}{reason}"
    if isinstance(event, RiskDenied):
        r = event.request
        return f"{stamp} DENIED {r.side.value} {r.qty:g} {r.symbol}: {event.reason}"
    if isinstance(event, BreakerChanged):
        what = "TRIPPED" if event.tripped else "reset"
        return f"{stamp} breaker {event.name} {what}: {event.reason}"
    if isinstance(event, TradingStateChanged):
        return f"{stamp} trading state {event.old.value} -> {event.new.value} ({event.reason})"
    if isinstance(event, DayStarted):
        return f"{stamp} day {event.day} starts with equity {event.starting_equity:,.2f}"
    if isinstance(event, OperatorAction):
        return f"{stamp} operator {event.who}: {event.action} {event.detail}".rstrip()
    if isinstance(event, Notice):
        return f"{stamp} {event.level}: {event.message}"
    if isinstance(event, SessionStarted):
        return (
            f"{stamp} session started: {event.mode} {event.account} {event.symbol} "
            f"{event.timeframe}, cash {event.starting_cash:,.2f}"
        )
    if isinstance(event, SessionStopped):
        return f"{stamp} session stopped: {event.reason}"
    return None


def _silence(out: TextIO) -> None:
    """Point stdout at /dev/null so the interpreter's exit flush does not raise again."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, out.fileno())
    except (OSError, ValueError):
        pass


def install_stop_signals(on_signal: Callable[[str], None]) -> Callable[[], None]:
    """Route SIGINT/SIGTERM/SIGHUP to ``on_signal(name)`` on the running loop; returns the undo.

    ``signal.signal`` rather than ``loop.add_signal_handler``: the Python handler runs in the
    main thread whatever the loop is doing, so ``on_signal`` can arm an exit deadline at once;
    the loop is woken with ``call_soon_threadsafe``.
    """
    loop = asyncio.get_running_loop()
    previous: dict[int, Any] = {}

    def handler(signum: int, _frame: object) -> None:
        with contextlib.suppress(RuntimeError):  # a closed loop: the process is leaving
            loop.call_soon_threadsafe(on_signal, signal.Signals(signum).name)

    for sig in STOP_SIGNALS:
        previous[sig] = signal.signal(sig, handler)

    def undo() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return undo


async def _bounded(what: str, awaitable: Any, seconds: float) -> bool:
    """Await ``awaitable`` for at most ``seconds``; False (and a log line) when it overran."""
    try:
        await asyncio.wait_for(awaitable, max(seconds, 0.01))
    except TimeoutError:
        log.warning("%s took longer than %.1f s: not waiting for it", what, seconds)
        return False
    return True


async def run_headless(
    engine: Engine,
    feed: Feed,
    *,
    out: TextIO = sys.stdout,
    on_signal: Callable[[str], None] | None = None,
    stop_budget: float = STOP_BUDGET,
    serve_at: Path | None = None,
    host: SessionHost | None = None,
    hours: Hours | SessionHours | None = None,
    on_serving: Callable[[EngineServer], None] | None = None,
    serve_optional: bool = False,
) -> int:
    """Run until the feed ends or a stop signal; ``on_signal(name)`` is told of the signal first
    (the CLI arms its exit deadline there). Every wait after the stop is bounded. ``serve_at``
    serves the API (with ``host`` and ``hours`` behind its handle); ``on_serving`` is told once
    the socket is up. With ``serve_optional`` a socket another engine serves is a warning and
    the run goes on unserved (the demo: each run has its own journal)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    received: list[str] = []

    def signalled(name: str) -> None:
        received.append(name)
        if on_signal is not None:
            on_signal(name)
        stop.set()

    # Before anything that awaits: a SIGTERM while the socket comes up must stop cleanly,
    # not kill the process with the default action.
    restore = install_stop_signals(signalled)
    try:
        server = await _serve(engine, serve_at, host, hours) if serve_at is not None else None
    except TapewatchError as exc:
        if not serve_optional:  # run --headless: one engine per data directory
            restore()
            raise
        # A demo beside another demo: each has its own journal; only one can be attached to.
        sys.stderr.write(f"tapewatch: not serving this run: {exc}\n")
        server = None
    except BaseException:
        restore()
        raise
    if server is not None and on_serving is not None:
        on_serving(server)
    subscription = engine.subscribe()

    async def printer() -> None:
        async for event in subscription:
            line = format_event(event)
            if line:
                try:
                    print(line, file=out, flush=True)
                except BrokenPipeError:  # `| head` closed the pipe: stop printing, keep trading
                    _silence(out)
                    return

    printing = asyncio.create_task(printer())
    running = asyncio.create_task(engine.run(feed))
    stopper = asyncio.create_task(stop.wait())
    engine.arm_attendance()  # paper/live: nobody attached for too long pauses new entries
    systemd = systemd_session()  # None outside a systemd unit
    if systemd is not None:
        systemd.start(engine)
    until = float("inf")  # set when the stop begins
    try:
        done, _ = await asyncio.wait({running, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if running in done and running.exception() is not None:
            raise running.exception()  # type: ignore[misc]
        until = loop.time() + stop_budget
        reason = f"received {received[0]}" if received else "feed ended"
        if systemd is not None:
            await systemd.stopping()
            systemd = None
        await _bounded("stopping the engine", engine.stop(reason), until - loop.time() - 1.0)
        if not running.done():
            # The engine finishes the bar in hand, then sees the stop flag.
            await asyncio.wait({running}, timeout=max(until - loop.time() - 0.5, 0.01))
            if not running.done():
                log.warning("the bar in hand did not finish in time: cancelled")
                running.cancel()
                await asyncio.wait({running}, timeout=0.5)
    finally:
        if systemd is not None:
            await systemd.stopping()
        stopper.cancel()
        restore()
        if server is not None:
            left = until - loop.time() - 0.5 if until != float("inf") else 2.0
            await _bounded("closing the engine socket", server.close(), max(left, 0.2))
        await asyncio.wait({printing}, timeout=max(min(2.0, until - loop.time()), 0.1))
        if not printing.done():
            printing.cancel()
    return 0


async def _serve(
    engine: Engine, path: Path, host: SessionHost | None, hours: Hours | SessionHours | None
) -> EngineServer:
    """The engine's handle served on ``path`` (the caller holds the folder's writer lock);
    a paper/live session's hours are read as the embedded console reads them, and attached
    consoles count for the dead-man's switch as the embedded one does."""
    from tapewatch.engine.api.handle import InProcessHandle
    from tapewatch.engine.api.socket_server import serve
    from tapewatch.engine.root.console_session import AlpacaHours
    from tapewatch.engine.root.live import SessionHours

    calendar = AlpacaHours(hours) if isinstance(hours, SessionHours) else hours
    handle = InProcessHandle(engine, host=host, hours=calendar)
    # A handover of control between attached consoles is an operator action: journaled, audited.
    return await serve(handle, path, on_clients=engine.set_attached, journal=engine._operator)
