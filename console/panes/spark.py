"""One-line sparklines as Rich text: cheap enough to redraw every bar (no widget per point)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rich.style import Style
from rich.text import Text

BLOCKS = "▁▂▃▄▅▆▇█"
_PLAIN = Style()


def sparkline(
    values: Sequence[float | None],
    width: int,
    *,
    lo: float | None = None,
    hi: float | None = None,
    style: Callable[[float], Style] | Style = _PLAIN,
) -> Text:
    """The last ``width`` values as block characters; missing values are blank."""
    tail = list(values)[-width:] if width > 0 else []
    present = [v for v in tail if v is not None]
    text = Text(no_wrap=True)
    if not present:
        return text
    low = min(present) if lo is None else lo
    high = max(present) if hi is None else hi
    scale = (high - low) or 1.0
    for v in tail:
        if v is None:
            text.append(" ")
            continue
        level = int((min(max(v, low), high) - low) / scale * (len(BLOCKS) - 1) + 0.5)
        text.append(BLOCKS[level], style=style(v) if callable(style) else style)
    return text


def band_marks(
    values: Sequence[float | None], width: int, low: float, high: float, styles: tuple[Style, Style]
) -> Text:
    """Under an RSI sparkline: ▼ where oversold, ▲ where overbought (shape, not colour)."""
    text = Text(no_wrap=True)
    for v in list(values)[-width:] if width > 0 else []:
        if v is not None and v < low:
            text.append("▼", style=styles[0])
        elif v is not None and v > high:
            text.append("▲", style=styles[1])
        else:
            text.append(" ")
    return text


def histogram(counts: Sequence[int]) -> str:
    """Bucket counts as a row of blocks, scaled to the fullest bucket."""
    top = max(counts, default=0)
    if top <= 0:
        return ""
    return "".join(
        " " if c == 0 else BLOCKS[max(0, min(len(BLOCKS) - 1, round(c / top * (len(BLOCKS) - 1))))]
        for c in counts
    )
