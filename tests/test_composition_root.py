"""The composition root: every session kind built from one Settings, the config file's
[alpaca] endpoints and feed and [metrics] honoured by every surface, and nothing outside
``engine/root/`` constructing an engine, a broker or a journal."""

from __future__ import annotations

import ast
import os
import signal
import sys
import urllib.request
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from tapewatch.engine.api.sessions import Root
from tapewatch.engine.api.settings import Settings, load_settings
from tapewatch.engine.model.types import Mode
from tapewatch.engine.settings.credentials import Credentials
from tapewatch.sandbox import SandboxThread
from tests.alpaca.adapter_helpers import signal_after_first_fill
from tests.alpaca.conftest import KEY, SECRET
from tests.alpaca.conftest import make_sandbox as make_sandbox

ROOT = Path(__file__).resolve().parents[1]
QUICK = [
    *["--rsi-period", "2", "--sma-period", "3", "--rsi-oversold", "90", "--rsi-overbought", "95"],
    *["--unattended-pause-after", "off"],  # unwatched runs in market time: no dead-man pause
]
NO_ENDPOINT_ENV = {k: v for k, v in os.environ.items() if not k.startswith("TAPEWATCH_ALPACA_")}


def config_file(tmp_path: Path, sandbox: SandboxThread | None, *, feed: str = "iex") -> Path:
    """A config.toml naming the sandbox's endpoints, the feed and metrics on any free port."""
    alpaca = (
        f'[alpaca]\ntrading_url = "{sandbox.trading_url}"\ndata_url = "{sandbox.data_url}"\n'
        f'stream_url = "{sandbox.data_stream_url}"\n'
        f'trade_stream_url = "{sandbox.trade_stream_url}"\nfeed = "{feed}"\n'
        if sandbox is not None
        else ""
    )
    path = tmp_path / "config.toml"
    path.write_text(
        "[strategy]\nrsi_period = 2\nsma_period = 3\nrsi_oversold = 90\nrsi_overbought = 95\n"
        f"[risk]\nlate_bar_seconds = 86400\n{alpaca}[metrics]\nport = 0\n",
        encoding="utf-8",
    )
    return path


def settings_from(path: Path, tmp_path: Path) -> Settings:
    return load_settings(config=path, env={}, flags={"data_dir": str(tmp_path / "data")})


# ---------------------------------------------------------------------------- each kind


async def test_a_backtest_is_built_from_settings(tmp_path: Path) -> None:
    settings = settings_from(config_file(tmp_path, None), tmp_path)
    parts = Root(settings).backtest(datetime(2024, 3, 5, 14, 30, tzinfo=UTC))
    assert parts.engine.mode is Mode.BACKTEST and parts.engine.journal is None
    assert parts.engine.config.strategy.rsi_period == 2  # the file's value
    assert parts.engine.broker is parts.broker and parts.engine.clock is parts.clock


async def test_a_demo_is_built_from_settings_and_its_metrics_follow_the_file(
    tmp_path: Path,
) -> None:
    settings = settings_from(config_file(tmp_path, None), tmp_path)
    assert settings.metrics.port == 0  # [metrics] port, no flag
    root = Root(replace(settings, data_dir=tmp_path / "data"))
    session = root.demo()
    assert session.journal is not None
    try:
        assert session.engine.mode is Mode.DEMO and session.engine.state.speed == 60.0
        assert (tmp_path / "data" / "demo").is_dir()
        observers = root.observe(session.engine, headless=True)
        try:
            assert observers.metrics is not None  # served because the file says so
            with urllib.request.urlopen(observers.metrics.url, timeout=5) as answer:
                assert b"tapewatch_" in answer.read()
        finally:
            observers.close()
    finally:
        session.journal.close()


def test_a_flag_beats_the_files_metrics(tmp_path: Path) -> None:
    path = config_file(tmp_path, None)
    flags = {"metrics_port": 9999, "data_dir": str(tmp_path)}
    assert load_settings(config=path, env={}, flags=flags).metrics.port == 9999


async def test_paper_is_built_at_the_files_endpoints_and_feed(
    make_sandbox: Callable[..., SandboxThread],
    tmp_path: Path,
) -> None:
    sandbox = make_sandbox(bar_interval=0.05, fill_delay=0.01)
    settings = settings_from(config_file(tmp_path, sandbox, feed="sip"), tmp_path)
    assert settings.endpoints(Mode.PAPER).feed == "sip"
    from tapewatch.engine.root.live import LiveOptions

    keys = Credentials(KEY, SECRET, "paper", "environment")
    options = LiveOptions(timeout=2.0, warmup_bars=20)
    session = await Root(settings).live(Mode.PAPER, keys, options=options)
    try:
        assert session.engine.mode is Mode.PAPER
        assert session.endpoints.trading == sandbox.trading_url
        assert session.endpoints.data_stream == sandbox.data_stream_url
        assert session.endpoints.feed == "sip"  # [alpaca] feed reaches the data clients
        assert len(session.feed.warmup()) >= 20  # history read with feed=sip
        assert (tmp_path / "data" / "paper" / "journal.sqlite3").exists()
    finally:
        await session.engine.stop()
        await session.aclose()


def test_run_headless_uses_the_config_files_endpoints_and_metrics(
    make_sandbox: Callable[..., SandboxThread],
    tmp_path: Path,
) -> None:
    """The defect: ``run --headless`` used to ignore [alpaca] (only the environment counted)
    and [metrics]. Here the endpoints exist only in the file."""
    sandbox = make_sandbox(bar_interval=0.05, fill_delay=0.01)
    path = config_file(tmp_path, sandbox)
    env = {
        **NO_ENDPOINT_ENV,
        "APCA_API_KEY_ID": KEY,
        "APCA_API_SECRET_KEY": SECRET,
        "TAPEWATCH_DATA_DIR": str(tmp_path / "data"),
        "XDG_DATA_HOME": str(tmp_path / "xdg"),
        "XDG_CONFIG_HOME": str(tmp_path / "no-config"),
        "PYTHONPATH": str(ROOT),
    }
    env.pop("TAPEWATCH_CONFIG", None)
    argv = [
        sys.executable,
        "-m",
        "tapewatch.console.cli",
        "run",
        "--headless",
        "--config",
        str(path),
    ]
    code, lines, err = signal_after_first_fill(argv, env, ROOT, signal.SIGTERM)
    assert code == 0, err
    assert any(line.startswith("metrics: serving on http://127.0.0.1:") for line in lines), lines
    session = next(line for line in lines if line.startswith("PAPER session:"))
    assert f"at {sandbox.trading_url}," in session
    assert any("session stopped: received SIGTERM" in line for line in lines)


# ---------------------------------------------------------------------------- only the root

BUILT_BY_THE_ROOT = {"Engine", "AlpacaBroker", "SimBroker", "Journal"}


def _constructions(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        if name in BUILT_BY_THE_ROOT:
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}(")
    return found


def test_only_the_root_constructs_engines_brokers_and_journals() -> None:
    outside = []
    for folder in ("engine", "console"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if relative.startswith("engine/root/"):
                continue
            outside += _constructions(path)
    assert outside == []
    inside = [c for p in sorted((ROOT / "engine" / "root").glob("*.py")) for c in _constructions(p)]
    assert {c.split()[-1] for c in inside} == {f"{name}(" for name in BUILT_BY_THE_ROOT}


def test_the_endpoint_variables_are_defined_once() -> None:
    hits = []
    for folder in ("engine", "console"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "sandbox" in path.parts:  # the sandbox prints them for the user to paste
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if '"TAPEWATCH_ALPACA_' in line:
                    hits.append(f"{path.relative_to(ROOT)}:{number}")
    assert len(hits) == 4 and all(h.startswith("engine/settings/fields.py") for h in hits), hits
