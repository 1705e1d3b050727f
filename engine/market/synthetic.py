"""A deterministic synthetic market: NYSE-shaped 5-minute bars that look statistically real.

No package ships real intraday US equity bars, so the offline demo and the backtester run on
this. The path has the stylised facts a strategy meets in practice: GARCH(1,1)-like clustering of
daily variance, Student-t (df=4) fat tails, an overnight gap carrying ~20% of the daily variance,
U-shaped intraday volatility and volume with a spike into the close, and the NYSE grid (holidays,
half days, DST) from ``MarketCalendar``.

With ``drift=0`` each bar's expected gross return is 1 up to O(σ⁴) (the -σ²/2 term makes the price
a martingale), so a correct, look-ahead-free strategy is close to flat on it; other parts rely on
that.

Determinism: each session's random numbers come from ``default_rng([seed, day ordinal])`` and the
only state crossing a session boundary is two floats (log close, next day's variance), updated by
the same scalar recursion however the sessions are chunked, so ``next_days(1)`` ×N is bit-equal
to ``next_days(N)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from tapewatch.engine.market.bars import BarArrays
from tapewatch.engine.market.calendar import (
    MarketCalendar,
    Session,
    bars_per_session,
    grid_ns,
    session_bounds_ns,
)

# Daily variance model: h' = ω + α·h·z² + β·h, unconditional daily σ of 1% (~16%/year).
_DAILY_SIGMA = 0.01
_ALPHA = 0.08
_BETA = 0.90
_OMEGA = _DAILY_SIGMA**2 * (1.0 - _ALPHA - _BETA)
_H_MAX = 0.08**2  # a crash-day ceiling so fat tails cannot blow the recursion up
_OVERNIGHT_SHARE = 0.20
_T_DF = 4.0
_T_SCALE = 1.0 / math.sqrt(_T_DF / (_T_DF - 2.0))  # Student-t(4) scaled to unit variance
_T_CLIP = 12.0  # standardised innovations beyond ±12σ are clipped (keeps exp() tame)
_RANGE_SCALE = 0.5  # how far high/low reach past the body, in units of the bar's σ
_DAILY_VOLUME = 50_000_000.0
_VOLUME_NOISE = 0.35  # log-normal σ of per-bar volume noise
_REGULAR_SECONDS = 390 * 60
_TRADING_DAYS = 252.0
_BLOCK_SESSIONS = 512  # sessions generated per vectorised block (bounds temporary memory)


def _vol_shape(min_from_open: np.ndarray, min_to_close: np.ndarray) -> np.ndarray:
    """Intraday variance density: high at the open, decaying to a midday floor, up into close."""
    return 1.0 + 3.0 * np.exp(-min_from_open / 20.0) + 1.5 * np.exp(-min_to_close / 15.0)


def _volume_shape(min_from_open: np.ndarray, min_to_close: np.ndarray) -> np.ndarray:
    """Intraday volume density: U-shaped with a sharp closing-auction spike."""
    return 1.0 + 2.0 * np.exp(-min_from_open / 25.0) + 4.0 * np.exp(-min_to_close / 8.0)


@dataclass(frozen=True)
class _Profile:
    """Per-bar weights on a session grid, normalised on a regular 6.5-hour session."""

    var_w: np.ndarray  # (S, M) share of the intraday variance carried by each bar
    vol_w: np.ndarray  # (S, M) share of the day's volume
    dt_frac: np.ndarray  # (S, M) bar length / regular session length
    mask: np.ndarray  # (S, M) True where a bar exists


def _profile(
    opens: np.ndarray, closes: np.ndarray, counts: np.ndarray, tf: int, width: int
) -> _Profile:
    """Weights for sessions padded to ``width`` bars (half days use the first columns only)."""
    step = tf * 1e9
    k = np.arange(width, dtype=np.float64)[None, :]
    length = (closes - opens).astype(np.float64)[:, None]  # ns
    start = k * step
    end = np.minimum(start + step, length)
    mask = k < counts[:, None]
    dt = np.where(mask, end - start, 0.0)
    mid_open = (start + dt / 2.0) / 60e9
    mid_close = (length - start - dt / 2.0) / 60e9
    reg_var, reg_vol = _regular_norms(tf)
    var_w = _vol_shape(mid_open, mid_close) * dt / reg_var
    vol_w = _volume_shape(mid_open, mid_close) * dt / reg_vol
    return _Profile(var_w, vol_w, dt / (_REGULAR_SECONDS * 1e9), mask)


def _regular_norms(tf: int) -> tuple[float, float]:
    """Σ shape·dt over a regular session, so a full day's weights sum to exactly 1."""
    step = tf * 1e9
    length = _REGULAR_SECONDS * 1e9
    start = np.arange(0.0, length, step)
    dt = np.minimum(start + step, length) - start
    mid_open = (start + dt / 2.0) / 60e9
    mid_close = (length - start - dt / 2.0) / 60e9
    return (
        float(np.sum(_vol_shape(mid_open, mid_close) * dt)),
        float(np.sum(_volume_shape(mid_open, mid_close) * dt)),
    )


@dataclass(frozen=True)
class _Draws:
    """One block's random numbers, each row drawn from its own session's generator."""

    intraday: np.ndarray  # (S, M) unit-variance Student-t
    overnight: np.ndarray  # (S,) unit-variance Student-t
    up: np.ndarray  # (S, M) |N(0,1)| high extension
    down: np.ndarray  # (S, M) |N(0,1)| low extension
    vol_noise: np.ndarray  # (S, M) N(0,1)


def _draw(seed: int, sessions: list[Session], width: int) -> _Draws:
    s = len(sessions)
    intraday = np.empty((s, width))
    overnight = np.empty(s)
    normals = np.empty((s, 3, width))
    for i, session in enumerate(sessions):
        rng = np.random.default_rng([seed, session.day.toordinal()])
        t = rng.standard_t(_T_DF, size=width + 1)
        overnight[i] = t[0]
        intraday[i] = t[1:]
        normals[i] = rng.standard_normal((3, width))
    np.clip(intraday * _T_SCALE, -_T_CLIP, _T_CLIP, out=intraday)
    overnight = np.clip(overnight * _T_SCALE, -_T_CLIP, _T_CLIP)
    return _Draws(intraday, overnight, np.abs(normals[:, 0]), np.abs(normals[:, 1]), normals[:, 2])


class SyntheticMarket:
    """An endless seeded price path; ``next_days`` continues it session by session."""

    def __init__(
        self,
        symbol: str = "SPY",
        *,
        seed: int,
        start: date,
        timeframe_seconds: int = 300,
        start_price: float = 100.0,
        drift: float = 0.0,
        calendar: MarketCalendar | None = None,
    ) -> None:
        """``start_price`` is the first bar's open; ``drift`` is an annual log drift (0 = none)."""
        if seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed}")
        if timeframe_seconds <= 0 or timeframe_seconds > _REGULAR_SECONDS:
            raise ValueError(
                f"timeframe_seconds must be between 1 and {_REGULAR_SECONDS}, "
                f"got {timeframe_seconds}"
            )
        if not start_price > 0 or not math.isfinite(start_price):
            raise ValueError(f"start_price must be a positive number, got {start_price}")
        self.symbol = symbol
        self.seed = seed
        self.timeframe_seconds = timeframe_seconds
        self.drift = drift
        self.calendar = calendar if calendar is not None else MarketCalendar()
        self._cursor = start  # the next session is the first one on/after this day
        self._start_price = float(start_price)
        self._log_close = math.log(start_price)
        self._h = _DAILY_SIGMA**2
        self._first = True  # the very first session opens at start_price (no gap)
        self._width = int(
            bars_per_session(
                np.array([0], dtype=np.int64),
                np.array([_REGULAR_SECONDS * 1_000_000_000], dtype=np.int64),
                timeframe_seconds,
            )[0]
        )

    def next_days(self, n_sessions: int) -> BarArrays:
        """The next ``n_sessions`` sessions of bars; price and variance carry over."""
        if n_sessions < 0:
            raise ValueError(f"n_sessions must be >= 0, got {n_sessions}")
        if n_sessions == 0:
            return BarArrays.empty(self.symbol)
        sessions = self.calendar.sessions_from(self._cursor, n_sessions)
        self._cursor = sessions[-1].day + timedelta(days=1)
        opens, closes = session_bounds_ns(sessions)
        ts = grid_ns(opens, closes, self.timeframe_seconds)
        # Preallocated columns filled block by block: peak memory is the output plus one block.
        out = tuple(np.empty(len(ts)) for _ in range(5))
        at = 0
        for i in range(0, len(sessions), _BLOCK_SESSIONS):
            block = self._block(sessions[i : i + _BLOCK_SESSIONS])
            n = len(block[0])
            for column, values in zip(out, block, strict=True):
                column[at : at + n] = values
            at += n
        assert at == len(ts)
        return BarArrays(self.symbol, ts, *out)

    def _block(self, sessions: list[Session]) -> tuple[np.ndarray, ...]:
        """Open, high, low, close and volume of each bar of ``sessions``; advances the state."""
        opens, closes = session_bounds_ns(sessions)
        tf = self.timeframe_seconds
        counts = bars_per_session(opens, closes, tf)
        width = max(self._width, int(counts.max()))
        prof = _profile(opens, closes, counts, tf, width)
        draws = _draw(self.seed, sessions, width)
        n_sess = len(sessions)

        # The day's standardised shock does not depend on its variance, so the GARCH recursion
        # (and the session-to-session log price) is a cheap scalar loop over precomputed sums.
        intraday_sd = np.sqrt((1.0 - _OVERNIGHT_SHARE) * prof.var_w)
        shock_intraday = np.sum(intraday_sd * draws.intraday * prof.mask, axis=1)
        gap_on = np.ones(n_sess)
        if self._first:
            gap_on[0] = 0.0
        z = (math.sqrt(_OVERNIGHT_SHARE) * draws.overnight * gap_on + shock_intraday).tolist()
        var_day = np.empty(n_sess)
        h = self._h
        for i in range(n_sess):
            var_day[i] = h
            h = min(_OMEGA + (_ALPHA * z[i] * z[i] + _BETA) * h, _H_MAX)

        # Per-bar log returns: σ·ε − σ²/2 (martingale price) + drift pro rata of bar length.
        bar_var = var_day[:, None] * (1.0 - _OVERNIGHT_SHARE) * prof.var_w
        sigma = np.sqrt(bar_var)
        drift_bar = (self.drift / _TRADING_DAYS) * prof.dt_frac
        r = np.where(prof.mask, sigma * draws.intraday - 0.5 * bar_var + drift_bar, 0.0)
        gap_var = _OVERNIGHT_SHARE * var_day
        gap = (np.sqrt(gap_var) * draws.overnight - 0.5 * gap_var) * gap_on
        path = np.cumsum(r, axis=1)  # row-wise: bit-identical however sessions are chunked
        day_total = path[np.arange(n_sess), counts - 1].tolist()
        gap_list = gap.tolist()
        open_level = np.empty(n_sess)
        log_close = self._log_close
        for i in range(n_sess):
            open_level[i] = log_close + gap_list[i]
            log_close = open_level[i] + day_total[i]

        log_c = open_level[:, None] + path
        log_o = np.concatenate([open_level[:, None], log_c[:, :-1]], axis=1)
        o = np.exp(log_o)
        c = np.exp(log_c)
        if self._first:
            o[0, 0] = self._start_price  # exp(log(p)) may be off by an ulp
        hi = np.maximum(o, c) * np.exp(_RANGE_SCALE * sigma * draws.up)
        lo = np.minimum(o, c) * np.exp(-_RANGE_SCALE * sigma * draws.down)
        level = _DAILY_VOLUME * np.sqrt(var_day / _DAILY_SIGMA**2)
        noise = np.exp(_VOLUME_NOISE * draws.vol_noise - 0.5 * _VOLUME_NOISE**2)
        vol = np.maximum(1.0, np.round(level[:, None] * prof.vol_w * noise))

        self._h = h
        self._log_close = log_close
        self._first = False
        m = prof.mask
        return o[m], hi[m], lo[m], c[m], vol[m]


def generate(
    symbol: str = "SPY",
    *,
    seed: int,
    start: date,
    end: date | None = None,
    n_bars: int | None = None,
    timeframe_seconds: int = 300,
    start_price: float = 100.0,
    drift: float = 0.0,
) -> BarArrays:
    """Bars from ``start`` through ``end`` and/or exactly ``n_bars`` bars (whichever is fewer).

    The result is a prefix of the ``SyntheticMarket`` path with the same arguments.
    """
    if end is None and n_bars is None:
        raise ValueError("generate() needs end=, n_bars= or both")
    if n_bars is not None and n_bars < 0:
        raise ValueError(f"n_bars must be >= 0, got {n_bars}")
    calendar = MarketCalendar()
    if end is not None:
        sessions = calendar.sessions(start, end)
    else:
        assert n_bars is not None
        sessions = _sessions_for_bars(calendar, start, n_bars, timeframe_seconds)
    if n_bars is not None:
        opens, closes = session_bounds_ns(sessions)
        cum = np.cumsum(bars_per_session(opens, closes, timeframe_seconds))
        needed = int(np.searchsorted(cum, n_bars, side="left")) + 1 if n_bars else 0
        sessions = sessions[: min(needed, len(sessions))]
    market = SyntheticMarket(
        symbol,
        seed=seed,
        start=start,
        timeframe_seconds=timeframe_seconds,
        start_price=start_price,
        drift=drift,
        calendar=calendar,
    )
    bars = market.next_days(len(sessions))
    return bars.slice(0, n_bars) if n_bars is not None and len(bars) > n_bars else bars


def _sessions_for_bars(
    calendar: MarketCalendar, start: date, n_bars: int, timeframe_seconds: int
) -> list[Session]:
    """Enough sessions from ``start`` to hold ``n_bars`` bars (half days hold fewer)."""
    full = max(1, math.ceil(_REGULAR_SECONDS / timeframe_seconds))
    count = n_bars // full + 1
    while True:
        sessions = calendar.sessions_from(start, count + count // 50 + 5)
        opens, closes = session_bounds_ns(sessions)
        if int(bars_per_session(opens, closes, timeframe_seconds).sum()) >= n_bars:
            return sessions
        count *= 2
