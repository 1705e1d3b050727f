"""A deterministic minute-by-minute price path, computable at any minute without history.

The log price is a sum of interpolated hash noise at octave time scales (1 minute to ~11 days),
so any minute's price is a pure function of (seed, symbol, minute). That makes bars identical
whatever range or page a client asks for, and a rerun with the same seed gives the same bars.
The path wanders roughly ±10% around the symbol's base price and never drifts away.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tapewatch.sandbox.sessions import Minutes

Floats = npt.NDArray[np.float64]

_OCTAVES = tuple(1 << k for k in range(15))
_SIGMA = 0.0006  # log-price amplitude of the 1-minute octave
_CHUNK = 20_000
_SCALES = np.asarray(_OCTAVES, dtype=np.int64)[:, None]
_AMPLITUDES = _SIGMA * np.sqrt(_SCALES.astype(np.float64))
_WICK = 0.0005
_BASE_PRICE = {"SPY": 450.0, "AAPL": 190.0, "FAKEPACA": 100.0}
_BASE_VOLUME = {"SPY": 20_000, "AAPL": 8_000, "FAKEPACA": 300}
_U64 = np.uint64


def _mix(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """splitmix64 finaliser: a cheap, well-spread 64-bit hash, vectorised."""
    with np.errstate(over="ignore"):
        z = x + _U64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> _U64(27))) * _U64(0x94D049BB133111EB)
        return z ^ (z >> _U64(31))


def _key(*parts: object) -> npt.NDArray[np.uint64]:
    """A 64-bit stream key from stable text (Python's own hash() is salted per process)."""
    text = ":".join(str(p) for p in parts).encode()
    return _mix(np.asarray([zlib.crc32(text) | (zlib.adler32(text) << 32)], dtype=np.uint64))


def _uniform(key: npt.NDArray[np.uint64], index: Minutes) -> Floats:
    """Uniform [0, 1) values, one per index, fixed by ``key`` (broadcast against ``index``)."""
    hashed = _mix(index.astype(np.uint64) ^ key)
    return (hashed >> _U64(11)).astype(np.float64) / float(1 << 53)


def base_price(symbol: str) -> float:
    return _BASE_PRICE.get(symbol, 20.0 + zlib.crc32(symbol.encode()) % 400)


@dataclass(frozen=True)
class RawBars:
    """Unrounded 1-minute bars at minutes ``t`` (bar start), before any price override."""

    t: Minutes
    o: Floats
    h: Floats
    l: Floats  # noqa: E741 - Alpaca's field name
    c: Floats
    v: npt.NDArray[np.int64]
    n: npt.NDArray[np.int64]


class PricePath:
    """Prices and minute bars of one symbol under one seed."""

    def __init__(self, seed: int, symbol: str) -> None:
        self.symbol = symbol
        self._base = base_price(symbol)
        self._volume = _BASE_VOLUME.get(symbol, 5_000)
        keys = [_key(seed, symbol, "octave", s)[0] for s in _OCTAVES]
        self._octave_keys = np.asarray(keys, dtype=np.uint64)[:, None]
        self._keys = {name: _key(seed, symbol, name) for name in ("high", "low", "vol", "count")}

    def prices(self, minutes: Minutes) -> Floats:
        """Price at the start of each minute (the previous minute's close)."""
        if len(minutes) > _CHUNK:  # bound the (octaves x minutes) temporaries
            parts = [self.prices(minutes[i : i + _CHUNK]) for i in range(0, len(minutes), _CHUNK)]
            return np.concatenate(parts)
        grid = minutes[None, :]
        cell = grid // _SCALES  # one row per octave
        frac = (grid - cell * _SCALES).astype(np.float64) / _SCALES
        a = _uniform(self._octave_keys, cell) * 2.0 - 1.0
        b = _uniform(self._octave_keys, cell + 1) * 2.0 - 1.0
        smooth = frac * frac * (3.0 - 2.0 * frac)
        log_offset = (_AMPLITUDES * (a + (b - a) * smooth)).sum(axis=0)
        return np.asarray(self._base * np.exp(log_offset), dtype=np.float64)

    def price(self, minute: int) -> float:
        return float(self.prices(np.asarray([minute], dtype=np.int64))[0])

    def bars(self, minutes: Minutes) -> RawBars:
        both = self.prices(np.concatenate([minutes, minutes + 1]))
        o, c = both[: len(minutes)], both[len(minutes) :]
        h = np.maximum(o, c) * (1.0 + _WICK * _uniform(self._keys["high"], minutes))
        low = np.minimum(o, c) * (1.0 - _WICK * _uniform(self._keys["low"], minutes))
        v = np.rint(self._volume * (0.4 + 1.2 * _uniform(self._keys["vol"], minutes)))
        per_trade = 40.0 + 80.0 * _uniform(self._keys["count"], minutes)
        n = np.maximum(1, np.rint(v / per_trade))
        return RawBars(minutes, o, h, low, c, v.astype(np.int64), n.astype(np.int64))
