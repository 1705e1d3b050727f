"""The backtest's vectorised path: numpy finds the bars where something can happen; the engine
decides only those.

The indicators are computed once over whole arrays, and every bar validity check, day roll,
data hole, pending order, drawdown crossing and candidate signal is located with numpy. The
loop in Python visits only those bars; each takes the engine's bar path as a backtest needs it
(``vector_fills.FillStep``: the SimBroker's execution as numbers, the risk gate, the strategy's
sizing and rule; ``vector_step.BarStep``, the same through the SimBroker's own objects, where
the numbers do not cover the run) or, for an engine neither step covers,
``Engine.process_bar`` itself. Every other bar can only
append ``cash + qty * close`` to the equity curve, which is done for a whole stretch at once
with the same float operations the lean loop uses. History keeps no stale-data watch, so a
hole in the data changes nothing there, and while the run is flat with no breaker tripped a day
roll waits for the next bar visited (one roll then leaves the engine as a roll a day would).
Everything derived from the bars alone (the accepted bars, each indicator series, the bars
always visited) is computed once per bar set (``memo``) and shared by a sweep's cells.

Exactness. The vectorised indicators differ from the streaming ones in the last bits, so they
are used only where the rule's outcome cannot depend on those bits: a value within a band of a
threshold (RSI against oversold or overbought, close against SMA) is replaced by the streaming
value itself — the SMA's exact decimal mean (the streaming SMA's tie rule), the RSI from the
streaming RSI object advanced over the closes so far (paid only in runs that need it). The
bands are orders of magnitude wider than either computation's error bound. Configurations the
path does not cover (Wilder's RSI, prices outside the range where the decimal mean is exact)
are reported by ``uncovered`` and run through the engine loop instead.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tapewatch.engine.adapters.sim.broker import SimBroker
from tapewatch.engine.backtest.gaps import cross_gap
from tapewatch.engine.backtest.memo import remembered
from tapewatch.engine.backtest.vector_fills import FillStep
from tapewatch.engine.backtest.vector_step import BarStep
from tapewatch.engine.core.clock import SimClock
from tapewatch.engine.core.engine import Engine
from tapewatch.engine.market.bars import BarArrays, datetime_from_ns
from tapewatch.engine.model.types import Bar, TradingState
from tapewatch.engine.risk.drawdown import DrawdownBreaker
from tapewatch.engine.risk.gate import RiskGate
from tapewatch.engine.settings.config import EngineConfig
from tapewatch.engine.strategy.indicators import RSI, exact_mean
from tapewatch.engine.strategy.rsi_sma import FLAT_EPSILON, rule_action

Progress = Callable[[int, int], None]

PRICE_RANGE = (1e-6, 1e12)
"""Closes inside this range keep a window's decimal sum exact (the SMA's tie rule relies on it)."""

MAX_SMA_PERIOD = 2_000
"""Longer SMAs fall back: the streaming SMA's running-sum error (about 2e-13 * period,
relative) must stay well inside its own 1e-9 tie band for the two means to agree on a side."""

RSI_BAND_PER_PERIOD = 1e-7
"""RSI points per unit of period within which the vector RSI defers to the streaming one (the
streaming sums' error is about 2e-13 * period relative: ~1e-9 points at period 14)."""

SMA_BAND = 1e-8
"""Relative distance of close from the vector SMA within which the exact decimal mean decides
(ten times the streaming SMA's own tie band)."""

_SHIFTED_ADDS_UP_TO = 256
_PROGRESS_EVERY = 65_536


def uncovered(bars: BarArrays, config: EngineConfig) -> str | None:
    """Why the vector path cannot run ``config`` over ``bars`` (None when it can)."""
    if config.strategy.rsi_method != "sma":
        return f"RSI method {config.strategy.rsi_method!r} has no vectorised form"
    if config.strategy.sma_period > MAX_SMA_PERIOD:
        return f"an SMA over more than {MAX_SMA_PERIOD} bars"
    closes = accepted_bars(bars).closes
    low, high = PRICE_RANGE
    if len(closes) and not (closes.min() >= low and closes.max() <= high):
        return "closes outside the range where the decimal SMA is exact"
    return None


def accepted_mask(bars: BarArrays) -> np.ndarray:
    """Bars the engine's door lets through: ``price_problem`` is None and the stamp is newer
    than every bar used before it (the same checks as ``bar_checks``, on whole arrays).
    Written into two buffers: each fresh million-element temporary costs its page faults."""
    o, h, lo, c, v = bars.open, bars.high, bars.low, bars.close, bars.volume
    fine = np.isfinite(o)
    check = np.empty_like(fine)
    with np.errstate(invalid="ignore"):
        for column in (h, lo, c, v):
            fine &= np.isfinite(column, out=check)
        for column in (o, h, lo, c):
            fine &= np.greater(column, 0, out=check)
        fine &= np.invert(np.less(h, lo, out=check), out=check)
        for low, high in ((lo, o), (o, h), (lo, c), (c, h)):
            fine &= np.less_equal(low, high, out=check)
        fine &= np.greater_equal(v, 0, out=check)
    ts = bars.ts_ns
    newest = np.where(fine, ts, np.iinfo(np.int64).min)
    np.maximum.accumulate(newest, out=newest)
    if len(ts):  # newer than every accepted bar before it
        fine[0] &= bool(ts[0] > -(2**62))
        fine[1:] &= np.greater(ts[1:], newest[:-1], out=check[1:])
    return fine


@dataclass(frozen=True, slots=True)
class Indicators:
    """Vector RSI and SMA over the accepted closes (NaN during warm-up)."""

    rsi: np.ndarray
    sma: np.ndarray


def vector_indicators(closes: np.ndarray, rsi_period: int, sma_period: int) -> Indicators:
    """RSI (simple-average form) and SMA of ``closes``, aligned with it: value k uses the
    closes up to and including k, as the streaming indicators would return at k."""
    return Indicators(vector_rsi(closes, rsi_period), vector_sma(closes, sma_period))


def vector_sma(closes: np.ndarray, period: int) -> np.ndarray:
    sma = np.empty(len(closes))
    sma[: period - 1] = np.nan
    if len(closes) >= period:
        tail = sma[period - 1 :]
        window_sums(closes, period, out=tail)
        tail /= period
    return sma


def vector_rsi(closes: np.ndarray, period: int) -> np.ndarray:
    """In three buffers (the result, the changes, the rises): fresh temporaries cost."""
    rsi = np.empty(len(closes))
    rsi[:period] = np.nan
    if len(closes) > period:
        change = np.diff(closes)
        up = np.maximum(change, 0.0)
        falls = np.subtract(up, change, out=change)  # exactly: 0 - change, or 0
        gains = window_sums(up, period, out=rsi[period:])
        total = window_sums(falls, period, out=up[: len(gains)])  # the losses, then + gains
        total += gains
        with np.errstate(invalid="ignore", divide="ignore"):
            np.divide(gains, total, out=gains)
        gains *= 100.0
        gains[total <= 0.0] = 50.0
    return rsi


@dataclass(frozen=True, slots=True)
class Accepted:
    """The bars the engine's door lets through, as positions and their closes and stamps."""

    mask: np.ndarray
    index: np.ndarray  # raw positions of the accepted bars
    closes: np.ndarray
    ts_ns: np.ndarray
    position: np.ndarray  # raw position -> accepted position (of the last accepted at or before)
    raw_close: np.ndarray  # every bar's close and stamp, in aligned memory
    raw_ts_ns: np.ndarray


def _aligned(column: np.ndarray) -> np.ndarray:
    """``column``, copied once if its memory is unaligned: bars a Dask worker unpickles sit at
    any offset in a frame, and numpy then copies the whole array on every ``searchsorted``."""
    return column if column.flags.aligned else np.require(column, requirements="A")


def accepted_bars(bars: BarArrays) -> Accepted:
    """``accepted_mask`` and what the vector path derives from it, once per bar set."""
    return remembered(bars, "accepted", lambda: _accepted(bars))


def _accepted(bars: BarArrays) -> Accepted:
    mask = accepted_mask(bars)
    close, ts = _aligned(bars.close), _aligned(bars.ts_ns)
    if mask.all():  # clean data: the columns themselves, no gathered copies
        index = np.arange(len(mask))
        return Accepted(mask, index, close, ts, index, close, ts)
    index = np.flatnonzero(mask)
    return Accepted(mask, index, close[index], ts[index], np.cumsum(mask) - 1, close, ts)


def _near_or_above_sma(bars: BarArrays, sma_period: int) -> np.ndarray:
    """Accepted bars whose close may be above the SMA (within the band that defers to the
    exact mean): the buy rule's SMA half, once per bar set and SMA period."""

    def compute() -> np.ndarray:
        closes = accepted_bars(bars).closes
        with np.errstate(invalid="ignore"):
            return _shared_sma(bars, sma_period) < closes * (1.0 + SMA_BAND)

    return remembered(bars, ("above", sma_period), compute)


def shared_indicators(bars: BarArrays, rsi_period: int, sma_period: int) -> Indicators:
    """``vector_indicators`` over the accepted closes of ``bars``, each series computed once
    per bar set and period (every threshold pair of a sweep reuses it)."""
    return Indicators(_shared_rsi(bars, rsi_period), _shared_sma(bars, sma_period))


def _shared_rsi(bars: BarArrays, period: int) -> np.ndarray:
    return remembered(bars, ("rsi", period), lambda: vector_rsi(accepted_bars(bars).closes, period))


def _shared_sma(bars: BarArrays, period: int) -> np.ndarray:
    return remembered(bars, ("sma", period), lambda: vector_sma(accepted_bars(bars).closes, period))


def window_sums(values: np.ndarray, period: int, out: np.ndarray | None = None) -> np.ndarray:
    """Sum of every ``period`` consecutive values (non-negative ones: relative error at most
    about ``period`` ulps), into ``out`` when given (it must not overlap ``values``). Short
    windows as shifted whole-array adds, long ones by reduction."""
    n = len(values) - period + 1
    if period > _SHIFTED_ADDS_UP_TO:
        sums = sliding_window_view(values, period).sum(axis=1)
        if out is None:
            return sums
        out[...] = sums
        return out
    if out is None:
        out = values[period - 1 :].copy()
    else:
        out[...] = values[period - 1 :]
    for lag in range(1, period):
        out += values[period - 1 - lag : period - 1 - lag + n]
    return out


class _StreamingRSI:
    """The streaming RSI advanced lazily over the accepted closes: its exact value at a bar,
    for the rare bar whose vector RSI sits too near a threshold to decide."""

    def __init__(self, closes: np.ndarray, period: int) -> None:
        self._closes = closes
        self._rsi = RSI(period)
        self._next = 0
        self._value: float | None = None

    def at(self, k: int) -> float | None:
        update = self._rsi.update
        closes = self._closes
        value = self._value
        for j in range(self._next, k + 1):
            value = update(float(closes[j]))
        self._next = k + 1
        self._value = value
        return value


class Decider:
    """Indicator values at accepted bar k whose rule outcome equals the streaming indicators'."""

    def __init__(self, closes: np.ndarray, ind: Indicators, config: EngineConfig) -> None:
        strat = config.strategy
        self._closes = closes
        self._rsi = ind.rsi
        self._sma = ind.sma
        self._sma_period = strat.sma_period
        self._oversold = strat.rsi_oversold
        self._overbought = strat.rsi_overbought
        self._rsi_band = RSI_BAND_PER_PERIOD * strat.rsi_period
        self._streaming = _StreamingRSI(closes, strat.rsi_period)
        self.deferred = 0  # bars decided by the streaming values (for tests and curiosity)
        self._rsi_at, self._sma_at, self._close_at = ind.rsi.item, ind.sma.item, closes.item

    def values(self, k: int) -> tuple[float | None, float | None]:
        r: float = self._rsi_at(k)
        rsi: float | None = None
        if r == r:
            band = self._rsi_band
            if abs(r - self._oversold) <= band or abs(r - self._overbought) <= band:
                self.deferred += 1
                rsi = self._streaming.at(k)
            else:
                rsi = r
        s: float = self._sma_at(k)
        sma: float | None = None
        if s == s:
            close: float = self._close_at(k)
            if abs(s - close) <= close * SMA_BAND:
                self.deferred += 1
                window = self._closes[k - self._sma_period + 1 : k + 1].tolist()
                sma = exact_mean(window)
            else:
                sma = s
        return rsi, sma


def _next_at(positions: np.ndarray, i: int, default: int) -> int:
    """The first entry of sorted ``positions`` at or after ``i`` (``default`` when none)."""
    at = positions.searchsorted(i)
    return int(positions[at]) if at < len(positions) else default


async def drive_vector(
    engine: Engine,
    broker: SimBroker,
    clock: SimClock,
    bars: BarArrays,
    equity_out: array[float],
    progress: Progress | None,
    step: BarStep | FillStep | None = None,
) -> int:
    """Run ``bars`` through ``engine``, visiting only the bars where something can happen;
    appends every accepted bar's equity to ``equity_out`` and returns the exposed-bar count.
    Eventful bars take ``step`` (which records fills, trips and denials itself) or, without
    one, the engine's own ``process_bar`` (the caller subscribes to those events)."""
    config = engine.config
    strat = config.strategy
    symbol = engine.symbol
    total = len(bars)
    door = accepted_bars(bars)
    ts_all, close_all = door.raw_ts_ns, door.raw_close
    accepted, acc_idx, closes, acc_ts = door.mask, door.index, door.closes, door.ts_ns
    kpos = door.position
    ind = shared_indicators(bars, strat.rsi_period, strat.sma_period)
    decider = Decider(closes, ind, config)
    oversold, overbought = strat.rsi_oversold, strat.rsi_overbought
    tf_ns = engine.timeframe.seconds * 1_000_000_000
    stale_ns = int(config.risk.stale_bars * tf_ns)

    # History with a BarStep keeps no stale-data watch, so a hole in the data changes nothing
    # and a flat, untripped day roll can wait for the next bar visited (see ``_lazy_days``).
    lazy_days = step is not None and not engine.gate.watch_staleness
    static, holes = _static_bars(bars, door, tf_ns, stale_ns, holes_matter=not lazy_days)
    # Candidate signals, a superset of the rule's: the bands leave every near-threshold bar in.
    band = RSI_BAND_PER_PERIOD * strat.rsi_period
    rsi_v = ind.rsi
    with np.errstate(invalid="ignore"):
        buys = acc_idx[(rsi_v < oversold + band) & _near_or_above_sma(bars, strat.sma_period)]
        sells = acc_idx[rsi_v > overbought - band]

    rule = rule_action
    breaches = engine.drawdown_breached
    drawdown = engine.gate.drawdown
    data_seen = engine.data_seen
    process = engine.process_bar
    on_bar = engine.on_bar
    portfolio = broker.portfolio
    positions = portfolio.positions
    pending = broker.pending_symbols
    # The loop visits a few bars in a hundred: numpy scalars, not million-element lists.
    ts_at = ts_all.item
    kpos_at = kpos.item
    close_at = close_all.item
    open_at, high_at, low_at, volume_at = (
        bars.open.item,
        bars.high.item,
        bars.low.item,
        bars.volume.item,
    )
    tf_delta = engine.timeframe.delta  # now - tf_delta is the bar's start, as bars.bar(i) gives
    bar_symbol = bars.symbol
    accepted_at = accepted.item
    hole_set = set(holes.tolist())
    has_static = len(static) > 0
    gate = engine.gate
    last_ts_ns = -(2**62)
    boundary_ns = -1
    next_day = 0  # raw index of the first bar at or after the day boundary
    prev_close_ns = int(ts_all[0])
    last_equity = portfolio.cash
    qty = 0.0
    cash = portfolio.cash
    waiting = symbol in pending  # an order fills at the next bar's open
    fills = step if isinstance(step, FillStep) else None
    bar_step = step if isinstance(step, BarStep) else None
    exposed = 0
    reported = 0
    i = 0
    while i < total:
        ts = ts_at(i)
        if not accepted_at(i):
            if step is None:  # the engine's door reports it (a notice) and drops it
                clock.advance_to(datetime_from_ns(max(ts, last_ts_ns) + tf_ns))
                await on_bar(bars.bar(i))
            i += 1
            continue
        last_ts_ns = ts
        close = close_at(i)
        if i in hole_set or ts >= boundary_ns:
            rolled = ts >= boundary_ns
            boundary_ns = cross_gap(
                engine,
                clock,
                prev_close_ns=prev_close_ns,
                stale_ns=stale_ns,
                ts=ts,
                tf_ns=tf_ns,
                boundary_ns=boundary_ns,
                last_equity=last_equity,
            )
            if rolled:
                k_next = int(acc_ts.searchsorted(boundary_ns))
                next_day = int(acc_idx[k_next]) if k_next < len(acc_idx) else total
        k = kpos_at(i)
        equity = cash + qty * close
        indicators = decider.values(k)
        quiet = not waiting and not (qty and breaches(equity))
        if quiet and rule(*indicators, close, qty, oversold, overbought) == "hold":
            equity_out.append(equity)
            last_equity = equity
            if qty:
                exposed += 1
        else:  # eventful: the engine's bar path, with decided indicator values
            now = datetime_from_ns(ts + tf_ns)
            clock.advance_to(now)
            if not lazy_days:
                data_seen(datetime_from_ns(prev_close_ns))
            if fills is not None:
                last_equity, held = fills(open_at(i), close, now - tf_delta, now, *indicators)
                qty, cash, waiting = fills.qty, fills.cash, fills.waiting
            else:
                if bar_step is not None:
                    bar = Bar(
                        bar_symbol,
                        now - tf_delta,
                        open_at(i),
                        high_at(i),
                        low_at(i),
                        close,
                        volume_at(i),
                    )
                    last_equity, held = await bar_step(bar, now, *indicators)
                else:
                    await process(bars.bar(i), indicators, schedule_stale_check=False)
                    last_equity, held = engine.state.equity, bool(engine.state.positions)
                position = positions.get(symbol)
                qty = position.qty if position is not None else 0.0
                cash = portfolio.cash
                waiting = symbol in pending
            equity_out.append(last_equity)
            if held:
                exposed += 1
            if waiting:  # it fills at the next bar's open: that bar is eventful
                prev_close_ns = ts + tf_ns
                i += 1
                continue
        prev_close_ns = ts + tf_ns
        i += 1
        # The bars after this one where nothing can happen: their equity at once.
        day_stop = total if lazy_days and _day_can_wait(qty, gate) else next_day
        stop = min(day_stop, _signal_after(i, qty, buys, sells))
        if has_static:
            stop = min(stop, _next_at(static, i, total))
        watch = drawdown if qty and not drawdown.tripped else None
        n = _quiet_stretch(close_all[i:stop], cash, qty, watch, equity_out)
        if n:
            i += n
            last_equity = equity_out[-1]
            last_ts_ns = ts_at(i - 1)
            prev_close_ns = last_ts_ns + tf_ns
            if qty:
                exposed += n
        if progress is not None and i - reported >= _PROGRESS_EVERY:
            reported = i
            progress(i, total)
    if progress is not None:
        progress(total, total)
    return exposed


def _static_bars(
    bars: BarArrays, door: Accepted, tf_ns: int, stale_ns: int, *, holes_matter: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Bars always visited (refused ones, which the engine's door reports, and data holes
    where they matter), and the holes among them; once per bar set and bar length."""

    def compute() -> tuple[np.ndarray, np.ndarray]:
        refused = np.flatnonzero(~door.mask)
        holes = np.empty(0, dtype=np.int64)
        if holes_matter and len(door.ts_ns):
            acc_ts = door.ts_ns
            prev_close = np.empty(len(acc_ts), dtype=np.int64)
            prev_close[0] = int(bars.ts_ns[0])
            prev_close[1:] = acc_ts[:-1] + tf_ns
            holes = door.index[(acc_ts - prev_close) > stale_ns]
        return np.union1d(refused, holes), holes

    return remembered(bars, ("static", tf_ns, stale_ns, holes_matter), compute)


def _day_can_wait(qty: float, gate: RiskGate) -> bool:
    """Whether the next day rolls can be left to the next bar visited: flat (so the equity,
    the drawdown base a roll would take, stays the cash) with no breaker tripped (so no roll
    re-arms one). Rolling once for the latest day then leaves the engine exactly as rolling
    every day would: each roll only sets the day and its starting equity."""
    return qty == 0.0 and gate.state is TradingState.ACTIVE


def _signal_after(i: int, qty: float, buys: np.ndarray, sells: np.ndarray) -> int:
    """The next bar from ``i`` on where the rule could act for this position."""
    if -FLAT_EPSILON < qty < FLAT_EPSILON:
        return _next_at(buys, i, 1 << 62)
    if qty > 0:
        return _next_at(sells, i, 1 << 62)
    return 1 << 62  # short (never by this strategy): the rule only ever holds


def _quiet_stretch(
    closes: np.ndarray,
    cash: float,
    qty: float,
    drawdown: DrawdownBreaker | None,
    equity_out: array[float],
) -> int:
    """Bars where nothing can happen but a drawdown crossing (``drawdown`` is watched while a
    position is held): their equity, ``cash + qty * close``, appended at once up to the first
    bar that breaches. Returns how many bars were appended."""
    if not len(closes):
        return 0
    equity = closes * qty  # cash + qty * close, in one buffer
    equity += cash
    start = drawdown.day_start_equity if drawdown is not None else None
    if drawdown is not None and start is not None and start > 0:
        # A generous pre-filter, then the breaker's own arithmetic on each flagged bar.
        loose = start * (1.0 - drawdown.max_drawdown + 1e-6)
        for f in np.flatnonzero(equity <= loose).tolist():
            if drawdown.breaches(float(equity[f])):
                equity = equity[:f]
                break
    equity_out.frombytes(equity.data.cast("B"))  # no bytes copy in between
    return len(equity)
