"""Durations a user writes in settings: ``15m``, ``90s``, ``1h``, a bare number of minutes, or
``off``."""

from __future__ import annotations

import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h)?\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1.0, "m": 60.0, "h": 3600.0}
OFF = "off"


def parse_duration(text: str) -> float | None:
    """``"15m"`` -> 900.0, ``"90s"``, ``"1h"``, a bare number of minutes; ``"off"`` -> None.
    ``ValueError`` for anything else (the settings turn it into one clear line)."""
    if text.strip().lower() == OFF:
        return None
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(text)
    amount = float(match.group(1))
    seconds = amount * _UNIT_SECONDS[(match.group(2) or "m").lower()]
    if seconds <= 0:
        raise ValueError(text)
    return seconds


def describe(seconds: float) -> str:
    minutes = seconds / 60.0
    return f"{minutes:g} min" if seconds >= 60 else f"{seconds:g} s"
