"""Issue 9 item 7: start-up waits out 429s, 5xx and refused connections (one line per wait,
growing jittered delays, capped at 60 s), and stops at once on refused keys, an unknown symbol
or a signal. Real alpaca-py clients against the sandbox; the waits are injected (no sleeping)."""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tapewatch.engine.adapters.alpaca.endpoints import Endpoints
from tapewatch.engine.adapters.alpaca.startup import StartupWait
from tapewatch.engine.core.broker import BrokerError
from tapewatch.engine.model.types import Mode
from tapewatch.engine.root.live import LiveOptions, LiveSession, build_live_session
from tapewatch.engine.settings.config import ConfigError, EngineConfig, StrategyConfig
from tapewatch.sandbox import SandboxKey, SandboxThread
from tests.alpaca.adapter_helpers import FAST_RETRIES, sandbox_endpoints, sandbox_env
from tests.alpaca.conftest import KEY, SECRET
from tests.alpaca.test_adapter_headless import ROOT, credentials, quick_config

PREFIX = "waiting for Alpaca: "


class Waits:
    """An injected sleep: records each wait, sleeps not at all, may act on the n-th wait."""

    def __init__(self, on_wait: Callable[[int], Awaitable[None]] | None = None) -> None:
        self.lines: list[str] = []
        self.slept: list[float] = []
        self._on_wait = on_wait

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        if self._on_wait is not None:
            await self._on_wait(len(self.slept))
        await asyncio.sleep(0)

    def startup_wait(self, seed: int = 3) -> StartupWait:
        return StartupWait(say=self.lines.append, sleep=self.sleep, rng=random.Random(seed))


def options(endpoints: Endpoints, waits: Waits) -> LiveOptions:
    return LiveOptions(
        endpoints=endpoints,
        timeout=2.0,
        warmup_bars=5,
        policy=FAST_RETRIES,
        startup_wait=waits.startup_wait(),
    )


async def build(
    endpoints: Endpoints, waits: Waits, tmp_path: Path, config: EngineConfig | None = None
) -> LiveSession:
    return await build_live_session(
        config or quick_config(),
        Mode.PAPER,
        credentials(),
        tmp_path,
        options=options(endpoints, waits),
    )


async def close(session: LiveSession) -> None:
    await session.engine.stop()
    await session.aclose()


def rest_errors_left(sandbox: SandboxThread) -> list[Any]:
    faults: Any = sandbox.snapshot()["faults"]
    return list(faults["rest_errors"])


# -- the wait itself ---------------------------------------------------------------------------


def test_waits_double_from_one_second_to_a_jittered_sixty_second_cap() -> None:
    wait = StartupWait(rng=random.Random(1))
    delays = [wait.delay(n) for n in range(1, 12)]
    assert 0.75 <= delays[0] <= 1.0
    assert all(b > a for a, b in itertools.pairwise(delays[:7]))  # 1, 2, 4 … 32, 64→60
    assert all(45.0 <= d <= 60.0 for d in delays[6:])  # capped, still jittered
    assert len(set(delays[6:])) == len(delays[6:])
    other = StartupWait(rng=random.Random(2))
    assert [other.delay(n) for n in range(1, 12)] != delays  # two restarts do not align


async def test_a_transient_failure_is_retried_and_a_refusal_is_not() -> None:
    waits = Waits()
    wait = waits.startup_wait()
    answers: list[BaseException | str] = [
        BrokerError("GET /v2/clock failed: cannot connect to Alpaca", retryable=True),
        BrokerError("rate limited", status=429, retryable=True),
        BrokerError("bad gateway", status=502, retryable=True),
        "ok",
    ]

    async def step() -> str:
        answer = answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    assert await wait.run(step) == "ok"
    assert [line.split(", retrying")[0] for line in waits.lines] == [
        PREFIX + "cannot connect",
        PREFIX + "HTTP 429",
        PREFIX + "HTTP 502",
    ]
    for status in (401, 403, 404, 422):

        async def refused(status: int = status) -> str:
            raise BrokerError(f"HTTP {status}", status=status)

        with pytest.raises(BrokerError):
            await wait.run(refused)
    assert len(waits.slept) == 3  # nothing more was waited for


async def test_with_limited_patience_the_failure_is_raised_instead_of_a_long_wait() -> None:
    waits = Waits()
    wait = StartupWait(give_up_after=5.0, say=waits.lines.append, sleep=waits.sleep)

    async def storm() -> None:
        raise BrokerError("rate limited", status=429, retryable=True)

    with pytest.raises(BrokerError) as caught:
        await wait.run(storm)
    assert caught.value.status == 429
    assert len(waits.slept) == 2 and sum(waits.slept) <= 5.0  # ~1 + ~2; ~4 more is too long
    assert len(waits.lines) == 2


# -- start-up against the sandbox --------------------------------------------------------------


async def test_a_429_storm_on_the_clock_is_waited_out_with_growing_waits(
    make_sandbox: Callable[..., SandboxThread], tmp_path: Path
) -> None:
    sandbox = make_sandbox(
        bar_interval=0, faults={"rest_error": {"status": 429, "count": 5, "path": "/v2/clock"}}
    )
    waits = Waits()
    session = await build(sandbox_endpoints(sandbox), waits, tmp_path)
    await close(session)
    assert len(waits.lines) == 5 and all(
        line.startswith(PREFIX + "HTTP 429, retrying in ") for line in waits.lines
    )
    assert waits.slept == sorted(waits.slept) and len(set(waits.slept)) == 5
    assert waits.slept[0] <= 1.0 and 8.0 < waits.slept[-1] <= 16.0
    assert waits.lines[-1].endswith(f"retrying in {waits.slept[-1]:.0f} s")
    assert rest_errors_left(sandbox) == []


async def test_5xx_on_account_positions_orders_and_history_are_waited_out(
    make_sandbox: Callable[..., SandboxThread], tmp_path: Path
) -> None:
    sandbox = make_sandbox(
        bar_interval=0,
        faults={
            "rest_error": [
                {"status": 503, "count": 2, "path": "/v2/account"},
                {"status": 502, "count": 1, "path": "/v2/positions"},
                {"status": 500, "count": 1, "path": "/v2/orders", "method": "GET"},
                {"status": 504, "count": 1, "path": "/v2/assets"},
            ]
        },
    )
    waits = Waits()
    session = await build(sandbox_endpoints(sandbox), waits, tmp_path)
    try:
        assert session.engine.state.account  # the account was read in the end
    finally:
        await close(session)
    # The account and positions are read together: one wait may cover a failure of each.
    reasons = {line.split(", retrying")[0].removeprefix(PREFIX) for line in waits.lines}
    assert (
        {"HTTP 500", "HTTP 503", "HTTP 504"}
        <= reasons
        <= {f"HTTP {s}" for s in (500, 502, 503, 504)}
    )
    assert len(waits.lines) >= 4 and waits.slept[0] <= 1.0
    assert rest_errors_left(sandbox) == []


async def test_history_back_fill_waits_out_a_503_storm(
    make_sandbox: Callable[..., SandboxThread], tmp_path: Path
) -> None:
    # The data client keeps its own three quick tries; the fourth 503 reaches the start-up wait.
    storm = {"status": 503, "count": 4, "path": "/v2/stocks"}
    sandbox = make_sandbox(bar_interval=0, faults={"rest_error": storm})
    waits = Waits()
    session = await build(sandbox_endpoints(sandbox), waits, tmp_path)
    try:
        assert len(session.feed.warmup()) >= 5
    finally:
        await close(session)
    assert waits.lines and waits.lines[0].startswith(PREFIX + "HTTP 503")
    assert rest_errors_left(sandbox) == []


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_a_refused_connection_is_waited_out_until_alpaca_answers(
    make_sandbox: Callable[..., SandboxThread], tmp_path: Path
) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    endpoints = Endpoints(
        mode=Mode.PAPER,
        trading=url,
        data=url,
        data_stream=f"ws://127.0.0.1:{port}/v2/iex",
        trade_stream=f"ws://127.0.0.1:{port}/stream",
    )

    async def come_up(waited: int) -> None:
        if waited == 3:  # Alpaca is back after the third wait
            await asyncio.to_thread(make_sandbox, bar_interval=0, port=port)

    waits = Waits(come_up)
    session = await build(endpoints, waits, tmp_path)
    await close(session)
    assert len(waits.lines) == 3
    assert all(line.startswith(PREFIX + "cannot connect, retrying in ") for line in waits.lines)
    assert waits.slept == sorted(waits.slept)


async def test_refused_keys_end_start_up_at_once(
    make_sandbox: Callable[..., SandboxThread], tmp_path: Path
) -> None:
    sandbox = make_sandbox(bar_interval=0, keys={KEY: SandboxKey(SECRET, paper=False)})
    waits = Waits()
    with pytest.raises(BrokerError) as caught:
        await build(sandbox_endpoints(sandbox), waits, tmp_path)
    assert caught.value.status == 401
    assert waits.lines == [] and waits.slept == []


async def test_an_unknown_symbol_ends_start_up_at_once_even_in_a_storm(
    make_sandbox: Callable[..., SandboxThread], tmp_path: Path
) -> None:
    sandbox = make_sandbox(
        bar_interval=0, faults={"rest_error": {"status": 429, "count": 2, "path": "/v2/clock"}}
    )
    config = EngineConfig(
        strategy=StrategyConfig(symbol="ZZZZQ", timeframe="5Min", rsi_period=2, sma_period=3)
    ).validate()
    waits = Waits()
    with pytest.raises(ConfigError, match="ZZZZQ"):
        await build(sandbox_endpoints(sandbox), waits, tmp_path, config)
    assert len(waits.slept) == 2  # the clock's storm only


async def test_cancelling_start_up_ends_the_wait_at_once(
    make_sandbox: Callable[..., SandboxThread], tmp_path: Path
) -> None:
    storm = {"status": 429, "count": 10_000, "path": "/v2/account"}
    sandbox = make_sandbox(bar_interval=0, faults={"rest_error": storm})
    lines: list[str] = []
    wait = StartupWait(base=30.0, say=lines.append, rng=random.Random(5))  # the real sleep
    opts = LiveOptions(
        endpoints=sandbox_endpoints(sandbox), timeout=2.0, policy=FAST_RETRIES, startup_wait=wait
    )
    task = asyncio.create_task(
        build_live_session(quick_config(), Mode.PAPER, credentials(), tmp_path, options=opts)
    )
    while not lines:
        assert not task.done(), task
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 10)  # the broker and its threads are closed on the way out
    assert lines[0].startswith(PREFIX + "HTTP 429")


async def test_the_console_switch_in_a_storm_says_try_again_and_keeps_nothing_open(
    make_sandbox: Callable[..., SandboxThread],
) -> None:
    from tapewatch.console.accounts import AccountUnavailable
    from tapewatch.engine.root.alpaca_accounts import AlpacaAccounts

    storm = {"status": 503, "count": 10_000, "path": "/v2/account"}
    sandbox = make_sandbox(bar_interval=0, faults={"rest_error": storm})
    endpoints = sandbox_endpoints(sandbox)
    accounts = AlpacaAccounts(
        {Mode.PAPER: credentials()}, {Mode.PAPER: endpoints}, timeout=2.0, policy=FAST_RETRIES
    )
    with pytest.raises(AccountUnavailable) as caught:
        await accounts.connect(Mode.PAPER)  # a key press: it answers, it does not wait
    text = str(caught.value)
    assert "HTTP 503" in text and "try the switch again" in text and SECRET not in text


# -- tapewatch run --headless under systemd ----------------------------------------------------


def test_headless_start_up_in_a_storm_waits_and_stops_cleanly_on_sigterm(
    make_sandbox: Callable[..., SandboxThread], tmp_path: Path
) -> None:
    storm = {"status": 429, "count": 10_000, "path": "/v2/clock"}
    sandbox = make_sandbox(bar_interval=0, faults={"rest_error": storm})
    env = {
        **os.environ,
        **sandbox_env(sandbox),
        "APCA_API_KEY_ID": KEY,
        "APCA_API_SECRET_KEY": SECRET,
        "TAPEWATCH_DATA_DIR": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path / "xdg"),
        "PYTHONPATH": str(ROOT),
    }
    script = (
        "import sys, argparse\n"
        "from tapewatch.console.cli import _add_strategy_flags\n"
        "from tapewatch.console.run_cli import add_run_command, cmd_run\n"
        "p = argparse.ArgumentParser(prog='tapewatch')\n"
        "add_run_command(p.add_subparsers(dest='command'), _add_strategy_flags)\n"
        "sys.exit(cmd_run(p.parse_args(sys.argv[1:])))\n"
    )
    argv = [sys.executable, "-c", script, "run", "--headless"]
    proc = subprocess.Popen(
        argv, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    waiting: list[str] = []
    try:
        assert proc.stderr is not None
        selector = selectors.DefaultSelector()
        selector.register(proc.stderr, selectors.EVENT_READ)
        deadline = time.monotonic() + 60
        while len(waiting) < 2:  # two waits: it is still trying, not exiting
            assert time.monotonic() < deadline, f"no waiting lines in time: {waiting}"
            if selector.select(timeout=0.5):
                line = proc.stderr.readline()
                assert line, f"exited early ({proc.poll()}): {waiting}"
                if PREFIX in line:
                    waiting.append(line)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)  # the wait ends at once, not after its sleep
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "HTTP 429, retrying in " in waiting[0]
    assert "Traceback" not in err and "cannot start" not in err
    assert SECRET not in err + "".join(waiting)
