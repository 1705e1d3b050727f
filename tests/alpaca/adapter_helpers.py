"""Shared by the adapter tests: endpoints for a sandbox, a broker on it, waiting helpers."""

from __future__ import annotations

import asyncio
import selectors
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tapewatch.engine.adapters.alpaca.broker import AlpacaBroker
from tapewatch.engine.adapters.alpaca.endpoints import Endpoints
from tapewatch.engine.adapters.alpaca.rest import RetryPolicy
from tapewatch.engine.model.types import Mode
from tapewatch.sandbox import SandboxThread
from tests.alpaca.conftest import KEY, SECRET

FAST_RETRIES = RetryPolicy(base=0.01, server_error_base=0.01, cap=0.1)


def sandbox_endpoints(sandbox: SandboxThread, mode: Mode = Mode.PAPER) -> Endpoints:
    return Endpoints(
        mode=mode,
        trading=sandbox.trading_url,
        data=sandbox.data_url,
        data_stream=sandbox.data_stream_url,
        trade_stream=sandbox.trade_stream_url,
    )


def sandbox_env(sandbox: SandboxThread) -> dict[str, str]:
    return {
        "TAPEWATCH_ALPACA_TRADING_URL": sandbox.trading_url,
        "TAPEWATCH_ALPACA_DATA_URL": sandbox.data_url,
        "TAPEWATCH_ALPACA_STREAM_URL": sandbox.data_stream_url,
        "TAPEWATCH_ALPACA_TRADE_STREAM_URL": sandbox.trade_stream_url,
    }


def make_broker(sandbox: SandboxThread, **options: Any) -> AlpacaBroker:
    settings: dict[str, Any] = {"timeout": 2.0, "policy": FAST_RETRIES}
    settings.update(options)
    return AlpacaBroker(KEY, SECRET, sandbox_endpoints(sandbox), **settings)


async def eventually(
    condition: Callable[[], bool], timeout: float = 5.0, what: str = "condition"
) -> None:
    """Yield to the loop until ``condition()`` holds (the adapter runs on this loop)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


async def in_thread(fn: Callable[[], Any]) -> Any:
    """Call a blocking sandbox control without freezing this loop's streams."""
    return await asyncio.to_thread(fn)


def stat(sandbox: SandboxThread, name: str) -> int:
    return int(sandbox.snapshot()["stats"].get(name, 0))  # type: ignore[attr-defined]


def signal_after_first_fill(
    argv: list[str], env: dict[str, str], cwd: Path, sig: int
) -> tuple[int, list[str], str]:
    """Run a headless session until its first FILL line, send ``sig``, wait for it to exit.

    Returns (exit status, every stdout line, stderr); the process is killed if it hangs.
    """
    proc = subprocess.Popen(
        argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + 30
        while not any(" FILL " in line for line in lines):
            assert time.monotonic() < deadline, f"no fill in time: {lines}"
            if selector.select(timeout=0.5):
                line = proc.stdout.readline()
                assert line, f"exited early: {lines} {proc.stderr.read() if proc.stderr else ''}"
                lines.append(line)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, lines + out.splitlines(), err
