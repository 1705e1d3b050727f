"""A ``ConfigError`` as one line, in the spelling of the surface its value came from."""

from __future__ import annotations

from tapewatch.engine.settings.errors import ConfigError
from tapewatch.engine.settings.fields import BY_NAME, Field


def toml_value(value: object) -> str:
    """A value as it would be written in TOML (examples and 'got …' in file messages)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value)) if abs(value) >= 1 else repr(value)
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return str(value)


def _plain(value: object) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _field(name: str) -> Field | None:
    return BY_NAME.get(name)


def name_on(surface: str, name: str) -> str:
    """How a setting is spelt on a surface: ``--rsi-period``, ``strategy.rsi_period``, or the
    environment variable."""
    spec = _field(name)
    if surface == "file" or spec is None:
        return name
    if surface == "env" and spec.env:
        return f"environment variable {spec.env}"
    return spec.flag or spec.key


def _example(surface: str, name: str, value: object) -> str:
    spec = _field(name)
    key = name.split(".", 1)[-1]
    if surface == "env" and spec is not None and spec.env:
        return f"e.g. {spec.env}={_plain(value)}"
    if surface == "flag" and spec is not None and spec.flag:
        return f"e.g. {spec.flag} {_plain(value)}"
    return f"e.g. {key} = {toml_value(value)}"


def render(error: ConfigError) -> str:
    where = error.where
    surface = where.surface
    if error.field is None:
        text = error.reason
    else:
        reason = error.reason
        for i, other in enumerate(error.related):
            reason = reason.replace(f"{{{i}}}", name_on(surface, other))
        text = f"{name_on(surface, error.field)} {reason}"
        if error.example is not None:
            text = f"{text}; {_example(surface, error.field, error.example)}"
    if where.notes:
        text = f"{text} ({', '.join(where.notes)} from {where.path})"
    if surface == "file" and where.path is not None:
        place = f"{where.path}:{where.line}" if where.line else str(where.path)
        text = f"config file {place}: {text}"
    return text
