"""The user's config file (``config.toml``): read, checked, and layered over the defaults.

Where it is: ``--config PATH``, else ``$TAPEWATCH_CONFIG``, else
``$XDG_CONFIG_HOME/tapewatch/config.toml``. A missing file at the default place means "all
defaults"; a file the user named explicitly must exist. The file is only ever read.

Precedence, lowest first: built-in defaults < the file < the environment (Alpaca endpoints
only: ``TAPEWATCH_ALPACA_TRADING_URL``, ``_DATA_URL``, ``_STREAM_URL``, ``_TRADE_STREAM_URL``)
< command-line flags the user actually typed (``FileConfig.engine_config(overrides)``).

Tables and keys::

    [strategy]  symbol, timeframe, rsi_period, sma_period, rsi_oversold, rsi_overbought,
                rsi_method, position_pct
    [execution] slippage_bps, commission_per_order, commission_per_share
    [risk]      max_drawdown, stale_bars, rate_limit_per_minute, late_bar_seconds,
                entry_timeout_seconds, order_deadline_seconds, drawdown_action,
                unattended_pause_after
    [account]   starting_cash
    [alpaca]    trading_url, data_url, stream_url, trade_stream_url, feed ("iex" or "sip")
    [metrics]   port, host
    [console]   theme, confirm_orders ("off", "entries" or "all"), confirm_timeout_seconds,
                on_hangup ("keep-running", "pause" or "stop")
    [sweep]     scheduler (a Dask address for tapewatch sweep, e.g. "tcp://host:8786")
    [keys]      console key remapping (checked by console.keymap, kept here as given)

Every mistake is a ``ConfigError`` with one line naming the file, the ``table.key`` (and the
line when it can be found) and the fix, so the CLI can print it and exit 2. Range rules are
the ``validate()`` rules of engine.config: one source of truth for the file and the flags.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from tapewatch.engine.settings.config import (
    ConfirmConfig,
    EngineConfig,
    ExecutionConfig,
    RiskConfig,
    StrategyConfig,
    clip,
)
from tapewatch.engine.settings.errors import ConfigError, Where
from tapewatch.engine.settings.fields import (
    BY_NAME,
    DEFAULT_HANGUP,
    ENDPOINT_ENV,
    ENGINE_FIELDS,
    ENGINE_TABLES,
    FEEDS,
    FIELDS,
    HANGUP_POLICIES,
)
from tapewatch.engine.settings.render import toml_value as _toml

if TYPE_CHECKING:
    from tapewatch.engine.adapters.alpaca.endpoints import Endpoints
FILE_NAME = "config.toml"
ENV_CONFIG = "TAPEWATCH_CONFIG"
DEFAULT_METRICS_HOST = "127.0.0.1"  # the same loopback default as engine.metrics.DEFAULT_HOST

__all__ = ["ENDPOINT_ENV", "FEEDS", "ConfigError"]

_ENGINE_SECTIONS: dict[str, type[Any]] = {
    "strategy": StrategyConfig,
    "execution": ExecutionConfig,
    "risk": RiskConfig,
}
_HTTP = ("http", "https")
_WS = ("ws", "wss")
_OTHER_EXAMPLES: dict[str, object] = {
    "account.starting_cash": 100000,
    "alpaca.trading_url": "https://paper-api.alpaca.markets",
    "alpaca.data_url": "https://data.alpaca.markets",
    "alpaca.stream_url": "wss://stream.data.alpaca.markets/v2/iex",
    "alpaca.trade_stream_url": "wss://paper-api.alpaca.markets/stream",
    "alpaca.feed": "iex",
    "metrics.port": 9464,
    "metrics.host": DEFAULT_METRICS_HOST,
    "sweep.scheduler": "tcp://127.0.0.1:8786",
    "console.theme": "dark",
    "console.confirm_orders": ConfirmConfig().orders,
    "console.confirm_timeout_seconds": ConfirmConfig().timeout_seconds,
    "console.on_hangup": DEFAULT_HANGUP,
}
_FREE_TABLES = ("keys",)  # checked elsewhere (console.keymap); only "is a table" here

FLAG_ALIASES = {f.dest: f.key for f in ENGINE_FIELDS if f.dest != f.key}
"""argparse destinations whose name differs from the setting they override."""


def example(name: str) -> object:
    """The value a message about ``name`` offers: the default, for the engine's settings."""
    table, key = name.split(".", 1)
    if table in _ENGINE_SECTIONS:
        return getattr(_ENGINE_SECTIONS[table](), key)
    return _OTHER_EXAMPLES[name]


def _got(value: object) -> str:
    """A bad value for a message: a long string is cut (see engine.config.clip)."""
    if isinstance(value, str):
        return repr(clip(value))
    if isinstance(value, float):
        return repr(value)
    return clip(_toml(value))


def _schema() -> dict[str, dict[str, tuple[str, str]]]:
    tables: dict[str, dict[str, tuple[str, str]]] = {}
    for spec in FIELDS:
        tables.setdefault(spec.table, {})[spec.key] = (spec.kind, _toml(example(spec.name)))
    return tables


SCHEMA: dict[str, dict[str, tuple[str, str]]] = _schema()
"""table -> key -> (kind, example as TOML), from tapewatch.engine.settings.fields."""
TABLES: tuple[str, ...] = (*SCHEMA, *_FREE_TABLES)
ENGINE_KEYS: frozenset[str] = frozenset(f.key for f in ENGINE_FIELDS)
"""The names ``FileConfig.engine_config`` accepts as overrides (plus ``FLAG_ALIASES``)."""


# ---------------------------------------------------------------------------- the result


@dataclass(frozen=True, slots=True)
class AlpacaSettings:
    """Endpoint overrides (None: Alpaca's own host for the mode) and the data feed.

    The environment has already been applied: a ``TAPEWATCH_ALPACA_*_URL`` variable wins over
    the file. ``overrides()`` is the mapping engine.alpaca.endpoints.resolve_endpoints takes.
    """

    trading_url: str | None = None
    data_url: str | None = None
    stream_url: str | None = None
    trade_stream_url: str | None = None
    feed: str = "iex"
    sources: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """key -> where its value came from (the file or the variable), for messages and doctor."""

    def overrides(self) -> dict[str, str]:
        return {key: value for key in ENDPOINT_ENV if (value := getattr(self, key)) is not None}

    def endpoints(self, mode: object) -> Endpoints:
        """The URLs and feed a ``mode`` session uses: these overrides over Alpaca's hosts."""
        from tapewatch.engine.adapters.alpaca.endpoints import resolve_endpoints

        return resolve_endpoints(str(mode), env={}, config=self.overrides(), feed=self.feed)


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    """Where metrics are served: ``port`` None means off. ``allow_remote`` is the
    ``--metrics-allow-remote`` flag (a file cannot open metrics to the network on its own)."""

    port: int | None = None  # None: metrics off unless --metrics-port
    host: str = DEFAULT_METRICS_HOST
    allow_remote: bool = False


@dataclass(frozen=True, slots=True)
class FileConfig:
    """Everything the config file says, checked, over the defaults."""

    path: Path | None  # the file read; None when the default file does not exist
    engine: EngineConfig = field(default_factory=lambda: EngineConfig().validate())
    alpaca: AlpacaSettings = field(default_factory=AlpacaSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    theme: str | None = None
    on_hangup: str = DEFAULT_HANGUP  # [console] on_hangup: keep-running, pause or stop
    sweep_scheduler: str | None = None  # [sweep] scheduler: where tapewatch sweep runs
    keys: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))
    values: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))
    """``table.key`` -> value for every setting the file gave (after type checks)."""

    def engine_config(self, overrides: Mapping[str, object] | None = None) -> EngineConfig:
        """The engine settings with the flags the user gave (name -> value) over the file.

        Names are EngineConfig field names (``rsi_period``, ``starting_cash``…) or the CLI's
        argparse destinations in ``FLAG_ALIASES``; a None value means "flag not given".
        """
        given: dict[str, object] = {}
        for name, value in (overrides or {}).items():
            key = FLAG_ALIASES.get(name, name)
            if key not in ENGINE_KEYS:
                raise TypeError(f"{name!r} is not an engine setting; use one of {_names()}")
            if value is not None:
                given[key] = value
        if not given:
            return self.engine
        try:
            return _with(self.engine, given).validate()
        except ConfigError as exc:
            raise self._explain(exc, given) from None

    def _explain(self, exc: ConfigError, given: Mapping[str, object]) -> ConfigError:
        """A flag's error: the settings it names that came from the file are listed with it."""
        notes = [
            f"{name} = {_toml(self.values[name])}"
            for name in exc.fields
            if name in self.values and BY_NAME[name].key not in given
        ]
        if exc.field is not None and _key(exc.field) not in given and not notes:
            notes = [f"{exc.field} = {_toml(self.values.get(exc.field))}"]  # pragma: no cover
        return exc.at(Where("flag", self.path, notes=tuple(notes))) if notes else exc


def _key(name: str) -> str:
    return name.split(".", 1)[1]


def _names() -> str:
    return ", ".join(sorted(ENGINE_KEYS | FLAG_ALIASES.keys()))


def _with(config: EngineConfig, flat: Mapping[str, object]) -> EngineConfig:
    """``config`` with flat setting names replaced in whichever section holds them."""
    sections: dict[str, Any] = {}
    for table in ENGINE_TABLES:
        part = {k: v for k, v in flat.items() if k in SCHEMA[table]}
        if part:
            sections[table] = replace(getattr(config, table), **part)
    if "starting_cash" in flat:
        sections["starting_cash"] = flat["starting_cash"]
    return replace(config, **sections)


# ---------------------------------------------------------------------------- locating


def config_path(path: Path | str | None = None, *, env: Mapping[str, str] = os.environ) -> Path:
    """The file to read: ``path`` (``--config``), else $TAPEWATCH_CONFIG, else the XDG one."""
    if path is not None and str(path).strip():
        return Path(path).expanduser()
    named = env.get(ENV_CONFIG, "").strip()
    if named:
        return Path(named).expanduser()
    xdg = env.get("XDG_CONFIG_HOME", "").strip() or str(Path.home() / ".config")
    return Path(xdg) / "tapewatch" / FILE_NAME


def _explicit(path: Path | str | None, env: Mapping[str, str]) -> str | None:
    """How the user named the file (for the 'does not exist' message), or None for default."""
    if path is not None and str(path).strip():
        return "--config"
    if env.get(ENV_CONFIG, "").strip():
        return f"${ENV_CONFIG}"
    return None


# ---------------------------------------------------------------------------- loading


def load_config_file(
    path: Path | str | None = None, *, env: Mapping[str, str] = os.environ
) -> FileConfig:
    """Read and check the config file (see the module docstring for where and what)."""
    where = config_path(path, env=env)
    named_by = _explicit(path, env)
    try:
        raw = where.read_bytes()
    except FileNotFoundError:
        if named_by is None:
            return FileConfig(path=None, alpaca=_alpaca({}, None, env))
        raise ConfigError(
            f"config file {where} (from {named_by}) does not exist; "
            f"check the path, or drop {named_by} to use {config_path(env=_no_named(env))}"
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"config file {where} is a folder; name the .toml file in it") from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError(
            f"cannot read config file {where} ({reason}); make it readable by this user"
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config file {where} is not UTF-8 text (byte {exc.start}); save it as UTF-8"
        ) from None
    return _parse(text, where, env)


def _no_named(env: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k != ENV_CONFIG}


_AT_LINE = re.compile(r"\(at line (\d+), column (\d+)\)")


def _parse(text: str, path: Path, env: Mapping[str, str]) -> FileConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        detail = str(exc)
        match = _AT_LINE.search(detail)
        shown = f"{path}:{match.group(1)}" if match else str(path)
        raise ConfigError(
            f"config file {shown} is not valid TOML: {detail}; fix that line "
            '(strings need quotes, e.g. symbol = "SPY")'
        ) from None
    checker = _Checker(path, text)
    values = checker.check(data)
    engine = checker.engine(values)
    get = values.get
    port = get("metrics.port")
    host = get("metrics.host")
    theme = get("console.theme")
    on_hangup = get("console.on_hangup", DEFAULT_HANGUP)
    if on_hangup not in HANGUP_POLICIES:
        raise checker.bad(
            "console",
            "on_hangup",
            f"must be one of {', '.join(repr(p) for p in HANGUP_POLICIES)} (got {_got(on_hangup)}):"
            " keep-running trades on and serves tapewatch attach, pause also pauses new entries,"
            " stop stops the engine",
        )
    keys = data.get("keys", {})
    return FileConfig(
        path=path,
        engine=engine,
        alpaca=_alpaca(values, path, env),
        metrics=MetricsSettings(
            port=port if isinstance(port, int) else None,
            host=host if isinstance(host, str) else DEFAULT_METRICS_HOST,
        ),
        theme=theme if isinstance(theme, str) else None,
        on_hangup=str(on_hangup),
        sweep_scheduler=_text(get("sweep.scheduler")),
        keys=MappingProxyType(dict(keys)),
        values=MappingProxyType(values),
    )


def _text(value: object) -> str | None:
    return value.strip() if isinstance(value, str) else None


def _alpaca(
    values: Mapping[str, object], path: Path | None, env: Mapping[str, str]
) -> AlpacaSettings:
    chosen: dict[str, str] = {}
    sources: dict[str, str] = {}
    for key, var in ENDPOINT_ENV.items():
        from_env = env.get(var, "").strip()
        if from_env:
            schemes = _WS if SCHEMA["alpaca"][key][0] == "ws" else _HTTP
            if not _url_ok(from_env, schemes):
                raise ConfigError(
                    "is not a URL starting with "
                    f"{' or '.join(s + '://' for s in schemes)} (got {clip(from_env)!r})",
                    field=f"alpaca.{key}",
                    example=example(f"alpaca.{key}"),
                    where=Where("env"),
                )
            chosen[key] = from_env.rstrip("/")
            sources[key] = var
        elif f"alpaca.{key}" in values:
            chosen[key] = str(values[f"alpaca.{key}"]).rstrip("/")
            sources[key] = f"{path} [alpaca] {key}"
    feed = values.get("alpaca.feed", "iex")
    return AlpacaSettings(**chosen, feed=str(feed), sources=MappingProxyType(sources))


def _url_ok(url: str, schemes: tuple[str, ...]) -> bool:
    if url != url.strip() or any(c.isspace() for c in url):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in schemes and bool(parts.netloc) and bool(parts.hostname)


class _Checker:
    """Walks the parsed file and turns the first problem into one line for the user."""

    _HEADER = re.compile(r"^\s*\[\s*([A-Za-z0-9_.\-\"' ]+?)\s*\]\s*(#.*)?$")

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()

    # -- messages -------------------------------------------------------------------------

    def _line(self, table: str, key: str | None) -> int | None:
        """Best effort: the line defining ``table`` (or ``key`` in it); None if not found."""
        current = ""
        key_re = None if key is None else re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=")
        dotted = (
            None
            if key is None
            else re.compile(rf"^\s*{re.escape(table)}\s*\.\s*{re.escape(key)}\s*=")
        )
        for number, line in enumerate(self.lines, start=1):
            header = self._HEADER.match(line)
            if header:
                current = header.group(1).strip().strip("\"'")
                if key is None and current == table:
                    return number
                continue
            if key is None:
                if current == "" and re.match(rf"^\s*{re.escape(table)}\s*[=.]", line):
                    return number
                continue
            if current == table and key_re is not None and key_re.match(line):
                return number
            if current == "" and dotted is not None and dotted.match(line):
                return number
        return None

    def fail(self, table: str, key: str | None, message: str) -> ConfigError:
        """A problem with the file's shape (not one setting's value), at its line."""
        return ConfigError(message, where=Where("file", self.path, self._line(table, key)))

    def bad(self, table: str, key: str, reason: str, *, hint: bool = True) -> ConfigError:
        """A setting's value is wrong: rendered as ``table.key reason; e.g. key = …``."""
        name = f"{table}.{key}"
        return ConfigError(reason, field=name, example=example(name) if hint else None).in_file(
            self.path, self._line(table, key)
        )

    # -- structure and types --------------------------------------------------------------

    def check(self, data: Mapping[str, object]) -> dict[str, object]:
        values: dict[str, object] = {}
        for table, content in data.items():
            if table not in TABLES:
                raise self._unknown_table(table, content)
            if not isinstance(content, dict):
                raise self.fail(
                    table,
                    None,
                    f"{table} must be a table, got {_got(content)}; write [{table}] on its own "
                    "line with its settings below it",
                )
            if table in _FREE_TABLES:
                continue
            spec = SCHEMA[table]
            for key, value in content.items():
                if key not in spec:
                    raise self._unknown_key(table, key)
                values[f"{table}.{key}"] = self._typed(table, key, value, spec[key][0])
        return values

    def _unknown_table(self, name: str, content: object) -> ConfigError:
        if not isinstance(content, dict):  # a bare key above every table
            home = [t for t, keys in SCHEMA.items() if name in keys]
            if home:
                return self.fail(
                    name, None, f"{name} must be inside a table: put it under [{home[0]}]"
                )
            return self.fail(
                name,
                None,
                f"unknown setting {clip(name)!r} outside any table; settings belong in one of "
                f"[{'], ['.join(TABLES)}]",
            )
        close = difflib.get_close_matches(name, TABLES, n=1)
        hint = f"did you mean [{close[0]}]?" if close else "remove it"
        return self.fail(
            name, None, f"unknown table [{clip(name)}]; {hint} (tables: {', '.join(TABLES)})"
        )

    def _unknown_key(self, table: str, key: str) -> ConfigError:
        home = [t for t, keys in SCHEMA.items() if key in keys and t != table]
        if home:
            return self.fail(
                table, key, f"{table}.{key} is not a [{table}] setting: it belongs in [{home[0]}]"
            )
        valid = list(SCHEMA[table])
        close = difflib.get_close_matches(key, valid, n=1)
        hint = f"did you mean {close[0]}?" if close else f"valid keys: {', '.join(valid)}"
        return self.fail(table, key, f"unknown key {table}.{clip(key)}; {hint}")

    def _typed(self, table: str, key: str, value: object, kind: str) -> object:
        bad = self.bad
        if kind in ("int", "port"):
            if isinstance(value, bool) or not isinstance(value, int):
                raise bad(table, key, f"must be a whole number, got {_got(value)}")
            if kind == "port" and not 0 <= value <= 65535:
                raise bad(table, key, f"must be a port number 0-65535, got {value}")
            return value
        if kind == "number":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise bad(table, key, f"must be a number, got {_got(value)}")
            if not math.isfinite(value):
                raise bad(table, key, f"must be a finite number, got {_got(value)}")
            return float(value)
        if not isinstance(value, str):
            raise bad(table, key, f"must be a string in quotes, got {_got(value)}")
        if kind in ("http", "ws"):
            schemes = _HTTP if kind == "http" else _WS
            if not _url_ok(value, schemes):
                raise bad(
                    table,
                    key,
                    f"= {clip(value)!r} is not a URL starting with "
                    f"{' or '.join(s + '://' for s in schemes)}",
                )
            return value
        if kind == "feed":
            feed = value.strip().lower()
            if feed not in FEEDS:
                raise bad(
                    table,
                    key,
                    f'must be "iex" or "sip", got {clip(value)!r}; e.g. feed = "iex" (free plan)',
                    hint=False,
                )
            return feed
        if not value.strip() or (kind == "host" and any(c.isspace() for c in value)):
            raise bad(table, key, f"must not be empty, got {clip(value)!r}")
        return value

    # -- ranges (engine.config's validate rules) ----------------------------------------

    def engine(self, values: Mapping[str, object]) -> EngineConfig:
        """File values over the defaults, checked by engine.config's ``validate()``; its error
        names the field, so it is rendered with the file's spelling and that key's line."""
        flat = {_key(k): v for k, v in values.items() if _is_engine(k)}
        confirm = ConfirmConfig(
            orders=str(values.get("console.confirm_orders", ConfirmConfig().orders)),
            timeout_seconds=float(
                values.get("console.confirm_timeout_seconds", ConfirmConfig().timeout_seconds)  # type: ignore[arg-type]
            ),
        )
        try:
            return replace(_with(EngineConfig(), flat), confirm=confirm).validate()
        except ConfigError as exc:
            name = exc.field or ""
            line = self._line(*name.split(".", 1)) if "." in name else None
            raise exc.in_file(self.path, line) from None


def _is_engine(full: str) -> bool:
    table = full.split(".", 1)[0]
    return table in _ENGINE_SECTIONS or full == "account.starting_cash"
