"""Every setting a user can give, once: its TOML table and key, CLI flag, environment
variable, type and range.

The config file's schema, the CLI's strategy flags, the range checks in
``engine.settings.config`` and the endpoint variables all read this table, so a setting cannot
be spelt two ways. Defaults live on the dataclasses in ``engine.settings.config`` (the model the
engine consumes); this table only says how each one is named, typed and bounded. It imports
nothing heavy: ``tapewatch --help`` reads it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from tapewatch.engine.settings.errors import ConfigError

Kind = str  # "int", "number", "text", "http", "ws", "feed", "port", "host"

SHOWN_CHARS = 40
"""How much of a bad value a message repeats: a 10 000-character paste is not echoed back."""


def clip(text: object, limit: int = SHOWN_CHARS) -> str:
    """``text`` for a message: at most ``limit`` characters, then "…"; control characters
    escaped so the message stays one line."""
    shown = str(text)
    cut = len(shown) > limit
    shown = shown[:limit]
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in shown)
    return shown + "…" if cut else shown


def _num(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1e6 else f"{value:g}"


@dataclass(frozen=True, slots=True)
class Range:
    """``low``..``high`` (an end excluded when ``*_open``), whole numbers only if ``whole``."""

    low: float
    high: float
    low_open: bool = False
    high_open: bool = False
    whole: bool = False
    unit: str = ""

    def holds(self, value: object) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.whole and not isinstance(value, int):
            return False
        if not math.isfinite(value):
            return False
        above = self.low < value if self.low_open else self.low <= value
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def describe(self) -> str:
        low, high = _num(self.low), _num(self.high)
        if self.whole:
            text = f"a whole number of at least {low} and at most {high}"
        elif self.low_open and self.high_open:
            text = f"between {low} and {high}, both excluded"
        elif self.low_open:
            text = f"above {low} and at most {high}"
        elif self.high_open:
            text = f"between {low} and {high}, {high} excluded"
        else:
            text = f"between {low} and {high}"
        return f"{text} {self.unit}" if self.unit else text


@dataclass(frozen=True, slots=True)
class Field:
    """One setting. ``name`` is ``table.key``; ``dest`` is the argparse destination."""

    name: str
    kind: Kind
    flag: str | None = None
    env: str | None = None
    range: Range | None = None
    note: str = ""  # what the number means, after the range ("a fraction of equity")
    hint: str = ""  # a fix in words ("use 0 for none"); else the default is the example
    help: str = ""
    choices: tuple[str, ...] = ()  # the only values a "text" field takes, when it is a choice

    @property
    def table(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def key(self) -> str:
        return self.name.split(".", 1)[1]

    @property
    def dest(self) -> str:
        return self.flag[2:].replace("-", "_") if self.flag else self.key

    def check(self, value: object, example: object = None) -> None:
        """Raise ``ConfigError`` (about this field) when ``value`` is outside the range."""
        if self.range is None or self.range.holds(value):
            return
        got = clip(value) if not isinstance(value, float) else f"{value:g}"
        note = f", {self.note}" if self.note else ""
        reason = f"must be {self.range.describe()}{note} (got {got})"
        if self.hint:
            raise ConfigError(f"{reason}; {self.hint}", field=self.name)
        raise ConfigError(reason, field=self.name, example=example)


ENV_TRADING_URL = "TAPEWATCH_ALPACA_TRADING_URL"
ENV_DATA_URL = "TAPEWATCH_ALPACA_DATA_URL"
ENV_STREAM_URL = "TAPEWATCH_ALPACA_STREAM_URL"
ENV_TRADE_STREAM_URL = "TAPEWATCH_ALPACA_TRADE_STREAM_URL"

HANGUP_POLICIES = ("keep-running", "pause", "stop")
"""What the embedded console does when its terminal hangs up ([console] on_hangup): trade on
and serve the socket for ``tapewatch attach``; the same with new entries paused; stop."""
DEFAULT_HANGUP = "keep-running"

_PERIOD = Range(2, 10_000, whole=True, unit="bars")
_SECONDS = Range(0, 86_400, low_open=True, unit="seconds")
_RSI = Range(0, 100, low_open=True, high_open=True)

FIELDS: tuple[Field, ...] = (
    Field("strategy.symbol", "text", "--symbol", help="ticker to trade"),
    Field(
        "strategy.timeframe",
        "text",
        "--timeframe",
        help="bar length: 1Min-59Min, 1Hour-23Hour, or 1Day for backtests",
    ),
    Field(
        "strategy.rsi_period",
        "int",
        "--rsi-period",
        range=_PERIOD,
        help="RSI look-back in bars, 2-10000",
    ),
    Field(
        "strategy.sma_period",
        "int",
        "--sma-period",
        range=_PERIOD,
        help="SMA look-back in bars, 2-10000",
    ),
    Field(
        "strategy.rsi_oversold", "number", "--rsi-oversold", range=_RSI, help="buy below this RSI"
    ),
    Field(
        "strategy.rsi_overbought",
        "number",
        "--rsi-overbought",
        range=_RSI,
        help="sell above this RSI",
    ),
    Field(
        "strategy.rsi_method",
        "text",
        "--rsi-method",
        help="RSI averaging",
        choices=("sma", "wilder"),
    ),
    Field(
        "strategy.position_pct",
        "number",
        "--position-pct",
        range=Range(0, 1, low_open=True),
        note="a fraction of equity",
        hint="e.g. 0.02 for 2%",
        help="entry size as a fraction of equity",
    ),
    Field(
        "execution.slippage_bps",
        "number",
        "--slippage-bps",
        range=Range(0, 10_000, high_open=True),
        help="simulated slippage in basis points",
    ),
    Field(
        "execution.commission_per_order",
        "number",
        "--commission",
        range=Range(0, 10_000, unit="dollars per order"),
        hint="use 0 for none",
        help="simulated commission per order in $",
    ),
    Field(
        "execution.commission_per_share",
        "number",
        "--commission-per-share",
        range=Range(0, 100, unit="dollars per share"),
        hint="use 0 for none",
        help="simulated commission per share in $",
    ),
    Field(
        "risk.max_drawdown",
        "number",
        "--max-drawdown",
        range=Range(0, 1, low_open=True, high_open=True),
        note="a fraction of the day's starting equity",
        hint="e.g. 0.05 for 5%",
        help="halt at this drawdown from the day's start",
    ),
    Field(
        "risk.stale_bars",
        "number",
        range=Range(0, 1_000, low_open=True, unit="bar intervals without data"),
    ),
    Field("risk.rate_limit_per_minute", "int", range=Range(1, 100_000, whole=True)),
    Field("risk.late_bar_seconds", "number", range=_SECONDS),
    Field("risk.entry_timeout_seconds", "number", range=_SECONDS),
    Field("risk.order_deadline_seconds", "number", range=_SECONDS),
    Field(
        "risk.unattended_pause_after",
        "text",
        "--unattended-pause-after",
        help="paper/live: no console attached this long pauses entries (15m, 1h, off)",
    ),
    Field(
        "risk.drawdown_action",
        "text",
        "--drawdown-action",
        help="on a drawdown trip: reduce (no entries, exits go), halt, or flatten",
        choices=("reduce", "halt", "flatten"),
    ),
    Field(
        "account.starting_cash",
        "number",
        "--cash",
        range=Range(0, 1e12, low_open=True, unit="dollars"),
        help="starting cash for simulation, up to 1e12",
    ),
    Field("alpaca.trading_url", "http", env=ENV_TRADING_URL),
    Field("alpaca.data_url", "http", env=ENV_DATA_URL),
    Field("alpaca.stream_url", "ws", env=ENV_STREAM_URL),
    Field("alpaca.trade_stream_url", "ws", env=ENV_TRADE_STREAM_URL),
    Field("alpaca.feed", "feed"),
    Field("metrics.port", "port", "--metrics-port", range=Range(0, 65_535, whole=True)),
    Field("metrics.host", "host", "--metrics-host"),
    Field("sweep.scheduler", "text", help="the Dask scheduler sweeps run on (tcp://host:8786)"),
    Field("console.theme", "text", "--theme"),
    Field(
        "console.confirm_orders",
        "text",
        help="strategy orders that wait for the operator's y or n: off, entries or all",
        choices=("off", "entries", "all"),
    ),
    Field(
        "console.on_hangup",
        "text",
        help="when the terminal hangs up (an SSH drop): keep-running, pause (new entries) or stop",
        choices=HANGUP_POLICIES,
    ),
    Field(
        "console.confirm_timeout_seconds",
        "number",
        range=Range(1, 3_600, unit="seconds"),
        help="how long a held order waits: an entry is then skipped, an exit sent",
    ),
)

BY_NAME: Mapping[str, Field] = MappingProxyType({f.name: f for f in FIELDS})
ENGINE_TABLES = ("strategy", "execution", "risk")
ENGINE_FIELDS: tuple[Field, ...] = tuple(
    f for f in FIELDS if f.table in ENGINE_TABLES or f.name == "account.starting_cash"
)
"""The fields ``engine.settings.config.EngineConfig`` holds (the strategy flags)."""

ENDPOINT_ENV: Mapping[str, str] = MappingProxyType(
    {f.key: f.env for f in FIELDS if f.table == "alpaca" and f.env is not None}
)
"""[alpaca] key -> the environment variable that overrides it (the environment wins)."""

FEEDS = ("iex", "sip")
