"""Walk-forward windows: ``train=6M,test=1M`` (months, days, weeks, years) or bar counts.

Windows roll forward by the test length: train on [t, t+train), test on [t+train,
t+train+test), then move t on by test, so the test windows tile the data end to end without
overlap and every test bar comes after the bars its parameters were chosen on. Calendar
lengths start at the month (or day) of the first bar, in UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from tapewatch.engine.settings.errors import UsageError
from tapewatch.engine.settings.fields import clip

_LENGTH = re.compile(r"^(\d{1,7})([MDWY]?)$")
MIN_TEST_BARS = 2


@dataclass(frozen=True, slots=True)
class Length:
    count: int
    unit: str  # "" (bars), "D", "W", "M" or "Y"

    def describe(self) -> str:
        return f"{self.count}{self.unit}" if self.unit else f"{self.count} bars"


@dataclass(frozen=True, slots=True)
class Window:
    """Bar positions: training [train_start, train_stop), test [train_stop, test_stop)."""

    train_start: int
    train_stop: int
    test_stop: int

    @property
    def test_start(self) -> int:
        return self.train_stop


@dataclass(frozen=True, slots=True)
class WalkForward:
    train: Length
    test: Length

    def describe(self) -> str:
        return f"train={self.train.describe()},test={self.test.describe()}"

    def windows(self, ts_ns: np.ndarray) -> list[Window]:
        n = len(ts_ns)
        if self.train.unit == "":
            step, first = self.test.count, self.train.count
            out = []
            start = 0
            while start + first < n:
                stop = min(n, start + first + step)
                if stop - (start + first) >= MIN_TEST_BARS:
                    out.append(Window(start, start + first, stop))
                start += step
            return out
        out = []
        k = 0
        train_units, test_units = _units(self.train), _units(self.test)
        while True:
            t0 = _boundary(ts_ns, self.train.unit, k * test_units)
            t1 = _boundary(ts_ns, self.train.unit, k * test_units + train_units)
            t2 = _boundary(ts_ns, self.train.unit, k * test_units + train_units + test_units)
            a, b, c = np.searchsorted(ts_ns, [t0, t1, t2]).tolist()
            if b >= n:
                return out
            if c - b >= MIN_TEST_BARS and b > a:
                out.append(Window(int(a), int(b), int(c)))
            k += 1


def _units(length: Length) -> int:
    """The length in its base unit: months for M and Y, days for D and W."""
    return length.count * {"M": 1, "Y": 12, "D": 1, "W": 7}[length.unit]


def _boundary(ts_ns: np.ndarray, unit: str, units: int) -> int:
    first = np.datetime64(int(ts_ns[0]), "ns")
    if unit in ("M", "Y"):
        month = first.astype("datetime64[M]") + units
        return int(month.astype("datetime64[ns]").astype(np.int64))
    day = first.astype("datetime64[D]") + units
    return int(day.astype("datetime64[ns]").astype(np.int64))


def parse_walk_forward(text: str) -> WalkForward:
    """``train=6M,test=1M`` or ``train=5000,test=1000``; both in bars or both in time."""
    parts: dict[str, Length] = {}
    for item in text.split(","):
        name, sep, value = item.strip().partition("=")
        match = _LENGTH.match(value.strip().upper()) if sep else None
        if name.strip() not in ("train", "test") or match is None:
            raise UsageError(
                f"--walk-forward {clip(text)!r} is not train=LENGTH,test=LENGTH; "
                "e.g. train=6M,test=1M (M months, D days, W weeks, Y years) "
                "or train=5000,test=1000 (bars)"
            )
        parts[name.strip()] = Length(int(match.group(1)), match.group(2))
    if set(parts) != {"train", "test"}:
        raise UsageError("--walk-forward needs both train= and test=; e.g. train=6M,test=1M")
    train, test = parts["train"], parts["test"]
    if train.count < 1 or test.count < 1:
        raise UsageError("--walk-forward lengths must be at least 1; e.g. train=6M,test=1M")
    calendar = {"M", "Y"}, {"D", "W"}
    if (train.unit == "") != (test.unit == "") or (
        train.unit and not any(train.unit in c and test.unit in c for c in calendar)
    ):
        raise UsageError(
            "--walk-forward: give train and test in the same kind of length "
            "(both months/years, both days/weeks, or both bar counts)"
        )
    return WalkForward(train, test)
