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

from engine.models import Fill, Side

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


def max_drawdown(equity: Sequence[float]) -> float:
    peak = -math.inf
    worst = 0.0
    for value in equity:
        if value > peak:
            peak = value
        elif peak > 0:
            dd = (peak - value) / peak
            if dd > worst:
                worst = dd
    return worst


def sharpe(equity: Sequence[float], bars_per_year: float) -> float:
    n = len(equity) - 1
    if n < 2:
        return 0.0
    total = 0.0
    total_sq = 0.0
    prev = equity[0]
    for value in equity[1:]:
        r = value / prev - 1.0 if prev else 0.0
        total += r
        total_sq += r * r
        prev = value
    mean = total / n
    var = (total_sq - n * mean * mean) / (n - 1)
    if var <= 1e-30:
        return 0.0
    return mean / math.sqrt(var) * math.sqrt(bars_per_year)


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
    curve = [start_equity, *equity]
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
        max_drawdown=max_drawdown(curve),
        sharpe=sharpe(curve, bars_per_year),
        trades=len(trades),
        win_rate=wins / len(trades) if trades else 0.0,
        avg_trade=sum(t.pnl for t in trades) / len(trades) if trades else 0.0,
        exposure=exposed_bars / bars if bars else 0.0,
        fees=sum(f.fee for f in fills),
        rsi_oversold=rsi_oversold,
        rsi_overbought=rsi_overbought,
    )
