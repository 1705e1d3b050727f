"""Backtest statistics as a pure function of the equity curve and the fills.

Sharpe uses per-bar returns annualised by the number of bars in a trading year (252 sessions of
6.5 hours), so it is comparable across timeframes.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime

import numpy as np

from tapewatch.engine.model.types import Fill, Side

TRADING_DAYS = 252
SESSION_SECONDS = 6.5 * 3600


@dataclass(frozen=True, slots=True)
class Trade:
    """A round trip: entry fills until the position is flat again."""

    entry_time: datetime
    exit_time: datetime
    qty: float
    pnl: float  # net of fees


@dataclass(frozen=True, slots=True)
class Report:
    symbol: str
    timeframe: str
    bars: int
    start: str
    end: str
    start_equity: float
    end_equity: float
    total_return: float
    cagr: float
    max_drawdown: float
    sharpe: float
    trades: int
    win_rate: float
    avg_trade: float
    exposure: float
    fees: float
    rsi_oversold: float
    rsi_overbought: float

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def round_trips(fills: Sequence[Fill]) -> list[Trade]:
    """Pair fills into round trips for one symbol (long-only: buys open, sells close)."""
    trades: list[Trade] = []
    qty = 0.0
    cost = 0.0
    proceeds = 0.0
    opened: datetime | None = None
    for fill in fills:
        if fill.side is Side.BUY:
            if qty <= 1e-12:
                opened = fill.ts
                cost = proceeds = 0.0
            qty += fill.qty
            cost += fill.qty * fill.price + fill.fee
        else:
            qty -= fill.qty
            proceeds += fill.qty * fill.price - fill.fee
            if qty <= 1e-9 and opened is not None:
                trades.append(Trade(opened, fill.ts, 0.0, proceeds - cost))
                opened = None
                qty = 0.0
    return trades


def _as_array(values: Sequence[float]) -> np.ndarray:
    if isinstance(values, array):
        return np.frombuffer(values, dtype=np.float64) if len(values) else np.zeros(0)
    return np.asarray(values, dtype=np.float64)


def max_drawdown(equity: Sequence[float]) -> float:
    """Largest fall from a running peak, as a fraction of that peak."""
    curve = _as_array(equity)
    if curve.size == 0:
        return 0.0
    peaks = np.maximum.accumulate(curve)
    with np.errstate(divide="ignore", invalid="ignore"):
        falls = np.where(peaks > 0, (peaks - curve) / peaks, 0.0)
    return float(falls.max())


def sharpe(equity: Sequence[float], bars_per_year: float) -> float:
    """Mean over standard deviation of per-bar returns, annualised."""
    curve = _as_array(equity)
    if curve.size < 3:
        return 0.0
    prev = curve[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        returns = np.where(prev != 0, curve[1:] / prev - 1.0, 0.0)
    std = float(returns.std(ddof=1))
    if not std > 1e-15:
        return 0.0
    return float(returns.mean()) / std * math.sqrt(bars_per_year)


def build_report(
    *,
    symbol: str,
    timeframe: str,
    timeframe_seconds: int,
    start: datetime,
    end: datetime,
    start_equity: float,
    equity: array[float] | Sequence[float],
    exposed_bars: int,
    fills: Sequence[Fill],
    rsi_oversold: float,
    rsi_overbought: float,
) -> Report:
    bars = len(equity)
    end_equity = equity[-1] if bars else start_equity
    total_return = end_equity / start_equity - 1.0
    years = (end - start).total_seconds() / (365.25 * 86400)
    if years > 0 and end_equity > 0:
        cagr = (end_equity / start_equity) ** (1.0 / years) - 1.0
    else:
        cagr = 0.0
    curve = np.concatenate(([start_equity], _as_array(equity)))
    trades = round_trips(fills)
    wins = sum(1 for t in trades if t.pnl > 0)
    bars_per_year = TRADING_DAYS * SESSION_SECONDS / timeframe_seconds
    return Report(
        symbol=symbol,
        timeframe=timeframe,
        bars=bars,
        start=start.isoformat(),
        end=end.isoformat(),
        start_equity=start_equity,
        end_equity=end_equity,
        total_return=total_return,
        cagr=cagr,
        max_drawdown=max_drawdown(curve),  # type: ignore[arg-type]
        sharpe=sharpe(curve, bars_per_year),  # type: ignore[arg-type]
        trades=len(trades),
        win_rate=wins / len(trades) if trades else 0.0,
        avg_trade=sum(t.pnl for t in trades) / len(trades) if trades else 0.0,
        exposure=exposed_bars / bars if bars else 0.0,
        fees=sum(f.fee for f in fills),
        rsi_oversold=rsi_oversold,
        rsi_overbought=rsi_overbought,
    )
