"""The demo's speed ladder: the speeds ``+`` and ``-`` step through, and how one reads.

Fixed rungs instead of doubling (which gave ×39.0625 and ×2.44141): a speed given on the
command line between two rungs steps to the next rung up or down. The top rung is the replay's
fastest paced speed, shown as "max".
"""

from __future__ import annotations

SPEED_LADDER: tuple[float, ...] = (1.0, 5.0, 15.0, 60.0, 300.0, 1200.0, 10_000.0)
MAX_SPEED = SPEED_LADDER[-1]
DEFAULT_SPEED = 60.0


def step_speed(current: float | None, *, up: bool) -> float | None:
    """The next rung above (or below) ``current``; None when there is none."""
    speed = DEFAULT_SPEED if current is None else current
    if up:
        return next((rung for rung in SPEED_LADDER if rung > speed), None)
    return next((rung for rung in reversed(SPEED_LADDER) if rung < speed), None)


def speed_label(speed: float) -> str:
    """How a speed reads: ×60, ×1200, ×10000 (max)."""
    return f"×{speed:g} (max)" if speed >= MAX_SPEED else f"×{speed:g}"
