"""A paper session end to end through the real SDK against the sandbox: stream -> 5-minute
aggregation -> signal -> order -> fill over trade_updates -> position, headless, in-process and
as ``tapewatch run --headless`` in a subprocess stopped by SIGTERM; plus the one-line errors."""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import signal
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tapewatch.console.run_cli import add_run_command, cmd_run
from tapewatch.engine.model.events import (
    Event,
    OrderFilled,
    OrderIntended,
    OrderSubmitted,
    SignalEvaluated,
)
from tapewatch.engine.model.types import Intent, Mode, OrderRequest, Side, TradingState
from tapewatch.engine.root.headless import run_headless
from tapewatch.engine.root.live import LiveOptions, build_live_session, journal_path
from tapewatch.engine.settings.config import EngineConfig, RiskConfig, StrategyConfig
from tapewatch.engine.settings.credentials import Credentials
from tapewatch.sandbox import SandboxKey, SandboxThread
from tests.alpaca.adapter_helpers import (
    eventually,
    in_thread,
    sandbox_endpoints,
    sandbox_env,
    signal_after_first_fill,
)
from tests.alpaca.conftest import KEY, SECRET

ROOT = Path(__file__).resolve().parents[2]
QUICK = [
    *["--rsi-period", "2", "--sma-period", "3", "--rsi-oversold", "90", "--rsi-overbought", "95"],
    *["--unattended-pause-after", "off"],  # unwatched runs in market time: no dead-man pause
]


def quick_config() -> EngineConfig:
    """Trades within a few bars: tiny look-backs, thresholds that almost always fire."""
    return EngineConfig(
        strategy=StrategyConfig(
            symbol="SPY",
            timeframe="5Min",
            rsi_period=2,
            sma_period=3,
            rsi_oversold=90,
            rsi_overbought=95,
            position_pct=0.05,
        ),
        risk=RiskConfig(unattended_pause_after="off"),  # unwatched, in accelerated market time
    ).validate()


def credentials() -> Credentials:
    return Credentials(KEY, SECRET, "paper", "environment")


async def test_a_paper_session_trades_end_to_end(
    make_sandbox: Callable[..., SandboxThread], tmp_path: Path
) -> None:
    sandbox = make_sandbox(bar_interval=0.05, fill_delay=0.01)
    options = LiveOptions(endpoints=sandbox_endpoints(sandbox), timeout=2.0, warmup_bars=20)
    session = await build_live_session(
        quick_config(), Mode.PAPER, credentials(), tmp_path, options=options
    )
    engine = session.engine
    seen: list[Event] = []
    engine.bus.add_sink(seen.append)
    try:
        assert len(session.feed.warmup()) >= 20 and session.differences == []

        async def stop_after_fills() -> None:
            await eventually(
                lambda: sum(isinstance(e, OrderFilled) for e in seen) >= 2, timeout=15.0
            )
            await engine.stop("test done")

        stopper = asyncio.create_task(stop_after_fills())
        assert await run_headless(engine, session.feed, out=io.StringIO()) == 0
        await stopper
        await eventually(lambda: engine.state.in_flight == 0, what="orders to settle")
        positions = await session.broker.get_positions()
    finally:
        await session.aclose()
    signals = [e for e in seen if isinstance(e, SignalEvaluated)]
    assert all(s.bar_ts.minute % 5 == 0 for s in signals)  # 5-minute bars from 1-minute ones
    journal_events = list(_journal(tmp_path))
    kinds = [e.kind for e in journal_events]
    for event in journal_events:
        if isinstance(event, OrderFilled):
            cid = event.fill.client_order_id
            intent = next(
                i
                for i, e in enumerate(journal_events)
                if isinstance(e, OrderIntended) and e.request.client_order_id == cid
            )
            sent = next(
                i
                for i, e in enumerate(journal_events)
                if isinstance(e, OrderSubmitted) and e.order.client_order_id == cid
            )
            fill = journal_events.index(event)
            assert intent < sent < fill  # written before it was sent; filled after
    assert kinds.count("fill") >= 2 and "session_stopped" in kinds
    ours = {s: p.qty for s, p in engine.portfolio.positions.items()}
    assert ours == _held(sandbox) == {s: p.qty for s, p in positions.items()}


def _held(sandbox: SandboxThread) -> dict[str, float]:
    positions: Any = sandbox.snapshot()["account"]["positions"]  # type: ignore[index]
    return {symbol: float(qty) for symbol, qty in positions.items()}


def _journal(data_dir: Path) -> list[Event]:
    from tapewatch.engine.storage.journal import Journal

    with Journal(journal_path(data_dir, Mode.PAPER)) as journal:
        return [event for _, event in journal.events()]


async def test_a_restart_reconciles_with_the_broker_and_logs_differences(
    make_sandbox: Callable[..., SandboxThread], tmp_path: Path
) -> None:
    sandbox = make_sandbox(bar_interval=0, fill_delay=0.0)
    options = LiveOptions(endpoints=sandbox_endpoints(sandbox), timeout=2.0, warmup_bars=5)
    first = await build_live_session(
        quick_config(), Mode.PAPER, credentials(), tmp_path, options=options
    )
    await first.engine.stop()
    await first.aclose()
    # A manual trade in the broker's web UI while tapewatch was down:
    from alpaca.trading.enums import OrderSide, TimeInForce
    from alpaca.trading.requests import MarketOrderRequest

    from tests.alpaca.conftest import trading_client

    manual = MarketOrderRequest(
        symbol="SPY", qty=3, side=OrderSide.BUY, time_in_force=TimeInForce.DAY
    )
    await in_thread(lambda: trading_client(sandbox).submit_order(manual))
    await eventually(lambda: _held(sandbox) == {"SPY": 3.0}, what="the manual fill")
    second = await build_live_session(
        quick_config(), Mode.PAPER, credentials(), tmp_path, options=options
    )
    try:
        assert second.differences == [
            "SPY: the journal has 0, Alpaca has 3; adopting Alpaca's position"
        ]
        assert second.engine.portfolio.positions["SPY"].qty == 3
    finally:
        await second.engine.stop()
        await second.aclose()


async def test_entries_wait_for_the_session_but_exits_do_not() -> None:
    from tapewatch.engine.adapters.sim.broker import SimBroker
    from tapewatch.engine.core.clock import SimClock
    from tapewatch.engine.core.engine import Engine
    from tapewatch.engine.model.events import RiskDenied

    open_now = [False]
    clock = SimClock(datetime(2024, 3, 5, 22, 0, tzinfo=UTC))
    config = quick_config()
    broker = SimBroker(100_000.0, config.execution, clock=clock)
    engine = Engine(
        config, clock=clock, broker=broker, entry_hours=lambda _t: open_now[0], who="t@local"
    )
    seen: list[object] = []
    engine.bus.add_sink(seen.append)
    await engine.start()
    entry = OrderRequest("e", "SPY", Side.BUY, 1, Intent.ENTRY, estimated_price=100.0)
    assert await engine._route(entry, 0.0) is None
    denied = [e for e in seen if isinstance(e, RiskDenied)]
    assert denied and denied[-1].breaker == "session" and "market closed" in denied[-1].reason
    assert engine.gate.state is TradingState.ACTIVE  # nothing tripped: it is just the hours
    exit_ = OrderRequest("x", "SPY", Side.SELL, 1, Intent.EXIT, estimated_price=100.0)
    order = await engine._route(exit_, 1.0)
    assert order is not None  # an exit is not an entry: the hours do not hold it back
    open_now[0] = True
    entry2 = OrderRequest("e2", "SPY", Side.BUY, 1, Intent.ENTRY, estimated_price=100.0)
    assert await engine._route(entry2, 0.0) is not None


# -- the command line ----------------------------------------------------------------------------


def _parse(*argv: str) -> argparse.Namespace:
    from tapewatch.console.cli import _add_strategy_flags

    parser = argparse.ArgumentParser(prog="tapewatch")
    add_run_command(parser.add_subparsers(dest="command"), _add_strategy_flags)
    return parser.parse_args(["run", *argv])


def test_without_headless_run_points_at_the_console(capsys: pytest.CaptureFixture[str]) -> None:
    assert cmd_run(_parse()) == 2
    assert "--headless" in capsys.readouterr().err


def test_no_keys_is_one_line_naming_login_and_the_variables(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setattr("tapewatch.engine.api.accounts.load_credentials", lambda mode: None)
    assert cmd_run(_parse("--headless", "--live", "--data-dir", str(tmp_path))) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "tapewatch login --live" in err and "APCA_API_KEY_ID" in err


@pytest.fixture
def fresh_logging() -> Iterator[None]:
    """cmd_run installs the log file handlers; take them down after the test."""
    from tapewatch.engine.observability.logs import teardown_logging

    yield
    teardown_logging()


@pytest.mark.usefixtures("fresh_logging")
def test_live_keys_on_the_paper_endpoint_are_named_as_such(
    make_sandbox: Callable[..., SandboxThread],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    sandbox = make_sandbox(keys={KEY: SandboxKey(SECRET, paper=False)})  # a live key pair
    for name, value in {
        **sandbox_env(sandbox),
        "APCA_API_KEY_ID": KEY,
        "APCA_API_SECRET_KEY": SECRET,
    }.items():
        monkeypatch.setenv(name, value)
    code = cmd_run(_parse("--headless", "--data-dir", str(tmp_path)))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert "HTTP 401" in err[-1] and "live keys used against the paper endpoint" in err[-1]
    assert SECRET not in "\n".join(err)


def test_run_headless_in_a_subprocess_stops_cleanly_on_sigterm(
    make_sandbox: Callable[..., SandboxThread], tmp_path: Path
) -> None:
    sandbox = make_sandbox(bar_interval=0.05, fill_delay=0.01)
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
    argv = [sys.executable, "-c", script, "run", "--headless", *QUICK]
    code, lines, err = signal_after_first_fill(argv, env, ROOT, signal.SIGTERM)
    assert code == 0, err
    assert lines[0].startswith("PAPER session: account SANDBOX")
    assert any("session stopped: received SIGTERM" in line for line in lines)
    assert "Traceback" not in err
    assert (tmp_path / "paper" / "journal.sqlite3").exists()
    assert (tmp_path / "logs" / "tapewatch.log").exists()


async def test_rest_round_trips_and_stream_lag_are_recorded(
    make_sandbox: Callable[..., SandboxThread], tmp_path: Path
) -> None:
    """Issue 6: the REST round-trip and stream-lag histograms move in a live session."""
    sandbox = make_sandbox(bar_interval=0.02)
    options = LiveOptions(endpoints=sandbox_endpoints(sandbox), timeout=2.0, warmup_bars=5)
    session = await build_live_session(
        quick_config(), Mode.PAPER, credentials(), tmp_path, options=options
    )
    engine = session.engine
    try:
        latency = engine.latency
        before = latency.count("rest_roundtrip")
        await session.broker.get_positions()
        assert latency.count("rest_roundtrip") == before + 1
        running = asyncio.create_task(engine.run(session.feed))
        await eventually(lambda: latency.count("stream_lag") >= 3, timeout=15.0)
        assert latency.summary("stream_lag").max < 60
        await engine.stop("test done")
        await asyncio.wait_for(running, 10)
    finally:
        await session.aclose()


@pytest.mark.usefixtures("fresh_logging")
def test_a_symbol_alpaca_does_not_know_is_one_line_and_exit_2(
    make_sandbox: Callable[..., SandboxThread],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sandbox = make_sandbox(bar_interval=0.05)
    for name, value in sandbox_env(sandbox).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("APCA_API_KEY_ID", KEY)
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)
    code = cmd_run(_parse("--headless", "--symbol", "ZZZZQ", "--data-dir", str(tmp_path)))
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and "APCA_API_KEY_ID" not in line]
    assert code == 2
    assert len(lines) == 1 and "ZZZZQ" in lines[0] and "--symbol" in lines[0]
    assert "Traceback" not in err
