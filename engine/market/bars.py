"""Columnar bars: numpy columns in memory, ``Bar`` objects made lazily one chunk at a time.

A million-bar backtest must fit in a few hundred MB, and a million frozen ``Bar`` objects alone
would cost ~200 MB. So history is held as six numpy columns (48 bytes a bar) and converted to
``Bar`` objects in small chunks only while a consumer iterates.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from tapewatch.engine.model.types import Bar

_NS_PER_SEC = 1_000_000_000
_CHUNK = 8192
_FIELDS = ("symbol", "ts", "open", "high", "low", "close", "volume")


def _slot_setters() -> tuple[Callable[[Any, Any], None], ...] | None:
    """Slot setters for ``Bar`` if it is still the plain 7-field slotted dataclass, else None.

    A frozen dataclass ``__init__`` goes through ``object.__setattr__`` per field and costs
    ~1.2 µs a bar; setting the slots directly costs about half. The shortcut is used only while
    ``Bar`` has exactly these fields, slots and no ``__post_init__`` (a test pins equality with
    the constructor), so a future change to ``Bar`` silently falls back to the constructor.
    """
    names = tuple(f.name for f in dataclasses.fields(Bar))
    if names != _FIELDS or hasattr(Bar, "__post_init__") or "__slots__" not in Bar.__dict__:
        return None
    setters = []
    for name in names:
        descriptor = Bar.__dict__.get(name)
        setter = getattr(descriptor, "__set__", None)
        if setter is None:
            return None
        setters.append(setter)
    return tuple(setters)


_SETTERS = _slot_setters()


def _to_float64(values: Any) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=np.float64)


@dataclass(frozen=True, eq=False)
class BarArrays:
    """Bars of one symbol as columns; ``ts_ns`` is the bar START in UTC epoch nanoseconds."""

    symbol: str
    ts_ns: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "ts_ns", np.ascontiguousarray(self.ts_ns, dtype=np.int64))
        for name in ("open", "high", "low", "close", "volume"):
            object.__setattr__(self, name, _to_float64(getattr(self, name)))
        n = len(self.ts_ns)
        for name in ("open", "high", "low", "close", "volume"):
            column = getattr(self, name)
            if column.ndim != 1 or len(column) != n:
                raise ValueError(f"column {name} has shape {column.shape}, expected ({n},)")

    @classmethod
    def empty(cls, symbol: str) -> BarArrays:
        f = np.empty(0, dtype=np.float64)
        return cls(symbol, np.empty(0, dtype=np.int64), f, f, f, f, f)

    def __len__(self) -> int:
        return len(self.ts_ns)

    def slice(self, start: int, stop: int | None = None) -> BarArrays:
        """A view of bars ``[start, stop)`` (no copy)."""
        s = slice(start, stop)
        return BarArrays(
            self.symbol,
            self.ts_ns[s],
            self.open[s],
            self.high[s],
            self.low[s],
            self.close[s],
            self.volume[s],
        )

    @classmethod
    def concat(cls, parts: Sequence[BarArrays]) -> BarArrays:
        """Join chunks of one symbol end to end (ordering is the caller's business)."""
        if not parts:
            raise ValueError("BarArrays.concat needs at least one part")
        symbol = parts[0].symbol
        for part in parts:
            if part.symbol != symbol:
                raise ValueError(f"cannot concat bars of {part.symbol!r} onto {symbol!r}")
        return cls(
            symbol,
            np.concatenate([p.ts_ns for p in parts]),
            np.concatenate([p.open for p in parts]),
            np.concatenate([p.high for p in parts]),
            np.concatenate([p.low for p in parts]),
            np.concatenate([p.close for p in parts]),
            np.concatenate([p.volume for p in parts]),
        )

    def timestamps(self) -> list[datetime]:
        """All bar starts as tz-aware UTC datetimes (for small arrays: charts, tests)."""
        return _datetimes(self.ts_ns)

    def bar(self, i: int) -> Bar:
        """Bar ``i`` (negative indexes count from the end)."""
        ts = int(self.ts_ns[i])
        return Bar(
            self.symbol,
            datetime_from_ns(ts),
            float(self.open[i]),
            float(self.high[i]),
            float(self.low[i]),
            float(self.close[i]),
            float(self.volume[i]),
        )

    def iter_bars(self, start: int = 0, stop: int | None = None) -> Iterator[Bar]:
        """Yield ``Bar`` objects for ``[start, stop)``, built a chunk at a time (flat memory)."""
        n = len(self)
        start, stop, _ = slice(start, stop).indices(n)
        for lo in range(start, stop, _CHUNK):
            hi = min(lo + _CHUNK, stop)
            yield from self._make_bars(lo, hi)

    def _make_bars(self, lo: int, hi: int) -> list[Bar]:
        stamps = _datetimes(self.ts_ns[lo:hi])
        opens = self.open[lo:hi].tolist()
        highs = self.high[lo:hi].tolist()
        lows = self.low[lo:hi].tolist()
        closes = self.close[lo:hi].tolist()
        volumes = self.volume[lo:hi].tolist()
        symbol = self.symbol
        if _SETTERS is None:
            return list(map(Bar, [symbol] * (hi - lo), stamps, opens, highs, lows, closes, volumes))
        s_sym, s_ts, s_o, s_h, s_l, s_c, s_v = _SETTERS
        new = object.__new__
        out: list[Bar] = []
        append = out.append
        for ts, o, h, lo_, c, v in zip(stamps, opens, highs, lows, closes, volumes, strict=True):
            bar = new(Bar)
            s_sym(bar, symbol)
            s_ts(bar, ts)
            s_o(bar, o)
            s_h(bar, h)
            s_l(bar, lo_)
            s_c(bar, c)
            s_v(bar, v)
            append(bar)
        return out


def _datetimes(ts_ns: np.ndarray) -> list[datetime]:
    """Epoch nanoseconds -> tz-aware UTC datetimes (microsecond precision, like datetime)."""
    if len(ts_ns) and bool(np.all(ts_ns % _NS_PER_SEC == 0)):
        # Whole seconds (every real bar): fromtimestamp on ints is the fastest exact path.
        seconds = (ts_ns // _NS_PER_SEC).tolist()
        return list(map(datetime.fromtimestamp, seconds, [UTC] * len(seconds)))
    micros = (ts_ns // 1000).tolist()
    return [
        datetime.fromtimestamp(us // 1_000_000, UTC).replace(microsecond=us % 1_000_000)
        for us in micros
    ]


def ns_from_datetime(when: datetime) -> int:
    """A tz-aware datetime as UTC epoch nanoseconds (exact, no float rounding)."""
    if when.tzinfo is None:
        raise ValueError(f"{when!r} is naive; engine times must be timezone-aware UTC")
    delta = when - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * _NS_PER_SEC + delta.microseconds * 1000


def datetime_from_ns(ts_ns: int) -> datetime:
    """UTC epoch nanoseconds as a tz-aware datetime (truncated to microseconds).

    Scalar arithmetic on purpose: this sits on the calendar's and the backtest's paths, where a
    one-element numpy round trip cost ~10 µs a call.
    """
    seconds, rest = divmod(int(ts_ns), _NS_PER_SEC)
    when = datetime.fromtimestamp(seconds, UTC)
    return when.replace(microsecond=rest // 1000) if rest else when


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
