"""Events to JSON and back, generically, so a new event class needs no serialisation code.

The shape of each value is read from the dataclass's type hints: nested dataclasses become
objects, tuples become arrays, StrEnums their value, datetimes ISO 8601 with their UTC offset,
floats ``repr``-exact numbers. Decoding walks the same hints, so ``event_from_json(e.kind,
event_to_json(e)) == e`` exactly. Naive datetimes are refused: the journal never stores a time
whose zone is a guess.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from datetime import datetime
from enum import Enum
from functools import cache
from typing import Any, TypeVar, Union

from tapewatch.engine.model.events import EVENT_TYPES, Event


class UnknownEventError(ValueError):
    """The record names an event kind or field this version does not know (a newer writer)."""


_NONE = type(None)
T = TypeVar("T")


@cache
def _field_hints(cls: type) -> tuple[tuple[str, Any], ...]:
    """(name, resolved type) of each init field; cached because get_type_hints is slow."""
    hints = typing.get_type_hints(cls)
    return tuple((f.name, hints[f.name]) for f in dataclasses.fields(cls) if f.init)


def _encode(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: journaled times must be timezone-aware")
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {name: _encode(getattr(value, name)) for name, _ in _field_hints(type(value))}
    if isinstance(value, tuple | list):
        return [_encode(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _encode(item) for key, item in value.items()}
    raise TypeError(f"cannot serialise {type(value).__name__} value {value!r}")


def _decode(hint: Any, raw: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin is Union or origin is types.UnionType:
        args = typing.get_args(hint)
        if raw is None and _NONE in args:
            return None
        concrete = [arg for arg in args if arg is not _NONE]
        if len(concrete) == 1:
            return _decode(concrete[0], raw)
        raise TypeError(f"cannot decode ambiguous union {hint!r}")
    if origin is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(args[0], item) for item in raw)
        return tuple(_decode(arg, item) for arg, item in zip(args, raw, strict=True))
    if origin is list:
        (arg,) = typing.get_args(hint)
        return [_decode(arg, item) for item in raw]
    if origin is dict:
        _, value_hint = typing.get_args(hint)
        return {key: _decode(value_hint, item) for key, item in raw.items()}
    if hint is Any or raw is None:
        return raw
    if hint is float:
        return float(raw)
    if hint is datetime:
        return datetime.fromisoformat(raw)
    if isinstance(hint, type):
        if issubclass(hint, Enum):
            return hint(raw)
        if dataclasses.is_dataclass(hint):
            return _build(hint, raw)
    return raw


def _build(cls: type, raw: dict[str, Any]) -> Any:
    hints = _field_hints(cls)
    known = {name for name, _ in hints}
    extra = raw.keys() - known
    if extra:
        raise UnknownEventError(f"{cls.__name__} has no field(s) {', '.join(sorted(extra))}")
    kwargs = {name: _decode(hint, raw[name]) for name, hint in hints if name in raw}
    return cls(**kwargs)


def to_data(value: Any) -> Any:
    """Any frozen dataclass (an event, a snapshot, a command) as JSON-compatible data."""
    return _encode(value)


def from_data(cls: type[T], raw: dict[str, Any]) -> T:
    """Rebuild a dataclass of ``cls`` from ``to_data`` output, walking its type hints."""
    built: T = _build(cls, raw)
    return built


def event_to_json(event: Event) -> str:
    """Compact JSON for one event (its ``kind`` is stored beside it, not inside)."""
    return json.dumps(_encode(event), separators=(",", ":"), ensure_ascii=False)


def event_from_json(kind: str, text: str) -> Event:
    """Rebuild the event of ``kind`` from ``text``; UnknownEventError for a newer writer's data."""
    cls = EVENT_TYPES.get(kind)
    if cls is None:
        raise UnknownEventError(f"unknown event kind {kind!r}")
    raw = json.loads(text)
    if not isinstance(raw, dict):
        raise ValueError(f"{kind} payload is not a JSON object")
    event: Event = _build(cls, raw)
    return event
