"""Run an engine without a screen: decisions to stdout, clean stop on SIGINT/SIGTERM/SIGHUP.

A stop never interrupts the engine in the middle of a bar: the signal sets a flag, the current
bar finishes (so any order it sends is journaled and acknowledged), then the session ends.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import TextIO

from engine.engine import Engine
from engine.events import (
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
from engine.feeds.base import Feed


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


async def run_headless(engine: Engine, feed: Feed, *, out: TextIO = sys.stdout) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    received: list[str] = []

    def on_signal(name: str) -> None:
        received.append(name)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, on_signal, sig.name)
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
    try:
        done, _ = await asyncio.wait({running, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if running in done and running.exception() is not None:
            raise running.exception()  # type: ignore[misc]
        reason = f"received {received[0]}" if received else "feed ended"
        await engine.stop(reason)
        if not running.done():
            # The engine finishes the bar in hand, then sees the stop flag.
            await asyncio.wait({running}, timeout=5.0)
            if not running.done():
                running.cancel()
    finally:
        stopper.cancel()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        await asyncio.wait({printing}, timeout=2.0)
        if not printing.done():
            printing.cancel()
    return 0
