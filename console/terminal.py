"""What the terminal can show, decided once at start-up from its environment.

Over SSH ``TERM`` is forwarded and ``COLORTERM`` is not, so ``TERM=xterm`` means 16 colours:
the theme's pale text tints then round to white and ``▶ ACTIVE`` loses its green. In 16
colours the console uses the terminal's own ANSI colours (the palette picks them by hue, see
``panes.base``). ``TERM=linux`` (the Linux console's font) and the ``vt*`` family have no
braille, block or rounded box glyphs: everything drawn is translated to ASCII
(``glyphs.AsciiFilter``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from textual.app import App
from textual.filter import LineFilter

from tapewatch.console.glyphs import AsciiFilter

ASCII_TERMS = re.compile(r"(linux|vt\d+|dumb|ansi|cons25)([-+.].*)?")
"""``TERM`` values whose fonts lack braille and block glyphs: the Linux console, VT100 & co."""
_ASCII_FILTERS: tuple[LineFilter, ...] = (AsciiFilter(),)


@dataclass(frozen=True, slots=True)
class Terminal:
    """The glyphs and colour depth to draw for."""

    ascii: bool = False  # braille, blocks and box drawing translated to ASCII
    colours: int = 16_777_216  # 16, 256 or 16,777,216 (truecolor)

    @property
    def ansi16(self) -> bool:
        """Only the 16 ANSI colours: draw with them rather than let RGB round to grey."""
        return self.colours <= 16

    @classmethod
    def detect(cls, env: Mapping[str, str]) -> Terminal:
        """The terminal described by ``env`` (``os.environ`` at start-up; a dict in tests)."""
        term = env.get("TERM", "").strip().lower()
        colorterm = env.get("COLORTERM", "").strip().lower()
        if colorterm in ("truecolor", "24bit") or "direct" in term or "truecolor" in term:
            colours = 16_777_216
        elif "256" in term:
            colours = 256
        else:
            colours = 16
        if not term and not colorterm:  # no TERM at all (Windows): nothing to go on
            return cls()
        return cls(ascii=ASCII_TERMS.fullmatch(term) is not None, colours=colours)

    @classmethod
    def for_app(cls, given: Terminal | None, headless: bool, env: Mapping[str, str]) -> Terminal:
        """``given`` if any; else a headless run (tests, screenshots) draws everything, and a
        real terminal is read from ``env``."""
        if given is not None:
            return given
        return cls() if headless else cls.detect(env)

    @property
    def filters(self) -> Sequence[LineFilter]:
        """Line filters to add to Textual's (the app's ``get_line_filters``)."""
        return _ASCII_FILTERS if self.ascii else ()

    def apply(self, app: App[Any]) -> None:
        """Set the app up for this terminal (call once, before the first frame)."""
        if self.ansi16:
            app.ansi_color = True  # ANSI colours pass to the terminal as they are
