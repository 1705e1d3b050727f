"""Validated settings for the strategy, execution costs and risk limits.

Every check raises ``ConfigError`` with one line that names the problem and the fix; the CLI
prints that line and exits 2.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from engine.models import Timeframe


class ConfigError(ValueError):
    """A setting a user gave is wrong; the message says which and how to fix it."""


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
        if not symbol or not all(c.isalnum() or c in ".-/" for c in symbol):
            raise ConfigError(f"symbol {self.symbol!r} is not valid; use a ticker such as SPY")
        try:
            Timeframe.parse(self.timeframe)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        for name in ("rsi_period", "sma_period"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 2:
                flag = name.replace("_", "-")
                raise ConfigError(f"--{flag} must be a whole number of at least 2 (got {value})")
        if not 0 < self.rsi_oversold < 100 or not 0 < self.rsi_overbought < 100:
            raise ConfigError("RSI thresholds must lie between 0 and 100 (e.g. 30 and 70)")
        if self.rsi_oversold >= self.rsi_overbought:
            raise ConfigError(
                f"--rsi-oversold ({self.rsi_oversold:g}) must be below --rsi-overbought "
                f"({self.rsi_overbought:g}); e.g. 30 and 70"
            )
        if self.rsi_method not in ("sma", "wilder"):
            raise ConfigError(f"--rsi-method must be 'sma' or 'wilder' (got {self.rsi_method!r})")
        if not 0 < self.position_pct <= 1:
            raise ConfigError(
                "--position-pct must be in (0, 1], a fraction of equity "
                f"(got {self.position_pct:g}); e.g. 0.02 for 2%"
            )
        return replace(self, symbol=symbol)


@dataclass(frozen=True, slots=True)
class ExecutionConfig:
    """Simulated costs: slippage in basis points against the fill, commissions in dollars."""

    slippage_bps: float = 0.0
    commission_per_order: float = 0.0
    commission_per_share: float = 0.0

    def validate(self) -> ExecutionConfig:
        if not 0 <= self.slippage_bps < 10_000:
            raise ConfigError(
                f"--slippage-bps must be between 0 and 10000 (got {self.slippage_bps:g})"
            )
        if self.commission_per_order < 0 or self.commission_per_share < 0:
            raise ConfigError("commissions cannot be negative; use 0 for none")
        return self


@dataclass(frozen=True, slots=True)
class RiskConfig:
    max_drawdown: float = 0.05
    stale_bars: float = 2.0
    rate_limit_per_minute: int = 200
    late_bar_seconds: float = 60.0  # a bar closed longer ago than this decides nothing
    entry_timeout_seconds: float = 120.0  # an entry still unfilled this long is cancelled
    order_deadline_seconds: float = 20.0  # a submit or look-up gives up (outcome unknown) after

    def validate(self) -> RiskConfig:
        if not 0 < self.max_drawdown < 1:
            raise ConfigError(
                f"--max-drawdown must be in (0, 1), a fraction of the day's starting equity "
                f"(got {self.max_drawdown:g}); e.g. 0.05 for 5%"
            )
        if self.stale_bars <= 0:
            raise ConfigError("stale_bars must be positive (bar intervals without data)")
        if self.rate_limit_per_minute < 1:
            raise ConfigError("rate_limit_per_minute must be at least 1")
        for name in ("late_bar_seconds", "entry_timeout_seconds", "order_deadline_seconds"):
            value = getattr(self, name)
            if not 0 < value <= 86_400:
                raise ConfigError(f"{name} must be between 0 and 86400 seconds (got {value:g})")
        return self


@dataclass(frozen=True, slots=True)
class EngineConfig:
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    risk: RiskConfig = field(default_factory=RiskConfig)
    starting_cash: float = 100_000.0
    strategy_name: str = "rsisma"

    def validate(self) -> EngineConfig:
        if not self.starting_cash > 0:
            raise ConfigError(f"--cash must be positive (got {self.starting_cash:g})")
        return replace(
            self,
            strategy=self.strategy.validate(),
            execution=self.execution.validate(),
            risk=self.risk.validate(),
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
