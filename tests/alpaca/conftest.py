"""Fixtures: a sandbox per test on 127.0.0.1 (ephemeral port), real alpaca-py clients, and a
helper that runs an SDK stream in a thread and always stops it.

Every sandbox starts at the same market minute (Tuesday 2024-03-05 10:00 New York) with the
same seed, so bars and prices are identical from run to run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from alpaca.data.historical import StockHistoricalDataClient
from alpaca.trading.client import TradingClient

from tapewatch.sandbox import SandboxConfig, SandboxThread

START = datetime(2024, 3, 5, 15, 0, tzinfo=UTC)  # a Tuesday, 10:00 in New York
KEY = "PKSANDBOXTEST"
SECRET = "sandbox-secret"


class FakeTime:
    """An injectable wall clock (unix seconds) for rate-limit windows."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def sandbox_config(**overrides: Any) -> SandboxConfig:
    settings: dict[str, Any] = {"start": START, "bar_interval": 0.05, "page_size": 50}
    settings.update(overrides)
    return SandboxConfig(**settings)


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5.0
    while True:
        extra = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not extra or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert not extra, f"threads left running: {extra}"


@pytest.fixture
def make_sandbox() -> Iterator[Callable[..., SandboxThread]]:
    started: list[SandboxThread] = []

    def make(**overrides: Any) -> SandboxThread:
        sandbox = SandboxThread(sandbox_config(**overrides)).start()
        started.append(sandbox)
        return sandbox

    yield make
    for sandbox in started:
        sandbox.stop()


@pytest.fixture
def sandbox(make_sandbox: Callable[..., SandboxThread]) -> SandboxThread:
    return make_sandbox()


def trading_client(sandbox: SandboxThread, key: str = KEY, secret: str = SECRET) -> TradingClient:
    client = TradingClient(key, secret, url_override=sandbox.trading_url)
    client._retry_wait = 0  # the SDK's own 429/504 retries, without its 3 s sleeps
    return client


def data_client(sandbox: SandboxThread) -> StockHistoricalDataClient:
    client = StockHistoricalDataClient(KEY, SECRET, url_override=sandbox.data_url)
    client._retry_wait = 0
    return client


@pytest.fixture
def trading(sandbox: SandboxThread) -> TradingClient:
    return trading_client(sandbox)


@pytest.fixture
def data(sandbox: SandboxThread) -> StockHistoricalDataClient:
    return data_client(sandbox)


def wait_for(condition: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def sandbox_state(sandbox: SandboxThread) -> dict[str, Any]:
    return sandbox.snapshot()


@contextmanager
def running_stream(stream: Any, sandbox: SandboxThread) -> Iterator[threading.Thread]:
    """Run an alpaca-py stream's blocking ``run()`` in a thread; stop and join it on exit.

    ``stop()`` only sets a flag the SDK checks between receives (up to 5 s apart on a quiet
    socket), so the sandbox then closes its sockets to wake the stream at once.
    """
    thread = threading.Thread(target=stream.run, name="sdk-stream", daemon=True)
    thread.start()
    try:
        yield thread
    finally:

        def started() -> bool:
            loop = stream._loop
            return not thread.is_alive() or (loop is not None and loop.is_running())

        wait_for(started, what="the stream's event loop")
        if thread.is_alive():
            stream.stop()
            sandbox.close_streams()
        thread.join(10)
        assert not thread.is_alive(), "the SDK stream did not stop"
