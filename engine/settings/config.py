"""Validated settings for the strategy, execution costs and risk limits.

Every check raises ``ConfigError`` about one field (engine.settings.errors): the ranges are
those of engine.settings.fields, and the error is rendered for the flag or the file key the
value came from. The CLI prints that line and exits 2.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from tapewatch.engine.model.types import Timeframe
from tapewatch.engine.settings.durations import parse_duration
from tapewatch.engine.settings.errors import ConfigError
from tapewatch.engine.settings.fields import BY_NAME, SHOWN_CHARS, clip

MAX_PERIOD = 10_000  # bars of look-back; more is a typo, and numpy would try to allocate it
MAX_CASH = 1e12
MAX_SYMBOL = 15  # Alpaca's longest tickers (crypto pairs such as BTC/USD) are well inside this

__all__ = ["SHOWN_CHARS", "ConfigError", "clip"]


def _check(section: object, table: str, attr: str) -> None:
    """``section.attr`` against its field's range (engine.settings.fields); the default is the
    example a message offers."""
    BY_NAME[f"{table}.{attr}"].check(getattr(section, attr), getattr(type(section)(), attr))


@dataclass(frozen=True, slots=True)
class StrategyConfig:
    symbol: str = "SPY"
    timeframe: str = "5Min"
    rsi_period: int = 14
    sma_period: int = 50
    rsi_oversold: float = 30.0
    rsi_overbought: float = 70.0
    rsi_method: str = "sma"  # "sma" (mean gain / mean loss) or "wilder"
    position_pct: float = 0.02

    @property
    def tf(self) -> Timeframe:
        return Timeframe.parse(self.timeframe)

    @property
    def warmup_bars(self) -> int:
        """Closed bars needed before both indicators have a value."""
        return max(self.sma_period, self.rsi_period + 1)

    def validate(self) -> StrategyConfig:
        symbol = self.symbol.strip().upper()
        if (
            not symbol
            or len(symbol) > MAX_SYMBOL
            or not all(c.isascii() and (c.isalnum() or c in ".-/") for c in symbol)
        ):
            raise ConfigError(
                f"{clip(self.symbol)!r} is not a valid symbol; use a ticker such as SPY",
                field="strategy.symbol",
            )
        try:
            if len(self.timeframe) > 12:
                raise ValueError(self.timeframe)
            Timeframe.parse(self.timeframe)
        except ValueError:
            raise ConfigError(
                f"{clip(self.timeframe)!r} is not understood; use e.g. 1Min, 5Min, 15Min, "
                "1Hour or 1Day (minutes 1-59, hours 1-23, 1Day)",
                field="strategy.timeframe",
            ) from None
        for name in ("rsi_period", "sma_period", "rsi_oversold", "rsi_overbought"):
            _check(self, "strategy", name)
        if self.rsi_oversold >= self.rsi_overbought:
            raise ConfigError(
                f"({self.rsi_oversold:g}) must be below {{0}} ({self.rsi_overbought:g}); "
                "e.g. 30 and 70",
                field="strategy.rsi_oversold",
                related=("strategy.rsi_overbought",),
            )
        if self.rsi_method not in ("sma", "wilder"):
            raise ConfigError(
                f"must be 'sma' or 'wilder' (got {clip(self.rsi_method)!r})",
                field="strategy.rsi_method",
                example="sma",
            )
        _check(self, "strategy", "position_pct")
        return replace(self, symbol=symbol)


@dataclass(frozen=True, slots=True)
class ExecutionConfig:
    """Simulated costs: slippage in basis points against the fill, commissions in dollars."""

    slippage_bps: float = 0.0
    commission_per_order: float = 0.0
    commission_per_share: float = 0.0

    def validate(self) -> ExecutionConfig:
        for name in ("slippage_bps", "commission_per_order", "commission_per_share"):
            _check(self, "execution", name)
        return self


DRAWDOWN_ACTIONS = ("reduce", "halt", "flatten")
"""What a drawdown trip does: stop entries (exits still go), stop everything, or also close."""


@dataclass(frozen=True, slots=True)
class RiskConfig:
    max_drawdown: float = 0.05
    stale_bars: float = 2.0
    rate_limit_per_minute: int = 200
    late_bar_seconds: float = 60.0  # a bar closed longer ago than this decides nothing
    entry_timeout_seconds: float = 120.0  # an entry still unfilled this long is cancelled
    order_deadline_seconds: float = 20.0  # a submit or look-up gives up (outcome unknown) after
    drawdown_action: str = "reduce"  # on a drawdown trip: "reduce" | "halt" | "flatten"
    unattended_pause_after: str = "15m"  # paper/live: no console this long pauses entries; "off"

    @property
    def unattended_seconds(self) -> float | None:
        """``unattended_pause_after`` in seconds; None when "off"."""
        return parse_duration(self.unattended_pause_after)

    def validate(self) -> RiskConfig:
        for name in (
            "max_drawdown",
            "stale_bars",
            "rate_limit_per_minute",
            "late_bar_seconds",
            "entry_timeout_seconds",
            "order_deadline_seconds",
        ):
            _check(self, "risk", name)
        try:
            parse_duration(self.unattended_pause_after)
        except ValueError:
            raise ConfigError(
                f"must be a duration such as 15m, 90s or 1h, or off "
                f"(got {clip(self.unattended_pause_after)!r})",
                field="risk.unattended_pause_after",
                example="15m",
            ) from None
        if self.drawdown_action not in DRAWDOWN_ACTIONS:
            raise ConfigError(
                f"must be one of {', '.join(repr(a) for a in DRAWDOWN_ACTIONS)} "
                f"(got {clip(self.drawdown_action)!r}): reduce stops entries but lets exits "
                "through, halt stops every strategy order, flatten also closes the position",
                field="risk.drawdown_action",
                example="reduce",
            )
        return self


CONFIRM_MODES = ("off", "entries", "all")
"""Which strategy orders wait for the operator: none, entries only, entries and exits."""


@dataclass(frozen=True, slots=True)
class ConfirmConfig:
    """Confirm mode ([console] in the file): the engine holds the orders it covers until the
    operator answers or ``timeout_seconds`` pass (an entry is then skipped, an exit sent)."""

    orders: str = "off"  # "off" | "entries" | "all"
    timeout_seconds: float = 30.0

    def validate(self) -> ConfirmConfig:
        if self.orders not in CONFIRM_MODES:
            raise ConfigError(
                f"must be one of {', '.join(repr(m) for m in CONFIRM_MODES)} "
                f"(got {clip(self.orders)!r}): entries holds each new entry for a y or n, "
                "all holds exits too",
                field="console.confirm_orders",
                example="off",
            )
        BY_NAME["console.confirm_timeout_seconds"].check(
            self.timeout_seconds, ConfirmConfig().timeout_seconds
        )
        return self


@dataclass(frozen=True, slots=True)
class EngineConfig:
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    risk: RiskConfig = field(default_factory=RiskConfig)
    starting_cash: float = 100_000.0
    strategy_name: str = "rsisma"
    confirm: ConfirmConfig = field(default_factory=ConfirmConfig)

    def validate(self) -> EngineConfig:
        BY_NAME["account.starting_cash"].check(self.starting_cash, EngineConfig().starting_cash)
        return replace(
            self,
            strategy=self.strategy.validate(),
            execution=self.execution.validate(),
            risk=self.risk.validate(),
            confirm=self.confirm.validate(),
        )


def data_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """Where the journal lives: ``--data-dir``, else $TAPEWATCH_DATA_DIR, else XDG data home."""
    if override:
        return Path(override).expanduser()
    env = os.environ.get("TAPEWATCH_DATA_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "tapewatch"


def config_dir() -> Path:
    xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(xdg) / "tapewatch"
