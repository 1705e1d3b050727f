"""Number and time formatting shared by the panes (one place, so every pane reads alike).

Times shown are the engine clock's, in New York time: in the demo that is simulated time, so
the screen never depends on the wall clock.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

ET = ZoneInfo("America/New_York")
DASH = "—"


def money(value: float | None, *, sign: bool = False) -> str:
    if value is None:
        return DASH
    text = f"{value:+,.2f}" if sign else f"{value:,.2f}"
    return text.replace("+", "+$").replace("-", "-$") if sign else f"${text}"


def price(value: float | None) -> str:
    return DASH if value is None else f"{value:,.2f}"


QTY_PLACES = 4
"""Every fractional share quantity on screen has this many places (9 are kept internally)."""


def qty(value: float | None) -> str:
    """Shares, the one way every pane, dialog and toast shows them: whole numbers plainly,
    fractions to exactly ``QTY_PLACES`` places; a holding too small for that says so."""
    if value is None:
        return DASH
    if abs(value - round(value)) < 1e-9:
        return f"{value:,.0f}"
    smallest = 10.0**-QTY_PLACES
    if abs(value) < smallest / 2:
        return f"{'-' if value < 0 else ''}<{smallest:.{QTY_PLACES}f}"
    return f"{value:,.{QTY_PLACES}f}"


def pct(value: float | None, *, sign: bool = True) -> str:
    if value is None:
        return DASH
    return f"{value:+.2f}%" if sign else f"{value:.2f}%"


def duration(seconds: float | None) -> str:
    """A latency: µs below a millisecond, ms below a second, else seconds."""
    if seconds is None:
        return DASH
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f}µs"
    if seconds < 0.01:
        return f"{seconds * 1e3:.1f}ms"
    if seconds < 1.0:
        return f"{seconds * 1e3:.0f}ms"
    return f"{seconds:.2f}s"


def span(delta: timedelta) -> str:
    """A countdown such as '2h 05m' or '3d 17h' (never negative)."""
    total = max(0, int(delta.total_seconds()))
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours:02d}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {rest % 60:02d}s"


def et(when: datetime | None, fmt: str = "%H:%M:%S") -> str:
    return DASH if when is None else when.astimezone(ET).strftime(fmt)
