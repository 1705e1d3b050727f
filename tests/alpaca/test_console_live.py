"""The console on a real (sandbox) Alpaca account through the real SDK: a paper session trades end
to end on screen (stream -> 5-minute bars -> signal -> order -> fill -> Positions pane), the m
switch moves to a live sandbox account only with the typed word, and start-up failures (keys of
the other mode, an unreachable Alpaca) end the app with one line and exit 2, never the demo."""

from __future__ import annotations

import argparse
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tapewatch.console.accounts import AccountUnavailable
from tapewatch.console.app import TapewatchApp
from tapewatch.console.screens.confirm import ConfirmScreen
from tapewatch.console.screens.live import LiveConfirmScreen
from tapewatch.engine.adapters.alpaca.endpoints import Endpoints
from tapewatch.engine.model.events import (
    Event,
    OrderFilled,
    OrderIntended,
    OrderSubmitted,
    SignalEvaluated,
)
from tapewatch.engine.model.types import Mode
from tapewatch.engine.root.alpaca_accounts import AlpacaAccounts, load_accounts
from tapewatch.engine.root.console_session import LiveSessionFactory
from tapewatch.engine.root.live import LiveOptions, journal_path
from tapewatch.engine.settings.config import EngineConfig, RiskConfig, StrategyConfig
from tapewatch.engine.settings.credentials import Credentials, KeyringUnavailable, load_credentials
from tapewatch.engine.storage.journal import Journal
from tapewatch.sandbox import SandboxKey, SandboxThread
from tests.alpaca.adapter_helpers import FAST_RETRIES, sandbox_endpoints, sandbox_env
from tests.alpaca.conftest import KEY, SECRET
from tests.console.conftest import THEMES, shown, until

SIZE = (120, 36)
LIVE_KEY = "AKSANDBOXLIVE"
LIVE_SECRET = "live-sandbox-secret"


def strategy(*, trades: bool) -> EngineConfig:
    """``trades``: tiny look-backs and thresholds that fire within a few bars; else never."""
    return EngineConfig(
        strategy=StrategyConfig(
            symbol="SPY",
            timeframe="5Min",
            rsi_period=2,
            sma_period=3,
            rsi_oversold=90 if trades else 1,
            rsi_overbought=95 if trades else 99,
            position_pct=0.05,
        ),
        risk=RiskConfig(),
    ).validate()


def paper_keys() -> Credentials:
    return Credentials(KEY, SECRET, "paper", "environment")


def accounts_for(paper: SandboxThread, live: SandboxThread | None = None) -> AlpacaAccounts:
    keys = {Mode.PAPER: paper_keys()}
    endpoints = {Mode.PAPER: sandbox_endpoints(paper), Mode.LIVE: sandbox_endpoints(paper)}
    if live is not None:
        keys[Mode.LIVE] = Credentials(LIVE_KEY, LIVE_SECRET, "live", "keyring")
        endpoints[Mode.LIVE] = sandbox_endpoints(live, Mode.LIVE)
    return AlpacaAccounts(keys, endpoints, timeout=2.0, policy=FAST_RETRIES)


def console(
    accounts: AlpacaAccounts, config: EngineConfig, data: Path, endpoints: Endpoints | None = None
) -> TapewatchApp:
    """What ``launch`` builds when paper keys exist: the live factory bound to the app."""
    options = LiveOptions(endpoints=endpoints, timeout=2.0, warmup_bars=20)
    factory = LiveSessionFactory(config, accounts, data, options=options)
    app = TapewatchApp(session_factory=factory, accounts=accounts, themes=THEMES)
    factory.bind(app.call_from_thread)
    return app


def journal_events(data: Path, mode: Mode = Mode.PAPER) -> list[Event]:
    with Journal(journal_path(data, mode)) as journal:
        return [event for _, event in journal.events()]


def held(sandbox: SandboxThread) -> dict[str, float]:
    positions: Any = sandbox.snapshot()["account"]["positions"]  # type: ignore[index]
    return {symbol: float(qty) for symbol, qty in positions.items()}


async def quit_app(pilot: Any, app: TapewatchApp) -> None:
    await pilot.press("q")
    await pilot.pause()
    if isinstance(app.screen, ConfirmScreen):  # a position is open: confirm the quit
        await pilot.click("#yes")
    await until(pilot, lambda: not app.is_running, "the app to exit")


async def test_the_console_trades_a_paper_account_end_to_end(
    make_sandbox: Callable[..., SandboxThread], tmp_path: Path
) -> None:
    sandbox = make_sandbox(bar_interval=0.05, fill_delay=0.01)
    app = console(accounts_for(sandbox), strategy(trades=True), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app._session is not None, "the paper session")
        engine = app._session.engine if app._session is not None else None
        assert engine is not None and engine.mode is Mode.PAPER
        seen: list[Event] = []
        engine.bus.add_sink(seen.append)

        def filled_and_drawn() -> bool:
            position = engine.state.positions.get("SPY")
            return (
                any(isinstance(e, OrderFilled) for e in seen)
                and engine.state.in_flight == 0
                and position is not None
                and abs(position.qty) > 0
                and app.drawn_version == engine.state.version
            )

        for _ in range(15):  # until() waits up to 5 s of app time per call
            try:
                await until(pilot, filled_and_drawn, "a fill shown in the Positions pane")
                break
            except AssertionError:
                continue
        assert filled_and_drawn()
        qty = engine.state.positions["SPY"].qty
        positions = shown(app.query_one("#positions"))
        assert "SPY" in positions and f"{qty:g}"[:4] in positions
        header = shown(app.query_one("#header"))
        assert "PAPER" in header and "SANDBOX" in header and sandbox.trading_url in header
        assert engine.state.account.startswith("SANDBOX")
        await quit_app(pilot, app)
    assert app.return_code == 0
    ours = {s: p.qty for s, p in engine.portfolio.positions.items() if abs(p.qty) > 0}
    assert ours == held(sandbox)  # the engine and Alpaca agree on what is held
    events = journal_events(tmp_path)
    signals = [e for e in events if isinstance(e, SignalEvaluated)]
    assert signals and all(s.bar_ts.minute % 5 == 0 for s in signals)  # 5-minute bars
    fills = [e for e in events if isinstance(e, OrderFilled)]
    assert fills
    for fill in fills:
        cid = fill.fill.client_order_id
        intent = next(
            i
            for i, e in enumerate(events)
            if isinstance(e, OrderIntended) and e.request.client_order_id == cid
        )
        sent = next(
            i
            for i, e in enumerate(events)
            if isinstance(e, OrderSubmitted) and e.order.client_order_id == cid
        )
        assert intent < sent < events.index(fill)  # journaled before it was sent
    assert "session_stopped" in [e.kind for e in events]


async def test_m_switches_to_a_live_account_only_with_the_typed_word(
    make_sandbox: Callable[..., SandboxThread], tmp_path: Path
) -> None:
    paper = make_sandbox(bar_interval=0)
    live = make_sandbox(
        bar_interval=0, seed=8, live=True, keys={LIVE_KEY: SandboxKey(LIVE_SECRET, False)}
    )
    accounts = accounts_for(paper, live)
    app = console(accounts, strategy(trades=False), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app._session is not None, "the paper session")
        engine = app._session.engine if app._session is not None else None
        assert engine is not None
        await until(pilot, lambda: engine.state.running, "the engine")
        await until(pilot, lambda: accounts.described(Mode.LIVE), "the live account look-up")
        live_account = accounts.describe(Mode.LIVE)
        assert "SANDBOX" in live_account and live.trading_url in live_account
        await pilot.press("m")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, LiveConfirmScreen)
        assert live_account.split()[2] in shown(screen.query_one("#body"))  # the account no.
        await pilot.press(*"live", "enter")
        await pilot.pause()
        assert app.screen is screen  # lower case is not the word: still asking
        await pilot.press("escape")
        await pilot.pause()
        assert engine.mode is Mode.PAPER
        paper_account = engine.state.account
        await pilot.press("m")
        await pilot.pause()
        assert isinstance(app.screen, LiveConfirmScreen)
        await pilot.press(*"LIVE", "enter")
        await until(pilot, lambda: engine.mode is Mode.LIVE, "mode LIVE")
        await until(pilot, lambda: app.drawn_version == engine.state.version, "redraw")
        assert engine.state.endpoint == live.trading_url
        assert engine.state.account == live_account.split()[2] != paper_account
        assert "LIVE · REAL MONEY" in shown(app.query_one("#header"))
        assert app.query_one("#frame").has_class("-live")
        await pilot.press("m")  # back to paper: no ceremony
        await until(pilot, lambda: engine.mode is Mode.PAPER, "mode PAPER")
        assert engine.state.account == paper_account
        await quit_app(pilot, app)
    assert app.return_code == 0
    operator = [e for e in journal_events(tmp_path) if e.kind == "operator"]
    switches = [getattr(e, "detail", "") for e in operator if e.action == "switch_account"]  # type: ignore[attr-defined]
    assert switches == [
        f"PAPER -> LIVE {live_account.split()[2]}",
        f"LIVE -> PAPER {paper_account}",
    ]


async def test_keys_of_the_other_mode_end_the_console_with_one_line(
    make_sandbox: Callable[..., SandboxThread], tmp_path: Path
) -> None:
    sandbox = make_sandbox(bar_interval=0, keys={KEY: SandboxKey(SECRET, paper=False)})
    app = console(accounts_for(sandbox), strategy(trades=False), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: not app.is_running, "the app to give up")
    assert app.return_code == 2 and app._session is None  # no demo in its place
    message = app.error_message or ""
    assert message.startswith("tapewatch: error: the paper endpoint") and "\n" not in message
    assert "HTTP 401" in message and "live keys" in message and SECRET not in message


async def test_an_unreachable_alpaca_ends_the_console_with_one_line(
    make_sandbox: Callable[..., SandboxThread], tmp_path: Path
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dead = f"http://127.0.0.1:{port}"
    nowhere = Endpoints(Mode.PAPER, dead, dead, f"ws://127.0.0.1:{port}", f"ws://127.0.0.1:{port}")
    accounts = AlpacaAccounts(
        {Mode.PAPER: paper_keys()}, {Mode.PAPER: nowhere, Mode.LIVE: nowhere}, timeout=1.0
    )
    app = console(accounts, strategy(trades=False), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        for _ in range(4):
            if not app.is_running:
                break
            try:
                await until(pilot, lambda: not app.is_running, "the app to give up")
            except AssertionError:
                continue
    assert app.return_code == 2 and app._session is None
    message = app.error_message or ""
    assert f"could not reach Alpaca (paper) at {dead}" in message and "tapewatch demo" in message


async def test_connect_names_refused_keys_and_closes_the_broker(
    make_sandbox: Callable[..., SandboxThread],
) -> None:
    paper = make_sandbox(bar_interval=0)
    live = make_sandbox(bar_interval=0, live=True)  # refuses every key marked paper
    accounts = AlpacaAccounts(
        {Mode.LIVE: Credentials(KEY, SECRET, "live", "keyring")},
        {Mode.PAPER: sandbox_endpoints(paper), Mode.LIVE: sandbox_endpoints(live, Mode.LIVE)},
        timeout=2.0,
        policy=FAST_RETRIES,
    )
    try:
        await accounts.connect(Mode.LIVE)
    except AccountUnavailable as exc:
        assert "HTTP 401" in str(exc) and "paper keys" in str(exc)
    else:
        raise AssertionError("a paper key on the live endpoint was accepted")
    assert "REFUSED" in await accounts.alook_up(Mode.LIVE)
    try:
        await accounts.connect(Mode.PAPER)
    except AccountUnavailable as exc:
        assert "no paper credentials" in str(exc) and "tapewatch login'" in str(exc)
    else:
        raise AssertionError("connected without keys")


def test_environment_keys_serve_paper_and_live_comes_only_from_the_keyring(
    make_sandbox: Callable[..., SandboxThread],
) -> None:
    sandbox = make_sandbox(bar_interval=0)
    env = {**sandbox_env(sandbox), "APCA_API_KEY_ID": KEY, "APCA_API_SECRET_KEY": SECRET}
    asked: list[tuple[Mode, bool]] = []

    def load(mode: Mode, source: Any) -> Credentials | None:
        asked.append((mode, "APCA_API_KEY_ID" in source))
        if "APCA_API_KEY_ID" in source:
            return load_credentials(mode, env=source)  # the environment: no keyring touched
        raise KeyringUnavailable("no usable keyring: test")

    accounts = load_accounts(env=env, load=load)
    assert asked == [(Mode.PAPER, True), (Mode.LIVE, False)]
    assert accounts.paper_available() and not accounts.live_available()
    assert accounts.endpoints(Mode.PAPER).trading == sandbox.trading_url
    assert accounts.describe(Mode.LIVE) == "no live credentials stored (no usable keyring: test)"
    described = accounts.look_up(Mode.PAPER)  # blocking look-up through the real SDK
    assert described.startswith("PAPER account SANDBOX") and sandbox.trading_url in described


# -- plain `tapewatch`: which session launch picks -------------------------------------------


@pytest.fixture
def launched(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[TapewatchApp]:
    """``launch_console`` with a terminal, a private config/data dir and ``App.run`` recorded."""
    from tapewatch.console import launch

    apps: list[TapewatchApp] = []
    monkeypatch.setattr(launch, "has_terminal", lambda: True)
    monkeypatch.setattr(launch, "_file_logging", lambda data: None)
    monkeypatch.setattr(TapewatchApp, "run", lambda self, *a, **k: apps.append(self))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("TAPEWATCH_DATA_DIR", str(tmp_path / "data"))
    for name in ("APCA_API_KEY_ID", "APCA_API_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    return apps


def _no_keyring(mode: Mode, env: Any) -> Credentials | None:
    if "APCA_API_KEY_ID" in env or "APCA_API_SECRET_KEY" in env:
        return load_credentials(mode, env=env)
    return None  # an empty keyring; the real one is never touched


def test_paper_keys_make_launch_build_the_paper_session(
    launched: list[TapewatchApp], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tapewatch.console import launch

    monkeypatch.setattr("tapewatch.engine.root.alpaca_accounts._load", _no_keyring)
    monkeypatch.setenv("APCA_API_KEY_ID", KEY)
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)
    monkeypatch.setenv("TAPEWATCH_ALPACA_TRADING_URL", "http://127.0.0.1:9")
    assert launch.launch_console(argparse.Namespace(), demo=False, config=None) == 0
    app = launched[-1]
    factory = app._factory
    assert isinstance(factory, LiveSessionFactory) and factory._call is not None  # bound
    assert isinstance(app._accounts, AlpacaAccounts) and factory.mode is Mode.PAPER
    notice = app._startup_notice or ""
    assert "paper account at http://127.0.0.1:9" in notice and "APCA_API_KEY_ID" in notice
    assert SECRET not in notice


def test_without_keys_launch_opens_the_demo_and_says_so(
    launched: list[TapewatchApp], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tapewatch.console import launch

    monkeypatch.setattr("tapewatch.engine.root.alpaca_accounts._load", _no_keyring)
    assert launch.launch_console(argparse.Namespace(), demo=False, config=None) == 0
    app = launched[-1]
    assert not isinstance(app._factory, LiveSessionFactory)
    assert app._startup_notice == "No Alpaca credentials stored: running the offline demo"


def test_half_a_key_pair_stops_launch_with_one_line(
    launched: list[TapewatchApp],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tapewatch.console import launch

    monkeypatch.setattr("tapewatch.engine.root.alpaca_accounts._load", _no_keyring)
    monkeypatch.setenv("APCA_API_KEY_ID", KEY)
    assert launch.launch_console(argparse.Namespace(), demo=False, config=None) == 2
    err = capsys.readouterr().err
    assert err.startswith("tapewatch: error: APCA_API_KEY_ID is set but APCA_API_SECRET_KEY")
    assert err.count("\n") == 1 and launched == []
