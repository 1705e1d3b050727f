"""Fault injection against the sandbox, through the real SDK: every failure a real Alpaca
session throws, one case each, each checking the same invariants — no duplicate order, no
unhandled exception, the right trading state, a lossless journal, an engine that still answers.

The bad-bar cases write raw frames onto the sandbox's market-data sockets, so the SDK's own
decoder and the feed's checks see exactly what a misbehaving server would send.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tapewatch.engine.model.types import TradingState
from tapewatch.sandbox import SandboxThread
from tests.reliability.soak_helpers import Driver, audit, open_session, sandbox_config

# The sandbox's server (aiohttp) and the SDK's stream (alpaca) log what they handle
# themselves, e.g. the SDK's "error during websocket communication" before it reconnects.
THIRD_PARTY = ("aiohttp", "alpaca")

Inject = Callable[[SandboxThread, Driver], Awaitable[None]]


async def _faults(sandbox: SandboxThread, **spec: Any) -> None:
    await asyncio.to_thread(lambda: sandbox.apply_faults(**spec))


def _send_frames(sandbox: SandboxThread, frames: list[dict[str, object]]) -> None:
    """Put raw frames on every subscribed market-data socket (``t``: an epoch minute)."""

    async def send(box: Any) -> None:
        for client in box.state.data_hub.clients:
            if client.key is not None:
                client.send(frames)

    sandbox.call(send)


def _minute(sandbox: SandboxThread) -> int:
    async def read(box: Any) -> int:
        return int(box.state.market.now_minute)

    return sandbox.call(read)


def _bar(minute: int, close: float = 500.0, **fields: object) -> dict[str, object]:
    bar: dict[str, object] = {
        "T": "b",
        "S": "SPY",
        "o": close,
        "h": close + 0.5,
        "l": close - 0.5,
        "c": close,
        "v": 1000,
        "n": 10,
        "vw": close,
        "t": minute,
    }
    bar.update(fields)
    return bar


async def _frames(sandbox: SandboxThread, make: Callable[[int], list[dict[str, object]]]) -> None:
    minute = await asyncio.to_thread(_minute, sandbox)
    await asyncio.to_thread(_send_frames, sandbox, make(minute))


def rest(status: int, count: int) -> Inject:
    async def inject(sandbox: SandboxThread, driver: Driver) -> None:
        await _faults(sandbox, rest_error={"status": status, "count": count})
        await driver.more_bars(2)

    return inject


def switch(on: dict[str, Any], off: dict[str, Any], hold: float) -> Inject:
    async def inject(sandbox: SandboxThread, driver: Driver) -> None:
        await _faults(sandbox, **on)
        await asyncio.sleep(hold)
        if off:
            await _faults(sandbox, **off)

    return inject


async def lost_order_response(sandbox: SandboxThread, driver: Driver) -> None:
    await _faults(sandbox, lose_order_responses=1)
    sent = driver.count("intent")
    await driver.wait(lambda: driver.count("intent") > sent, 15.0, "an order sent")
    await driver.more_bars(2)
    stats: Any = sandbox.snapshot()["stats"]
    assert stats["lost_order_responses"] >= 1


def bad_bars(make: Callable[[int], list[dict[str, object]]]) -> Inject:
    async def inject(sandbox: SandboxThread, driver: Driver) -> None:
        await _frames(sandbox, make)
        await driver.more_bars(1)

    return inject


async def gap(sandbox: SandboxThread, driver: Driver) -> None:
    """Twelve minutes pass with nothing on the wire, then the stream resumes."""
    await _faults(sandbox, data_stream="mute", advance_minutes=12)
    await _faults(sandbox, data_stream="normal")


async def clock_skew(sandbox: SandboxThread, driver: Driver) -> None:
    """Our clock runs four minutes ahead of the server's."""
    clock = driver.session.clock
    clock.sync(clock.now() + timedelta(minutes=4))


# Faults that hold bars back longer than the stale-data limit, in sandbox time (a market
# minute lasts 20 ms here): the stale breaker must trip, and stay tripped until reset.
_STALE = {"stale"}
STARVING: dict[str, set[str]] = {
    "slow_responses": _STALE,
    "timeouts": _STALE,
    "websocket_dropped": _STALE,
    "websocket_muted": _STALE,
    "websocket_refused_406": _STALE,
    "auth_revoked": _STALE,
    "gap_of_missing_minutes": _STALE,
    "429_storm": _STALE,
    "lost_order_response": _STALE,
}

CASES: dict[str, Inject] = {
    "429_storm": rest(429, 8),
    "500": rest(500, 3),
    "502": rest(502, 3),
    "503": rest(503, 3),
    "504": rest(504, 3),
    "slow_responses": switch({"latency_ms": 300}, {"latency_ms": 0}, 1.0),
    "timeouts": switch({"latency_ms": 1500}, {"latency_ms": 0}, 2.0),
    "lost_order_response": lost_order_response,
    "websocket_dropped": switch({"drop_data_stream": True}, {}, 0.2),
    "websocket_muted": switch({"data_stream": "mute"}, {"data_stream": "normal"}, 2.5),
    "websocket_refused_406": switch(
        {"data_stream": "refuse", "drop_data_stream": True}, {"data_stream": "normal"}, 0.5
    ),
    "auth_revoked": switch({"reject_auth": True}, {"reject_auth": False}, 0.8),
    "malformed_bar": bad_bars(lambda m: [{"T": "b", "S": "SPY", "c": "garbage", "t": m}]),
    "nan_bar": bad_bars(lambda m: [_bar(m, close=float("nan"))]),
    "zero_volume_bar": bad_bars(lambda m: [_bar(m, v=0, n=0)]),
    "duplicate_bar": bad_bars(lambda m: [_bar(m - 1), _bar(m - 1)]),
    "out_of_order_bars": bad_bars(lambda m: [_bar(m - 1), _bar(m - 3)]),
    "late_bar": bad_bars(lambda m: [_bar(m - 60)]),
    "gap_of_missing_minutes": gap,
    "clock_skew": clock_skew,
}


@pytest.mark.parametrize("name", list(CASES))
async def test_a_fault_leaves_the_invariants_intact(
    name: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    sandbox = SandboxThread(sandbox_config(seed=11)).start()
    try:
        session = await open_session(sandbox, tmp_path)
        driver = Driver(session)
        try:
            await driver.wait(lambda: driver.count("fill") >= 1, 20.0, "a first fill")
            await CASES[name](sandbox, driver)
            await driver.more_bars(2, timeout=15.0)
            took = await driver.responsive()
            gate = driver.engine.gate
            tripped = {b.name for b in gate.breakers if b.tripped}
            for breaker in sorted(tripped):  # latched: re-armed only by an explicit reset
                await driver.engine.reset_breaker("fault@test", breaker)
            state = gate.state
            failed = driver.failed()
        finally:
            await driver.finish(sandbox)
        checked = audit(sandbox, tmp_path)
    finally:
        sandbox.stop()
    assert failed is None and driver.loop_errors == []
    ours = [r for r in caplog.records if r.exc_info and not r.name.startswith(THIRD_PARTY)]
    assert not ours, "a traceback was logged"
    assert took < 5.0  # liveness, not speed: a pause must not hang behind the fault
    assert tripped <= STARVING.get(name, set()), tripped
    assert state is TradingState.ACTIVE
    assert checked.duplicates == 0
    assert checked.problems == [] and checked.broker == checked.journal
    assert checked.orders >= 1
