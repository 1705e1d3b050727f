"""ASCII fallbacks for terminals without braille, block or box glyphs (``TERM=linux``, ``vt100``).

Every character is replaced by one ASCII character of the same width, so spans, columns and
borders stay where they were: the panes, plotext's chart and Textual's own widgets (borders,
tabs, scrollbars, the footer) are all drawn as usual and translated on the way out by
``AsciiFilter``, a Textual line filter. Sparkline blocks become a ramp (``.,:-=+*#``), braille
dots a ``'``/``-``/``.``/``|`` by where the dots sit, box drawing ``+ - |``.
"""

from __future__ import annotations

import unicodedata

from rich.cells import cell_len
from rich.segment import Segment
from textual.color import Color
from textual.filter import LineFilter

RAMP = ".,:-=+*#"  # ▁▂▃▄▅▆▇█, lowest to highest
_FIXED = {
    **{chr(0x2581 + i): RAMP[i] for i in range(8)},
    "▀": "-",
    "▔": "-",
    "░": ".",
    "▒": ":",
    "▓": "%",
    "▶": ">",
    "►": ">",
    "▸": ">",
    "◀": "<",
    "◂": "<",
    "▲": "^",
    "▴": "^",
    "▼": "v",
    "▾": "v",
    "■": "#",
    "□": "o",
    "●": "*",
    "○": "o",
    "◆": "*",
    "→": ">",
    "←": "<",
    "↑": "^",
    "↓": "v",
    "↔": "-",
    "↳": ">",
    "·": ".",
    "•": "*",
    "…": ".",
    "—": "-",
    "–": "-",
    "‖": "|",
    "┈": "-",  # the chart's dotted entry line ("QUADRUPLE" would read as UP in _box)
    "┊": "|",
    "×": "x",
    "µ": "u",
    "✓": "+",
    "✔": "+",
    "✗": "x",
    "✘": "x",
    "°": "o",
    "±": "+",
    "≤": "<",
    "≥": ">",
    "≈": "~",
    "‘": "'",
    "’": "'",
    "“": '"',
    "”": '"',
    "\u00a0": " ",
}
# Braille dot bits by row (dots 1/4, 2/5, 3/6, 7/8).
_BRAILLE_ROWS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))


def _braille(code: int) -> str:
    rows = [r for r, bits in enumerate(_BRAILLE_ROWS) if code & (bits[0] | bits[1])]
    if not rows:
        return " "
    if rows[-1] - rows[0] >= 2:
        return "|"
    middle = sum(rows) / len(rows)
    return "'" if middle < 1 else "." if middle >= 2 else "-"


def _box(name: str) -> str:
    if "DIAGONAL" in name:
        return "X" if "CROSS" in name else "/" if "UPPER RIGHT" in name else "\\"
    across = any(w in name for w in ("HORIZONTAL", "LEFT", "RIGHT"))
    down = any(w in name for w in ("VERTICAL", "UP", "DOWN"))
    return "+" if across == down else "-" if across else "|"


def _block(char: str, name: str) -> str:
    if "QUADRANT" in name:
        return ":"
    if "LEFT" in name or "RIGHT" in name:  # ▏▎▍▌▋▊▉ ▐ ▕: vertical bars
        return "|"
    return "#"


def ascii_for(char: str) -> str:
    """One character's ASCII stand-in, as many columns wide as the character."""
    if char.isascii():
        return char
    fixed = _FIXED.get(char)
    if fixed is not None:
        return fixed
    code = ord(char)
    if 0x2800 <= code <= 0x28FF:
        return _braille(code - 0x2800)
    name = unicodedata.name(char, "")
    if 0x2500 <= code <= 0x257F:
        return _box(name)
    if 0x2580 <= code <= 0x259F:
        return _block(char, name)
    decomposed = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
    if len(decomposed) == 1:  # é -> e, ﬁ stays unknown
        return decomposed
    return "?" * max(1, cell_len(char))


class _Table(dict[int, str]):
    """``str.translate`` table that works out and remembers each new character."""

    def __missing__(self, code: int) -> str:
        replacement = self[code] = ascii_for(chr(code))
        return replacement


_TABLE = _Table()


def to_ascii(text: str) -> str:
    """``text`` with every non-ASCII character replaced, column for column."""
    return text if text.isascii() else text.translate(_TABLE)


class AsciiFilter(LineFilter):
    """A Textual line filter: everything drawn reaches the terminal as ASCII."""

    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        return [
            segment if segment.text.isascii() else Segment(to_ascii(segment.text), *segment[1:])
            for segment in segments
        ]
