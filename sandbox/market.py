"""The sandbox's market: its clock, current prices and finished 1-minute bars.

The market clock is a minute counter moved by the server's ticker (one minute per streamed bar)
or by the control endpoint, never by the wall clock, so tests are exactly repeatable. Bars come
from ``PricePath``; "set price" rescales a symbol's path from the current minute on, leaving
history untouched. Prices are rounded to cents, as an exchange would print them. ``halted`` is
the ``market_closed`` fault: the session is closed now, whatever the calendar says.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt

from tapewatch.sandbox.config import SandboxConfig
from tapewatch.sandbox.pricepath import Floats, PricePath
from tapewatch.sandbox.sessions import (
    NEW_YORK,
    AlwaysOpen,
    Minutes,
    TradingHours,
    from_minute,
    load_sessions,
    to_minute,
)


@dataclass(frozen=True)
class BarTable:
    """Bars as parallel arrays; ``t`` is the bar start in epoch minutes."""

    t: Minutes
    o: Floats
    h: Floats
    l: Floats  # noqa: E741 - Alpaca's field name
    c: Floats
    v: npt.NDArray[np.int64]
    n: npt.NDArray[np.int64]
    vw: Floats

    def __len__(self) -> int:
        return len(self.t)

    @classmethod
    def empty(cls) -> BarTable:
        ints = np.empty(0, dtype=np.int64)
        floats = np.empty(0, dtype=np.float64)
        return cls(ints, floats, floats, floats, floats, ints, ints, floats)

    def take(self, index: slice | npt.NDArray[np.bool_] | npt.NDArray[np.intp]) -> BarTable:
        return BarTable(
            self.t[index],
            self.o[index],
            self.h[index],
            self.l[index],
            self.c[index],
            self.v[index],
            self.n[index],
            self.vw[index],
        )

    def rows(self) -> list[tuple[int, float, float, float, float, int, int, float]]:
        return list(
            zip(
                self.t.tolist(),
                self.o.tolist(),
                self.h.tolist(),
                self.l.tolist(),
                self.c.tolist(),
                self.v.tolist(),
                self.n.tolist(),
                self.vw.tolist(),
                strict=True,
            )
        )


class Market:
    """Clock, prices and minute bars for the configured symbols."""

    def __init__(self, config: SandboxConfig, start_minute: int) -> None:
        self.symbols = config.symbols
        self.sessions = load_sessions(config.calendar)
        self._always = AlwaysOpen()
        self._always_symbols = frozenset(config.always_open)
        self._paths = {s: PricePath(config.seed, s) for s in config.symbols}
        self._fast_forward = config.fast_forward_closed
        self._start = start_minute
        self._overrides: dict[str, list[tuple[int, float]]] = {}
        self.now_minute = self._snap(start_minute)
        self.halted = False

    def reset(self) -> None:
        self._overrides.clear()
        self.halted = False
        self.now_minute = self._snap(self._start)

    def _snap(self, minute: int) -> int:
        if self._fast_forward and not self.sessions.is_open(minute):
            return self.sessions.next_open(minute) or minute
        return minute

    # -- clock -------------------------------------------------------------------------------

    @property
    def now(self) -> datetime:
        return from_minute(self.now_minute)

    def is_open(self) -> bool:
        """Whether the regular session is open (FAKEPACA trades regardless)."""
        return not self.halted and self.sessions.is_open(self.now_minute)

    def trading(self, symbol: str) -> bool:
        """Whether an order for ``symbol`` can execute now (FAKEPACA: unless halted)."""
        return not self.halted and self.hours(symbol).is_open(self.now_minute)

    def close_between(self, before: int, after: int) -> int | None:
        """The first regular-session close in ``(before, after]``: the clock passed it."""
        close = self.sessions.next_close(before)
        return close if close is not None and close <= after else None

    def step(self) -> int:
        """Finish the current minute and move on (over closed hours when fast-forwarding)."""
        finished = self.now_minute
        self.now_minute = self._snap(finished + 1)
        return finished

    def clock(self, precise_now: datetime) -> dict[str, object]:
        """The GET /v2/clock body, in New York time like Alpaca's."""
        now = self.now_minute
        next_open = self.sessions.next_open(now) or now + 24 * 60
        after = next_open if self.halted else now  # closed early: the close after it reopens
        next_close = self.sessions.next_close(after) or next_open + 390
        return {
            "timestamp": precise_now.astimezone(NEW_YORK).isoformat(),
            "is_open": self.is_open(),
            "next_open": from_minute(next_open).astimezone(NEW_YORK).isoformat(),
            "next_close": from_minute(next_close).astimezone(NEW_YORK).isoformat(),
        }

    # -- prices ------------------------------------------------------------------------------

    def knows(self, symbol: str) -> bool:
        return symbol in self._paths

    def hours(self, symbol: str) -> TradingHours:
        return self._always if symbol in self._always_symbols else self.sessions

    def _factors(self, symbol: str, minutes: Minutes) -> Floats:
        factors = np.ones(len(minutes), dtype=np.float64)
        for since, factor in self._overrides.get(symbol, []):
            factors[minutes >= since] = factor
        return factors

    def price(self, symbol: str, minute: int | None = None) -> float:
        """Trade price at the start of ``minute`` (default: now), in cents."""
        at = self.now_minute if minute is None else minute
        raw = self._paths[symbol].price(at)
        factor = float(self._factors(symbol, np.asarray([at], dtype=np.int64))[0])
        return round(raw * factor, 2)

    def set_price(self, symbol: str, price: float) -> None:
        """Rescale ``symbol`` so it trades at ``price`` from the current minute on."""
        if price <= 0:
            raise ValueError("price must be positive")
        raw = self._paths[symbol].price(self.now_minute)
        self._overrides.setdefault(symbol, []).append((self.now_minute, price / raw))

    def lastday_price(self, symbol: str) -> float:
        """Close of the previous regular session (for change_today)."""
        close = self.sessions.previous_close(self.now_minute)
        return self.price(symbol, close) if close is not None else self.price(symbol)

    # -- bars --------------------------------------------------------------------------------

    def minute_bars(self, symbol: str, first: int, stop: int) -> BarTable:
        """Finished 1-minute bars of ``symbol`` starting in ``[first, stop)``."""
        minutes = self.hours(symbol).minutes(first, min(stop, self.now_minute))
        raw = self._paths[symbol].bars(minutes)
        factor = self._factors(symbol, minutes)
        o = np.round(raw.o * factor, 2)
        c = np.round(raw.c * factor, 2)
        h = np.maximum(np.round(raw.h * factor, 2), np.maximum(o, c))
        low = np.minimum(np.round(raw.l * factor, 2), np.minimum(o, c))
        vw = np.clip(np.round((h + low + 2.0 * c) / 4.0, 4), low, h)
        return BarTable(minutes, o, h, low, c, raw.v, raw.n, vw)

    def last_bar_minute(self, symbol: str) -> int | None:
        """Start of the latest finished 1-minute bar of ``symbol``."""
        return self.hours(symbol).last_trading_minute(self.now_minute)


def start_minute(config: SandboxConfig) -> int:
    """Where the market clock starts: the configured start or the wall clock, floored."""
    if config.start is not None:
        return to_minute(config.start)
    return int(config.time_source() // 60)
