"""Validated settings for the strategy, execution costs and risk limits.

Every check raises ``ConfigError`` with one line that names the problem and the fix; the CLI
prints that line and exits 2.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from engine.models import Timeframe

SHOWN_CHARS = 40
"""How much of a bad value a message repeats: a 10 000-character paste is not echoed back."""
MAX_PERIOD = 10_000  # bars of look-back; more is a typo, and numpy would try to allocate it
MAX_CASH = 1e12
MAX_SYMBOL = 15  # Alpaca's longest tickers (crypto pairs such as BTC/USD) are well inside this


class ConfigError(ValueError):
    """A setting a user gave is wrong; the message says which and how to fix it."""


def clip(text: object, limit: int = SHOWN_CHARS) -> str:
    """``text`` for a message: at most ``limit`` characters, then "…"; control characters
    escaped so the message stays one line."""
    shown = str(text)
    cut = len(shown) > limit
    shown = shown[:limit]
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in shown)
    return shown + "…" if cut else shown


def _in_range(
    value: float, low: float, high: float, *, low_open: bool = False, high_open: bool = False
) -> bool:
    """``low <= value <= high``, an end excluded when ``*_open``; False for NaN and inf."""
    if not math.isfinite(value):
        return False
    above = low < value if low_open else low <= value
    below = value < high if high_open else value <= high
    return above and below


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
                f"symbol {clip(self.symbol)!r} is not valid; use a ticker such as SPY"
            )
        if len(self.timeframe) > 12:
            raise ConfigError(
                f"timeframe {clip(self.timeframe)!r} is not understood; use e.g. 1Min, 5Min, "
                "15Min or 1Hour"
            )
        try:
            Timeframe.parse(self.timeframe)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        for name in ("rsi_period", "sma_period"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int)
                or not 2 <= value <= MAX_PERIOD
            ):
                flag = name.replace("_", "-")
                raise ConfigError(
                    f"--{flag} must be a whole number of at least 2 and at most {MAX_PERIOD} "
                    f"bars (got {clip(value)})"
                )
        if not all(
            _in_range(t, 0, 100, low_open=True, high_open=True)
            for t in (self.rsi_oversold, self.rsi_overbought)
        ):
            raise ConfigError("RSI thresholds must lie between 0 and 100 (e.g. 30 and 70)")
        if self.rsi_oversold >= self.rsi_overbought:
            raise ConfigError(
                f"--rsi-oversold ({self.rsi_oversold:g}) must be below --rsi-overbought "
                f"({self.rsi_overbought:g}); e.g. 30 and 70"
            )
        if self.rsi_method not in ("sma", "wilder"):
            raise ConfigError(
                f"--rsi-method must be 'sma' or 'wilder' (got {clip(self.rsi_method)!r})"
            )
        if not _in_range(self.position_pct, 0, 1, low_open=True):
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
        if not _in_range(self.slippage_bps, 0, 10_000, high_open=True):
            raise ConfigError(
                f"--slippage-bps must be between 0 and 10000 (got {self.slippage_bps:g})"
            )
        if not _in_range(self.commission_per_order, 0, 10_000):
            raise ConfigError(
                "--commission must be 0 to 10000 dollars per order "
                f"(got {self.commission_per_order:g}); use 0 for none"
            )
        if not _in_range(self.commission_per_share, 0, 100):
            raise ConfigError(
                "--commission-per-share must be 0 to 100 dollars per share "
                f"(got {self.commission_per_share:g}); use 0 for none"
            )
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
        if not _in_range(self.max_drawdown, 0, 1, low_open=True, high_open=True):
            raise ConfigError(
                f"--max-drawdown must be in (0, 1), a fraction of the day's starting equity "
                f"(got {self.max_drawdown:g}); e.g. 0.05 for 5%"
            )
        if not _in_range(self.stale_bars, 0, 1_000, low_open=True):
            raise ConfigError(
                "stale_bars must be above 0 and at most 1000 bar intervals without data "
                f"(got {self.stale_bars:g})"
            )
        rate = self.rate_limit_per_minute
        if isinstance(rate, bool) or not isinstance(rate, int) or not 1 <= rate <= 100_000:
            raise ConfigError(
                f"rate_limit_per_minute must be a whole number from 1 to 100000 (got {clip(rate)})"
            )
        for name in ("late_bar_seconds", "entry_timeout_seconds", "order_deadline_seconds"):
            value = getattr(self, name)
            if not _in_range(value, 0, 86_400, low_open=True):
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
        if not _in_range(self.starting_cash, 0, MAX_CASH, low_open=True):
            raise ConfigError(
                f"--cash must be above 0 and at most {MAX_CASH:,.0f} dollars "
                f"(got {self.starting_cash:g})"
            )
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
