"""The parameters a sweep may vary, parsed from ``--grid`` and ``--range``, and the cells.

A name is any strategy, execution or risk flag of the settings table (``rsi-period``,
``slippage-bps``, ``drawdown-action``…) without its dashes; its type and range come from that
table, so a sweep cannot spell a setting differently from the backtest. A value outside the
field's range, or a combination the config refuses (oversold at or above overbought), is not
an error: the cell is skipped and counted.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from tapewatch.engine.settings.config import EngineConfig
from tapewatch.engine.settings.errors import ConfigError, UsageError
from tapewatch.engine.settings.fields import ENGINE_FIELDS, Field, clip

Value = int | float | str
Params = Mapping[str, Value]

_DATA_FIELDS = ("strategy.symbol", "strategy.timeframe")  # they choose the bars, not a cell

SWEEPABLE: Mapping[str, Field] = MappingProxyType(
    {
        f.flag[2:]: f
        for f in ENGINE_FIELDS
        if f.flag is not None
        and f.name not in _DATA_FIELDS
        and f.table != "account"
        and (f.kind in ("int", "number") or f.choices)
    }
)
"""flag name (``rsi-period``) -> its field, for every setting a sweep may vary."""

MAX_VALUES = 1_000  # per axis: more is a typo (a range belongs in --range)
MAX_CELLS = 100_000


@dataclass(frozen=True, slots=True)
class Axis:
    """One ``--grid`` axis: a setting and the values to try, in the order given."""

    name: str
    values: tuple[Value, ...]


@dataclass(frozen=True, slots=True)
class Span:
    """One ``--range`` for the searches: ``low``..``high`` inclusive, whole numbers for ints."""

    name: str
    low: float
    high: float
    whole: bool


def _field(name: str, flag: str) -> Field:
    spec = SWEEPABLE.get(name)
    if spec is None:
        raise UsageError(
            f"{flag} {clip(name)!r} is not a strategy, execution or risk setting; "
            f"use one of {', '.join(SWEEPABLE)}"
        )
    return spec


def _split(text: str, flag: str, example: str) -> tuple[str, str]:
    name, sep, values = text.partition("=")
    if not sep or not name.strip() or not values.strip():
        raise UsageError(f"{flag} {clip(text)!r} is not NAME=VALUES; e.g. {flag} {example}")
    return name.strip().removeprefix("--"), values.strip()


def parse_value(spec: Field, text: str, flag: str) -> Value:
    """One value typed as its field wants it (range checks come later, per cell)."""
    name = spec.flag[2:] if spec.flag else spec.key
    if spec.choices:
        if text not in spec.choices:
            raise UsageError(
                f"{flag} {name}: {clip(text)!r} is not one of {', '.join(spec.choices)}"
            )
        return text
    if spec.kind == "int":
        try:
            return int(text)
        except ValueError:
            raise UsageError(f"{flag} {name}: {clip(text)!r} is not a whole number") from None
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{flag} {name}: {clip(text)!r} is not a number") from None
    if not math.isfinite(value):
        raise UsageError(f"{flag} {name}: {clip(text)!r} is not a finite number")
    return value


def parse_grid(text: str) -> Axis:
    """``rsi-period=7,14,21`` -> Axis("rsi-period", (7, 14, 21)); duplicates dropped."""
    name, values = _split(text, "--grid", "rsi-period=7,14,21")
    spec = _field(name, "--grid")
    items = [v.strip() for v in values.split(",")]
    if any(not v for v in items):
        raise UsageError(f"--grid {name}: an empty value in {clip(values)!r}; e.g. 7,14,21")
    if len(items) > MAX_VALUES:
        raise UsageError(f"--grid {name}: at most {MAX_VALUES} values (got {len(items)})")
    parsed = [parse_value(spec, v, "--grid") for v in items]
    return Axis(name, tuple(dict.fromkeys(parsed)))


def parse_span(text: str) -> Span:
    """``rsi-period=5:30`` -> Span("rsi-period", 5, 30, whole=True)."""
    name, values = _split(text, "--range", "rsi-period=5:30")
    spec = _field(name, "--range")
    if spec.choices:
        raise UsageError(
            f"--range {name} takes no range (its values are {', '.join(spec.choices)}); "
            f"use --grid {name}={','.join(spec.choices)}"
        )
    low_text, sep, high_text = values.partition(":")
    if not sep:
        raise UsageError(f"--range {name}: {clip(values)!r} is not LOW:HIGH; e.g. 5:30")
    low = parse_value(spec, low_text.strip(), "--range")
    high = parse_value(spec, high_text.strip(), "--range")
    assert not isinstance(low, str) and not isinstance(high, str)
    if not low < high:
        raise UsageError(f"--range {name}: {low:g} must be below {high:g}")
    return Span(name, float(low), float(high), whole=spec.kind == "int")


def check_names(axes: Sequence[Axis], spans: Sequence[Span]) -> None:
    seen: set[str] = set()
    for name in [a.name for a in axes] + [s.name for s in spans]:
        if name in seen:
            raise UsageError(f"{name} is given twice in --grid/--range; give each setting once")
        seen.add(name)


def grid_cells(axes: Sequence[Axis]) -> list[dict[str, Value]]:
    """Every combination of the axes' values, the first axis varying slowest."""
    count = math.prod(len(a.values) for a in axes)
    if count > MAX_CELLS:
        raise UsageError(f"the grid has {count:,} cells, more than {MAX_CELLS:,}; use --search")
    names = [a.name for a in axes]
    return [
        dict(zip(names, combo, strict=True))
        for combo in itertools.product(*[a.values for a in axes])
    ]


def apply(config: EngineConfig, params: Params) -> EngineConfig:
    """``config`` with ``params`` set, validated; ``ConfigError`` when the cell is invalid."""
    sections: dict[str, dict[str, Any]] = {}
    for name, value in params.items():
        spec = SWEEPABLE[name]
        sections.setdefault(spec.table, {})[spec.key] = value
    changed: dict[str, Any] = {
        table: replace(getattr(config, table), **values) for table, values in sections.items()
    }
    return replace(config, **changed).validate()


def valid(config: EngineConfig, params: Params) -> EngineConfig | None:
    """The cell's config, or None when the settings refuse it (skipped, counted)."""
    try:
        return apply(config, params)
    except ConfigError:
        return None


def toml_block(params: Params) -> str:
    """The parameters as config.toml tables (``[strategy]`` first), ready to paste."""
    from tapewatch.engine.settings.render import toml_value

    tables: dict[str, list[str]] = {}
    for name, value in params.items():
        spec = SWEEPABLE[name]
        tables.setdefault(spec.table, []).append(f"{spec.key} = {toml_value(value)}")
    order = ("strategy", "execution", "risk")
    blocks = [f"[{t}]\n" + "\n".join(tables[t]) for t in order if t in tables]
    return "\n\n".join(blocks)
