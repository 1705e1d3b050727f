"""A candlestick chart widget drawn by plotext, sized to the widget, coloured by the theme.

plotext builds an ANSI picture; Rich parses it back into styled text and the candle and SMA
colours are swapped for the theme's (``chart-up``/``chart-down``/``chart-sma``). Without colour
(NO_COLOR) the candles switch to the OHLC style, whose open/close ticks show direction by shape.
plotext is imported on first draw (it costs ~0.2 s), never before the first frame. The chart is
rebuilt whenever the widget's size changes (the size is part of its cache key). A rebuild (tens
of milliseconds of plotext) runs in a thread, on a copy of the data taken on the event loop, and
the last picture stays on screen until the new one is ready: the loop keeps answering keys and
the probe meanwhile (plotext gives the GIL back every few milliseconds).

Fills are marked where they happened: ▲ a buy, ▼ a sell, at the fill's price in the bar whose
time span holds the fill's time (a simulated fill's time is the open it was priced at, so it
lands on that bar). A dotted line marks the open position's average entry price. Shapes, not
only colours, tell buy from sell (``TERM=linux`` turns them into ``^`` and ``v``).
"""

from __future__ import annotations

import contextlib
import threading
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rich.style import Style
from rich.text import Span, Text
from textual.widget import Widget

from tapewatch.console.format import ET
from tapewatch.engine.api.types import Bar

# plotext's fixed candle colours (standard 2 = green, 1 = red) and the colour we give the SMA
# line through a private plotext theme; each is swapped for the tapewatch theme's colour.
_UP, _DOWN, _SMA = 2, 1, 13
_BUY, _SELL, _ENTRY = 14, 9, 11  # fill markers and the average entry line
BUY_MARK, SELL_MARK = "▲", "▼"
_PLOTEXT_THEME = "tapewatch"
_Y_LABEL = 8  # room plotext keeps for y tick labels and the frame


_registered = False
_BUILD_LOCK = threading.Lock()  # plotext draws on one global figure: one build at a time


def _plotext() -> Any:
    global _registered
    import plotext

    if not _registered:
        plotext.add_theme(_PLOTEXT_THEME, sequence=[_SMA])
        # The widget sizes the chart. plotext would cap it at the terminal size it read once,
        # at import: a widened window kept a narrow chart (and tests saw 80 columns).
        plotext.terminal.limit(False, False)
        _registered = True
    return plotext


def _tick_labels(times: Sequence[datetime], count: int) -> tuple[list[int], list[str]]:
    n = len(times)
    if n == 0 or count <= 0:
        return [], []
    step = max(1, (n - 1) // max(1, count - 1))
    positions = list(range(0, n, step))
    labels = []
    last_day = None
    for i in positions:
        local = times[i].astimezone(ET)
        day = local.date()
        labels.append(
            local.strftime("%b %d" if last_day is not None and day != last_day else "%H:%M")
        )
        last_day = day
    return positions, labels


@dataclass(frozen=True, slots=True)
class Mark:
    """A fill to mark: when, which way, at what price."""

    ts: datetime
    side: str  # "buy" or "sell"
    price: float


@dataclass(frozen=True, slots=True)
class ChartData:
    """What one picture is built from, copied on the event loop for the build thread."""

    bars: tuple[Bar, ...]
    sma: tuple[float | None, ...]
    styles: tuple[Style, Style, Style]
    mark_styles: tuple[Style, Style, Style]
    marks: tuple[Mark, ...]
    entry: float | None
    mono: bool


def place_marks(bars: Sequence[Bar], marks: Sequence[Mark]) -> list[tuple[int, Mark]]:
    """(bar index, mark) for each mark inside the bars' time span.

    A mark belongs to the last bar that opened at or before it; one older than the first bar,
    or later than the newest bar's end (its bar has not closed yet), is left out.
    """
    if not bars:
        return []
    opens = [b.ts for b in bars]
    step = opens[-1] - opens[-2] if len(opens) >= 2 else None
    placed = []
    for mark in marks:
        i = bisect_right(opens, mark.ts) - 1
        if i < 0:
            continue
        if i == len(opens) - 1 and (step is None or mark.ts >= opens[-1] + step):
            continue
        placed.append((i, mark))
    return placed


class CandleChart(Widget):
    """Recent bars as candles with the SMA line over them."""

    DEFAULT_CSS = """
    CandleChart { width: 1fr; height: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._bars: list[Bar] = []
        self._sma: list[float | None] = []
        self._styles: tuple[Style, Style, Style] = (Style(), Style(), Style())
        self._marks: list[Mark] = []
        self._entry: float | None = None
        self._mark_styles: tuple[Style, Style, Style] = (Style(), Style(), Style())
        self._mono = False
        self._key: tuple[object, ...] | None = None  # what the cached picture shows
        self._building: tuple[object, ...] | None = None  # what the build thread is drawing
        self._cached: Text = Text("starting…")

    @property
    def building(self) -> bool:
        """New data not drawn yet, or a build under way (tests and screenshots wait on it)."""
        return (self._key is None and bool(self._bars)) or self._building is not None

    def set_data(
        self,
        bars: Sequence[Bar],
        sma: Sequence[float | None],
        styles: tuple[Style, Style, Style],
        *,
        mono: bool,
        marks: Sequence[Mark] = (),
        entry: float | None = None,
        mark_styles: tuple[Style, Style, Style] | None = None,
    ) -> None:
        """New bars, SMA values and (up, down, sma) styles, the fills to mark, the average
        entry price (None when flat) and (buy, sell, entry) styles; repaints on the next frame."""
        self._bars = list(bars)
        self._sma = list(sma)
        self._styles = styles
        self._marks = list(marks)
        self._entry = entry
        self._mark_styles = mark_styles or (styles[0], styles[1], styles[2])
        self._mono = mono
        self._key = None
        self.refresh()

    def capacity(self, width: int) -> int:
        """How many bars fit: a candle and a gap (two columns), or three columns of OHLC ticks."""
        canvas = max(1, width - _Y_LABEL)
        return max(5, canvas // 3 if self._mono else canvas // 2)

    def render(self) -> Text:
        width, height = self.size.width, self.size.height
        if not self._bars or width < 20 or height < 5:
            return self._cached if not self._bars else Text("(too small for a chart)")
        key = (width, height, id(self._bars), self._styles, self._mono)
        if key != self._key and key != self._building:
            self._building = key
            n = self.capacity(width)
            bars = self._bars[-n:]
            data = ChartData(
                tuple(bars),
                tuple(self._sma[-len(bars) :]),
                self._styles,
                self._mark_styles,
                tuple(self._marks),
                self._entry,
                self._mono,
            )
            self.run_worker(
                lambda: self._build_in_thread(key, width, height, data),
                thread=True,
                group="chart",
                exit_on_error=False,
            )
        return self._cached

    def _build_in_thread(
        self, key: tuple[object, ...], width: int, height: int, data: ChartData
    ) -> None:
        with _BUILD_LOCK:
            text = build_chart(width, height, data)
        with contextlib.suppress(RuntimeError):  # the app is gone: nothing to show it on
            self.app.call_from_thread(self._built, key, text)

    def _built(self, key: tuple[object, ...], text: Text) -> None:
        if key == self._building:
            self._building = None
        self._cached, self._key = text, key
        self.refresh()


def build_chart(width: int, height: int, data: ChartData) -> Text:
    """The picture of ``data`` at ``width``×``height`` (any thread; one at a time)."""
    bars = list(data.bars)
    plt = _plotext()
    fig = plt.figure
    fig.clear()
    fig.theme(_PLOTEXT_THEME)
    fig.plot_size(width, height)
    xs = list(range(len(bars)))
    fig.draw(
        fig.candlestick(
            {
                "date": xs,
                "open": [b.open for b in bars],
                "close": [b.close for b in bars],
                "high": [b.high for b in bars],
                "low": [b.low for b in bars],
            },
            style="ohlc" if data.mono else "candle",
            tick=1,
        )
    )
    points = [(x, v) for x, v in zip(xs, data.sma, strict=False) if v is not None]
    if len(points) >= 2:
        line = fig.signal([x for x, _ in points], [v for _, v in points], marker="braille")
        line.lines()
        fig.draw(line)
    if data.entry is not None:
        fig.line(data.entry, pixel=_ENTRY, style="dotted")
    for x, mark in place_marks(bars, data.marks):
        buy = mark.side == "buy"
        glyph = plt.colorize(BUY_MARK if buy else SELL_MARK, _BUY if buy else _SELL)
        fig.draw(fig.signal([x], [mark.price], marker=glyph))
    positions, labels = _tick_labels([b.ts for b in bars], max(2, width // 14))
    fig.ruler("x").ticks(positions, labels=labels)
    text = Text.from_ansi(fig.build().string(colorless=data.mono), no_wrap=True)
    return _recolour(text, data)


def _recolour(text: Text, data: ChartData) -> Text:
    """plotext's fixed colour numbers swapped for the theme's styles (none without colour)."""
    up, down, sma = data.styles
    buy, sell, entry = data.mark_styles
    mapping = {_UP: up, _DOWN: down, _SMA: sma, _BUY: buy, _SELL: sell, _ENTRY: entry}
    spans: list[Span] = []
    for s in text.spans:
        style = s.style
        colour = style.color if isinstance(style, Style) else None
        number = colour.number if colour is not None else None
        if data.mono or number not in mapping:
            continue
        spans.append(Span(s.start, s.end, mapping[number]))
    text.spans = spans
    return text
