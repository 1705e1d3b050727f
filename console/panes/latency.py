"""Latency pane: per stage count, p50/p90/p99/max and a bucket histogram; plus the UI loop lag.

The engine measures stages with ``perf_counter`` (HdrHistogram); the app's stall probe (a 10 ms
sleep in a loop, ``console.pacing.StallProbe``) says how late the event loop answers, which is
how long a repaint can delay a key or an order. Where the table would not fit (half of a
100-column screen) the histogram column goes, so the numbers are never squeezed.

In the demo, ack→fill is not a broker's speed: the simulated broker fills a market order at the
next bar's open, so the figure is the replay's wait for that bar. The row says ``sim`` and the
title says what that means; the other stages run the real code and are measured as they are.
"""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from tapewatch.console.format import DASH, duration
from tapewatch.console.panes.base import Pane, View
from tapewatch.console.panes.spark import histogram
from tapewatch.engine.api.types import Mode

STAGES = (
    ("bar_to_decision", "bar→decision"),
    ("submit_to_ack", "submit→ack"),
    ("ack_to_fill", "ack→fill"),
    ("rest_roundtrip", "REST trip"),
)
BUCKETS = 8
SIMULATED = frozenset({"ack_to_fill"})  # stages that are a simulated wait in the demo
SIM_TITLE = "Latency · sim: wait for next bar open"
FULL_WIDTH = 12 + 4 + 4 * 6 + BUCKETS + 6  # every column at its minimum, with the gaps


def latency_histograms(counts: dict[str, tuple[int, ...]]) -> dict[str, str]:
    """Bucket bars per stage, from the handle's bucket counts (which it reads off the loop,
    every few seconds: walking the histograms is slow)."""
    return {stage: histogram(list(counts[stage])) for stage, _ in STAGES if stage in counts}


class LatencyPane(Pane):
    TITLE = "Latency"
    EVERY = 0.5  # changes with every bar; read by a person, so twice a second is plenty

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.loop_lag: tuple[float, float] | None = None  # (p99, max) seconds, set by the app
        self.histograms: dict[str, str] = {}  # stage -> bars, set by the app from a thread

    def redraw(self, view: View) -> None:
        p = view.palette
        demo = view.state.mode is Mode.DEMO
        title = SIM_TITLE if demo else self.TITLE
        if title != self.border_title:
            self.border_title = title
        hist = (self.content_size.width or FULL_WIDTH) >= FULL_WIDTH
        table = Table(
            box=None, expand=True, padding=(0, 0, 0, 1), pad_edge=False, header_style=p.muted
        )
        table.add_column("Stage", no_wrap=True, min_width=12)
        table.add_column("n", justify="right", no_wrap=True, min_width=4)
        for name in ("p50", "p90", "p99", "max"):
            table.add_column(name, justify="right", no_wrap=True, min_width=6)
        if hist:
            table.add_column("hist", no_wrap=True, min_width=BUCKETS)
        for stage, label in STAGES:
            s = view.state.latency_of(stage)
            simulated = demo and stage in SIMULATED
            if simulated:
                label = f"{label} sim"
            if s.count == 0:
                table.add_row(label, "0", DASH, DASH, DASH, DASH, *[""][:hist], style=p.muted)
                continue
            if not view.measured:
                table.add_row(label, str(s.count), "·", "·", "·", "·", *[""][:hist])
                continue
            bars = Text(self.histograms.get(stage, ""), style=p.accent)
            table.add_row(
                label,
                str(s.count),
                duration(s.p50),
                duration(s.p90),
                Text(duration(s.p99), style=p.muted if simulated else p.strong),
                duration(s.max),
                *[bars][:hist],
                style=p.muted if simulated else None,
            )
        lag = self.loop_lag
        if lag is None or not view.measured:
            footer = Text("UI loop stall: measuring…" if view.measured else "", style=p.muted)
        else:
            footer = Text.assemble(
                ("UI loop stall ", p.muted),
                ("p99 ", p.muted),
                (duration(lag[0]), p.warn if lag[0] > 0.05 else p.strong),
                ("  max ", p.muted),
                (duration(lag[1]), p.warn if lag[1] > 0.1 else p.strong),
            )
        self.update(Group(table, footer))
