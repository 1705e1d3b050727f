"""Backtest statistics as a pure function of the equity curve and the fills.

Sharpe uses per-bar returns annualised by the number of bars in a year *of the data*: for
session-bound data (no bars on a New York weekend) that is the bars in a full regular session times
the exchange calendar's sessions per year (5Min: 78 × 252 in 2024); for 24-hour data (crypto, FX)
it is 365.25 days divided by the bar length. The report says which basis it used.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta

import numpy as np

from tapewatch.engine.model.types import Fill, Side

SESSION_SECONDS = 6.5 * 3600
SESSION_BOUND = "session-bound"
ROUND_THE_CLOCK = "24-hour"
_NS_PER_DAY = 86_400 * 1_000_000_000


@dataclass(frozen=True, slots=True)
class Trade:
    """A round trip: entry fills until the position is flat again."""

    entry_time: datetime
    exit_time: datetime
    qty: float
    pnl: float  # net of fees


@dataclass(frozen=True, slots=True)
class BreakerTrip:
    """One breaker trip in a backtest: when, which breaker, and the reason it gave."""

    at: str  # ISO time of the bar close that tripped it
    breaker: str
    reason: str


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
    annualisation: str = SESSION_BOUND
    bars_per_year: float = 0.0
    breaker_trips: tuple[BreakerTrip, ...] = ()
    orders_denied: int = 0  # strategy orders a tripped breaker refused

    @property
    def annualised_as(self) -> str:
        """``session-bound: 19,656 bars/year`` or ``24-hour: 105,192 bars/year``."""
        return f"{self.annualisation}: {self.bars_per_year:,.0f} bars/year"

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
    falls = peaks - curve  # then in place: a million-bar curve's temporaries cost
    with np.errstate(divide="ignore", invalid="ignore"):
        falls /= peaks
    falls[~(peaks > 0)] = 0.0
    return float(falls.max())


def sharpe(equity: Sequence[float], bars_per_year: float) -> float:
    """Mean over standard deviation of per-bar returns, annualised."""
    curve = _as_array(equity)
    if curve.size < 3:
        return 0.0
    prev = curve[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        returns = curve[1:] / prev
    returns -= 1.0
    returns[~(prev != 0)] = 0.0
    mean = float(returns.mean())
    # returns.std(ddof=1), its steps in the returns' own buffer: deviations, squares, their
    # sum over n - 1, the root (a fresh million-element temporary costs its page faults).
    returns -= mean
    np.multiply(returns, returns, out=returns)
    std = math.sqrt(float(returns.sum()) / (curve.size - 2))
    if not std > 1e-15:
        return 0.0
    return mean / std * math.sqrt(bars_per_year)


def annualisation(ts_ns: np.ndarray, timeframe_seconds: int) -> tuple[str, float]:
    """(basis, bars per year) for bars starting at ``ts_ns`` (int64 epoch ns, ascending).

    Session-bound when no bar falls on a Saturday or Sunday (New York date for intraday bars,
    the UTC date for daily bars, which vendors stamp at midnight UTC or New York): a full
    regular session's bars times the calendar's mean sessions per year over the calendar years
    the data spans. Otherwise 24-hour: 365.25 days / bar length.
    """
    from tapewatch.engine.market.calendar import MarketCalendar

    stamps = np.asarray(ts_ns, dtype=np.int64)
    # New York is 4 or 5 hours behind UTC; 4.5 h keeps every regular or extended-hours bar
    # (04:00-20:00 New York) on its New York date, whichever offset is in force.
    shift = int(4.5 * 3600) * 1_000_000_000 if timeframe_seconds < 86_400 else 0
    days = (stamps - shift) // _NS_PER_DAY
    # Every day present is the first one or where the day changes: weekdays of those only.
    present = np.concatenate((days[:1], days[1:][days[1:] != days[:-1]]))
    weekday = (present + 3) % 7  # 1970-01-01 was a Thursday: Monday = 0
    if bool(np.any(weekday >= 5)):
        return ROUND_THE_CLOCK, 365.25 * 86_400 / timeframe_seconds
    first_day = _epoch_date(int(stamps[0]))
    last_day = _epoch_date(int(stamps[-1]))
    years = last_day.year - first_day.year + 1
    sessions = MarketCalendar().session_count(
        first_day.replace(month=1, day=1), last_day.replace(month=12, day=31)
    )
    per_session = math.ceil(SESSION_SECONDS / timeframe_seconds)
    return SESSION_BOUND, per_session * sessions / years


def _epoch_date(ns: int) -> date:
    """The UTC date of an epoch-ns instant."""
    return date(1970, 1, 1) + timedelta(days=ns // _NS_PER_DAY)


def build_report(
    *,
    symbol: str,
    timeframe: str,
    timeframe_seconds: int,
    annualised: tuple[str, float] | None = None,
    start: datetime,
    end: datetime,
    start_equity: float,
    equity: array[float] | Sequence[float],
    exposed_bars: int,
    fills: Sequence[Fill],
    rsi_oversold: float,
    rsi_overbought: float,
    breaker_trips: Sequence[BreakerTrip] = (),
    orders_denied: int = 0,
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
    if annualised is None:
        annualised = (SESSION_BOUND, 252 * math.ceil(SESSION_SECONDS / timeframe_seconds))
    basis, bars_per_year = annualised
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
        annualisation=basis,
        bars_per_year=bars_per_year,
        breaker_trips=tuple(breaker_trips),
        orders_denied=orders_denied,
    )
