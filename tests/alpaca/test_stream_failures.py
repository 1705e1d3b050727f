"""Stream failures through the real alpaca-py streams against the sandbox (issue 9, item 8).

402 auth failed, 406 connection limit, 409 insufficient subscription and an unreachable URL
each become one line with the reason and the jittered wait, written to the log and handed to
the engine's notice path; no traceback reaches stderr (a headless run's stderr handler is
installed, as ``tapewatch run --headless`` does); the socket retries, says why in
``health()``, and recovers when the fault is lifted (409 ends alpaca-py's loop, so the socket
restarts it). With the stream refused the stale-data breaker moves the engine to REDUCING.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from alpaca.data.live import StockDataStream

from tapewatch.engine.adapters.alpaca.clock import BrokerClock
from tapewatch.engine.adapters.alpaca.feed import AlpacaFeed
from tapewatch.engine.adapters.alpaca.stream_failures import (
    Backoff,
    QuietSdkFilter,
    classify,
    from_error_message,
    worth_saying,
)
from tapewatch.engine.adapters.alpaca.streams import DataSocket, TradeSocket
from tapewatch.engine.adapters.sim.broker import SimBroker
from tapewatch.engine.core.engine import Engine
from tapewatch.engine.market.calendar import MarketCalendar
from tapewatch.engine.model.events import BarClosed, Notice
from tapewatch.engine.model.types import Timeframe, TradingState
from tapewatch.engine.observability.logs import setup_logging, teardown_logging
from tapewatch.engine.settings.config import EngineConfig, RiskConfig, StrategyConfig
from tapewatch.sandbox import SandboxThread
from tests.alpaca.adapter_helpers import (
    eventually,
    in_thread,
    sandbox_endpoints,
    sandbox_env,
    stat,
)
from tests.alpaca.conftest import KEY, SECRET, START, running_stream, wait_for

FAST = (0.05, 0.4)  # backoff for tests: the same shape as 1 → 60 s, compressed
KEYS_ADVICE = "check the API keys (paper keys for paper, live keys for live)"


@pytest.fixture
def headless_stderr(tmp_path: Path) -> Iterator[Callable[[], Path]]:
    """Logging as a headless run sets it up: the log file, and warnings on stderr. The test
    calls it first thing: pytest swaps ``sys.stderr`` between a fixture's set-up and the test,
    so a handler made in set-up would write to a closed capture."""
    root = logging.getLogger()
    level = root.level

    def install() -> Path:
        return setup_logging(tmp_path / "data", stderr_level=logging.WARNING)

    yield install
    teardown_logging()
    root.setLevel(level)


@dataclass
class Said:
    """What a socket reported through ``report(level, line)``: the engine's notice path."""

    lines: list[tuple[str, str]] = field(default_factory=list)

    def __call__(self, level: str, line: str) -> None:
        self.lines.append((level, line))

    def warnings(self) -> list[str]:
        return [line for level, line in self.lines if level == "warning"]

    def infos(self) -> list[str]:
        return [line for level, line in self.lines if level == "info"]


def data_socket(url: str, said: Said, bars: list[Any], seed: int = 7) -> DataSocket:
    return DataSocket(
        KEY,
        SECRET,
        url,
        symbols=["SPY"],
        on_bar=bars.append,
        on_updated_bar=bars.append,
        data_timeout=None,
        report=said,
        backoff=Backoff(*FAST, rng=random.Random(seed)),
    )


def assert_quiet_stderr(err: str, label: str) -> None:
    """No traceback, and nothing on stderr but tapewatch's own one-line stream reports."""
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines, "the failure was not reported on stderr at all"
    assert all(f"tapewatch.alpaca.streams: {label}:" in line for line in lines), lines


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# -- the pieces on their own ---------------------------------------------------------------------


def test_backoff_is_jittered_doubling_and_capped() -> None:
    backoff = Backoff(1.0, 60.0, rng=random.Random(3))
    ceilings = [backoff.ceiling(n) for n in range(1, 9)]
    assert ceilings == [1, 2, 4, 8, 16, 32, 60, 60]
    for attempt, ceiling in enumerate(ceilings, start=1):
        delays = {backoff.delay(attempt) for _ in range(20)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1  # jittered: two sockets refused together do not retry together
    assert backoff.delay(10_000) <= 60


def test_a_repeating_reason_is_said_rarely() -> None:
    said = [n for n in range(1, 100) if worth_saying(n, same_reason=n > 1)]
    assert said == [1, 2, 4, 8, 16, 32, 64]
    assert worth_saying(7, same_reason=False)  # a new reason is always said


def test_alpaca_error_messages_carry_their_code_and_advice() -> None:
    refused = from_error_message("auth failed", feed="iex")
    assert (refused.code, refused.lasting) == (402, True)
    assert refused.text == f"authentication refused (402 auth failed); {KEYS_ADVICE}"
    limit = from_error_message("connection limit exceeded", feed="iex")
    assert (limit.code, limit.lasting) == (406, False)
    assert "another program uses this key's data stream" in limit.text
    plan = from_error_message("insufficient subscription", feed="sip")
    assert plan.code == 409 and "sip feed" in plan.text and '[alpaca] feed = "iex"' in plan.text
    gone = classify(ConnectionRefusedError(111, "refused"), endpoint="ws://h:1/v2/iex")
    assert gone.text == "unreachable (ws://h:1/v2/iex: connection refused)"


def test_the_sdk_stream_loggers_lose_their_tracebacks() -> None:
    record = logging.LogRecord("alpaca.trading.stream", logging.ERROR, "f", 1, "boom", None, None)
    try:
        raise ValueError("failed to authenticate")
    except ValueError:
        record.exc_info = sys.exc_info()
    assert QuietSdkFilter().filter(record)
    assert record.levelno == logging.DEBUG and record.exc_info is None


# -- through the real SDK against the sandbox ----------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "code", "state", "words"),
    [
        ("reject_auth", 402, "down", f"authentication refused (402 auth failed); {KEYS_ADVICE}"),
        ("refuse", 406, "reconnecting", "connection limit exceeded (406): another program"),
        ("insufficient_subscription", 409, "down", "insufficient subscription (409): "),
    ],
    ids=["402", "406", "409"],
)
async def test_a_refused_data_stream_says_why_once_retries_and_recovers(
    make_sandbox: Callable[..., SandboxThread],
    headless_stderr: Callable[[], Path],
    capfd: pytest.CaptureFixture[str],
    mode: str,
    code: int,
    state: str,
    words: str,
) -> None:
    log_file = headless_stderr()
    sandbox = make_sandbox(bar_interval=0.05)
    await in_thread(lambda: sandbox.apply_faults(data_stream=mode))
    said = Said()
    bars: list[Any] = []
    stream = data_socket(sandbox.data_stream_url, said, bars)
    await stream.start()
    try:
        await eventually(lambda: stream.health().failures >= 6, 15, "six failed attempts")
        health = stream.health()
        assert stat(sandbox, f"data_error_{code}") >= health.failures  # each one the server's
        assert (health.state, health.code) == (state, code)
        assert health.reason is not None and health.reason in words
        assert health.retry_in is not None
        assert health.retry_in <= FAST[1]
        assert not bars and not stream.connected()
        lines = said.warnings()
        assert lines[0].startswith(f"market-data stream: {words}")
        assert " in " in lines[0] and lines[0].endswith(" s")
        assert len(lines) < health.failures  # repeats are not re-said on every retry
        if code == 409:  # alpaca-py's loop returns on 409: the socket restarts it, saying so
            assert "alpaca-py gave up; restarting it in" in lines[0]
            assert stream.restarts >= 5
        else:
            assert "; retrying in " in lines[0] and stream.restarts == 0
        await in_thread(lambda: sandbox.apply_faults(data_stream="normal"))
        await eventually(lambda: stream.health().ok and bool(bars), 15, "recovery and bars")
        recovered = stream.health()
        assert recovered.failures == 0 and recovered.reason == health.reason
        assert said.infos()[-1].startswith("market-data stream: connected again after ")
    finally:
        await stream.stop()
    assert stream.health().state == "stopped"
    assert_quiet_stderr(capfd.readouterr().err, "market-data stream")
    assert "Traceback" not in log_file.read_text()  # nor in the log file


async def test_another_program_on_the_key_means_406_until_it_lets_go(
    sandbox: SandboxThread, headless_stderr: Callable[[], Path], capfd: pytest.CaptureFixture[str]
) -> None:
    headless_stderr()
    other = StockDataStream(KEY, SECRET, url_override=sandbox.data_stream_url)

    async def ignore(_bar: Any) -> None:
        return None

    other.subscribe_bars(ignore, "SPY")
    said = Said()
    bars: list[Any] = []
    stream = data_socket(sandbox.data_stream_url, said, bars)
    try:
        with running_stream(other, sandbox):
            await eventually(
                lambda: sandbox.snapshot()["streams"]["data_subscribers"] == 1,  # type: ignore[index]
                5,
                "the other program's subscription",
            )
            await stream.start()
            await eventually(lambda: stream.health().failures >= 3, 10, "three 406s")
            health = stream.health()
            assert stat(sandbox, "data_error_406") >= 3
            assert (health.state, health.code) == ("reconnecting", 406)
            assert said.warnings()[0].startswith(
                "market-data stream: connection limit exceeded (406): another program uses "
                "this key's data stream"
            )
        await eventually(lambda: stream.health().ok and bool(bars), 15, "the slot and bars")
    finally:
        await stream.stop()
    assert_quiet_stderr(capfd.readouterr().err, "market-data stream")


async def test_an_unreachable_url_is_one_line_and_retried(
    headless_stderr: Callable[[], Path], capfd: pytest.CaptureFixture[str]
) -> None:
    headless_stderr()
    url = f"ws://127.0.0.1:{free_port()}/v2/iex"
    said = Said()
    bars: list[Any] = []
    stream = data_socket(url, said, bars)
    await stream.start()
    try:
        await eventually(lambda: stream.health().failures >= 5, 15, "five failed attempts")
        health = stream.health()
        assert health.state == "reconnecting"
        assert health.reason == f"unreachable ({url}: connection refused)"
        lines = said.warnings()
        assert lines[0].startswith(f"market-data stream: unreachable ({url}: connection refused)")
        assert "; retrying in " in lines[0]
        assert len(lines) < health.failures
    finally:
        await stream.stop()
    assert_quiet_stderr(capfd.readouterr().err, "market-data stream")


async def test_a_refused_trade_stream_says_why_and_recovers(
    sandbox: SandboxThread, headless_stderr: Callable[[], Path], capfd: pytest.CaptureFixture[str]
) -> None:
    headless_stderr()
    said = Said()
    updates: list[Any] = []
    stream = TradeSocket(
        KEY,
        SECRET,
        sandbox.trade_stream_url,
        paper=True,
        on_update=updates.append,
        report=said,
        backoff=Backoff(*FAST, rng=random.Random(1)),
    )
    await in_thread(lambda: sandbox.apply_faults(reject_auth=True))
    await stream.start()
    try:
        await eventually(lambda: stream.health().failures >= 4, 15, "four refusals")
        health = stream.health()
        assert stat(sandbox, "trade_unauthorized") >= 4
        assert health.state == "down" and health.reason == "authentication refused (unauthorized)"
        assert said.warnings()[0].startswith(
            f"trade-updates stream: authentication refused (unauthorized); {KEYS_ADVICE}; "
            "retrying in "
        )
        await in_thread(lambda: sandbox.apply_faults(reject_auth=False))
        await eventually(lambda: stream.health().ok, 15, "recovery")
        await eventually(
            lambda: sandbox.snapshot()["streams"]["trade_listeners"] == 1,  # type: ignore[index]
            5,
            "listening again",
        )
    finally:
        await stream.stop()
    assert_quiet_stderr(capfd.readouterr().err, "trade-updates stream")


# -- the stale-data breaker sees a refused stream --------------------------------------------------


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def one_minute_config() -> EngineConfig:
    return EngineConfig(
        strategy=StrategyConfig(symbol="SPY", timeframe="1Min", rsi_period=2, sma_period=3),
        risk=RiskConfig(stale_bars=2.0),
    ).validate()


@pytest.fixture(scope="module")
def calendar() -> MarketCalendar:
    return MarketCalendar()


async def test_stale_breaker_goes_reducing_while_the_stream_is_refused(
    make_sandbox: Callable[..., SandboxThread], calendar: MarketCalendar
) -> None:
    sandbox = make_sandbox(bar_interval=0)  # the market moves only when the test says so
    monotonic = FakeMonotonic()
    clock = BrokerClock(START, monotonic=monotonic)
    notices: list[Notice] = []
    feed = AlpacaFeed.connect(
        KEY,
        SECRET,
        sandbox_endpoints(sandbox),
        symbol="SPY",
        timeframe=Timeframe(1, "Min"),
        clock=clock,
        calendar=calendar,
        warmup_bars=5,
        timeout=2.0,
        data_timeout=None,
        on_notice=notices.append,
        stream_backoff=Backoff(*FAST, rng=random.Random(5)),
    )
    config = one_minute_config()
    engine = Engine(config, clock=clock, broker=SimBroker(100_000.0, config.execution, clock=clock))
    live: list[BarClosed] = []
    engine.bus.add_sink(lambda event: live.append(event) if isinstance(event, BarClosed) else None)
    await feed.backfill()
    await engine.start()
    running = asyncio.create_task(engine.run(feed))
    try:
        await eventually(lambda: feed.stream_health().ok, 10, "the stream")
        # "ok" is set on authentication; the subscription may land a moment later, so the
        # market moves a minute at a time until two bars have come through the stream.
        for _ in range(40):
            if len(live) >= 2:
                break
            await in_thread(lambda: sandbox.apply_faults(advance_minutes=1))
            await asyncio.sleep(0.25)
        await eventually(lambda: len(live) >= 2, 10, "two live bars")
        seen = len(live)
        await in_thread(
            lambda: sandbox.apply_faults(data_stream="reject_auth", drop_data_stream=True)
        )
        await eventually(lambda: feed.stream_health().failures >= 2, 10, "refused twice")

        def said_402() -> bool:
            return any(
                n.message.startswith("market-data stream: ")
                and "authentication refused (402 auth failed)" in n.message
                for n in notices
            )

        # The line is written as a wait begins; under load the first failure may be the drop
        # itself, so wait for the 402 line rather than assume it came with the second failure.
        await eventually(said_402, 20, "the 402 notice")
        await in_thread(lambda: sandbox.apply_faults(advance_minutes=3))  # bars nobody gets
        health = feed.stream_health()
        assert (health.state, health.code) == ("down", 402)
        engine.check_stale()
        assert engine.gate.state is TradingState.ACTIVE  # no time has passed yet
        monotonic.now += 10 * 60  # ten minutes of session pass with the stream refused
        engine.check_stale()  # what the timer armed by the last bar calls
        assert len(live) == seen
        assert engine.gate.state is TradingState.REDUCING
        assert "no new bar for" in (engine.gate.stale.reason or "")
        stream_notices = [n for n in notices if n.message.startswith("market-data stream: ")]
        assert any("authentication refused (402 auth failed)" in n.message for n in stream_notices)
        assert all(n.level == "warning" for n in stream_notices)
    finally:
        await engine.stop("test done")
        await asyncio.wait_for(running, 10)
        await feed.aclose()


# -- a real headless run -------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
RUN = (
    "import sys, argparse\n"
    "from tapewatch.console.cli import _add_strategy_flags\n"
    "from tapewatch.console.run_cli import add_run_command, cmd_run\n"
    "p = argparse.ArgumentParser(prog='tapewatch')\n"
    "add_run_command(p.add_subparsers(dest='command'), _add_strategy_flags)\n"
    "sys.exit(cmd_run(p.parse_args(sys.argv[1:])))\n"
)


def test_a_headless_run_with_a_refused_stream_prints_one_line_and_no_traceback(
    make_sandbox: Callable[..., SandboxThread], tmp_path: Path
) -> None:
    sandbox = make_sandbox(bar_interval=0.05, faults={"data_stream": "reject_auth"})
    env = {
        **os.environ,
        **sandbox_env(sandbox),
        "APCA_API_KEY_ID": KEY,
        "APCA_API_SECRET_KEY": SECRET,
        "TAPEWATCH_DATA_DIR": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path / "xdg"),
        "PYTHONPATH": str(ROOT),
    }
    argv = [sys.executable, "-c", RUN, "run", "--headless"]
    proc = subprocess.Popen(
        argv, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    err_lines: list[str] = []
    try:
        assert proc.stderr is not None
        selector = selectors.DefaultSelector()
        selector.register(proc.stderr, selectors.EVENT_READ)
        deadline = time.monotonic() + 30
        while not any("market-data stream: authentication refused" in x for x in err_lines):
            assert time.monotonic() < deadline, f"no stream failure line: {err_lines}"
            if selector.select(timeout=0.5):
                line = proc.stderr.readline()
                assert line, f"exited early: {err_lines}"
                err_lines.append(line)
        wait_for(lambda: stat(sandbox, "data_error_402") >= 3, 30, "three refusals")
        proc.send_signal(signal.SIGTERM)
        out, rest = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = "".join(err_lines) + rest
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    reports = [x for x in err.splitlines() if "market-data stream:" in x]
    assert (
        f"market-data stream: authentication refused (402 auth failed); {KEYS_ADVICE}; "
        "retrying in " in reports[0]
    )
    assert len(reports) < stat(sandbox, "data_error_402")  # not one line per retry
    assert not [x for x in err.splitlines() if "alpaca." in x.split(":")[0]]  # no SDK lines
    assert "market-data stream: authentication refused (402 auth failed)" in out  # the notice
