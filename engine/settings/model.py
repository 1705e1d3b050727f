"""The one settings object every session is built from, and how it is put together.

Precedence, lowest first: built-in defaults < the config file < the environment (Alpaca
endpoints only) < the flags the user typed. ``load_settings`` reads the file once and lays the
flags over it; a ``ConfigError`` names the flag or the file key (and its line) it is about.
The CLI and the console hand the result to the composition root (``engine.root.Root``).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

from tapewatch.engine.adapters.alpaca.endpoints import Endpoints
from tapewatch.engine.model.types import Mode
from tapewatch.engine.settings.config import ConfirmConfig, EngineConfig, clip
from tapewatch.engine.settings.config import data_dir as default_data_dir
from tapewatch.engine.settings.config_file import (
    AlpacaSettings,
    FileConfig,
    MetricsSettings,
    load_config_file,
)
from tapewatch.engine.settings.errors import ConfigError
from tapewatch.engine.settings.fields import DEFAULT_HANGUP, ENGINE_FIELDS

DEFAULT_SEED = 7
DEFAULT_SPEED = 60.0


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a session needs to be built, checked, with every source applied."""

    engine: EngineConfig = field(default_factory=lambda: EngineConfig().validate())
    alpaca: AlpacaSettings = field(default_factory=AlpacaSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    data_dir: Path | None = None  # None: nothing is written (tests, screenshots)
    seed: int = DEFAULT_SEED  # the synthetic market's (demo)
    speed: float = DEFAULT_SPEED  # the demo's replay pace, × real time
    theme: str | None = None
    on_hangup: str = DEFAULT_HANGUP  # [console] on_hangup: what a terminal's hang-up does
    keys: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))
    config_path: Path | None = None  # the file read, if any

    def endpoints(self, mode: Mode) -> Endpoints:
        """Where a paper or live session connects, and with which data feed."""
        return self.alpaca.endpoints(mode)

    @property
    def confirm(self) -> ConfirmConfig:
        """Confirm mode ([console] confirm_orders, confirm_timeout_seconds): the engine holds
        the strategy orders it covers, so it travels with the engine settings."""
        return self.engine.confirm

    def with_engine(self, engine: EngineConfig) -> Settings:
        return replace(self, engine=engine)


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


def check_metrics(metrics: MetricsSettings, *, host_from_file: Path | None = None) -> str | None:
    """Metrics carry positions, orders and P&L: off loopback only with ``allow_remote``.

    Returns the warning to print when they will be reachable from the network; raises
    ``ConfigError`` for a port out of range or a remote host without the explicit flag.
    """
    port, host = metrics.port, metrics.host
    if port is None:
        return None
    if not 0 <= port <= 65535:
        raise ConfigError(f"--metrics-port must be 0-65535 (got {port}); e.g. 9464, or 0 for any")
    if _is_loopback(host):
        return None
    shown = clip(host)
    named = f"[metrics] host in {host_from_file}" if host_from_file else "--metrics-host"
    if not metrics.allow_remote:
        raise ConfigError(
            f"{'metrics host' if host_from_file else '--metrics-host'} {shown} is not a loopback "
            "address: anyone who can reach it would see positions, orders and P&L; add "
            f"--metrics-allow-remote to mean it, or drop {named}"
        )
    return (
        f"warning: metrics will be served on {shown}, reachable from the network "
        "(--metrics-allow-remote): they show positions, orders and P&L"
    )


def engine_overrides(flags: Mapping[str, object]) -> dict[str, object]:
    """The engine settings among ``flags`` (argparse destinations), None meaning not given."""
    return {f.dest: flags.get(f.dest) for f in ENGINE_FIELDS}


def load_settings(
    *,
    config: Path | str | None = None,
    flags: Mapping[str, object] | None = None,
    env: Mapping[str, str] = os.environ,
    file: FileConfig | None = None,
) -> Settings:
    """Defaults < the config file (``config``, else $TAPEWATCH_CONFIG, else XDG) < the
    environment < ``flags`` (argparse destinations -> value; None: not given).

    Flags known here: the strategy flags (engine.settings.fields), ``metrics_port``,
    ``metrics_host``, ``metrics_allow_remote``, ``data_dir``, ``seed``, ``speed``, ``theme``.
    """
    flags = dict(flags or {})
    loaded = file if file is not None else load_config_file(config, env=env)
    engine = loaded.engine_config(engine_overrides(flags))
    port = flags.get("metrics_port")
    host = flags.get("metrics_host")
    metrics = MetricsSettings(
        port=int(port) if isinstance(port, int) else loaded.metrics.port,
        host=str(host) if host else loaded.metrics.host,
        allow_remote=bool(flags.get("metrics_allow_remote")),
    )
    from_file = loaded.path if not host and "metrics.host" in loaded.values else None
    check_metrics(metrics, host_from_file=from_file)  # before any session starts
    data = flags.get("data_dir")
    seed = flags.get("seed")
    speed = flags.get("speed")
    theme = flags.get("theme")
    return Settings(
        engine=engine,
        alpaca=loaded.alpaca,
        metrics=metrics,
        data_dir=default_data_dir(data if isinstance(data, str | Path) else None),
        seed=int(seed) if isinstance(seed, int) else DEFAULT_SEED,
        speed=float(speed) if isinstance(speed, int | float) else DEFAULT_SPEED,
        theme=str(theme) if theme else loaded.theme,
        on_hangup=loaded.on_hangup,
        keys=loaded.keys,
        config_path=loaded.path,
    )
