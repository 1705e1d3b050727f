"""A small, fully deterministic console session: crafted bars, a gated replay, a real journal.

The replay feed's pacing sleep is a gate the test opens one bar at a time, so nothing depends on
the wall clock; the calendar is a fixed stand-in (always open) so no test imports pandas.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from textual.geometry import Region
from textual.pilot import Pilot
from textual.widget import Widget

from tapewatch.console.app import TapewatchApp
from tapewatch.console.themes import load_themes
from tapewatch.engine.adapters.sim.broker import SimBroker
from tapewatch.engine.adapters.sim.replay import ReplayFeed
from tapewatch.engine.core.clock import SimClock
from tapewatch.engine.core.engine import Engine
from tapewatch.engine.market.bars import BarArrays, ns_from_datetime
from tapewatch.engine.model.events import Event
from tapewatch.engine.model.types import Bar, Mode
from tapewatch.engine.settings.config import (
    EngineConfig,
    ExecutionConfig,
    RiskConfig,
    StrategyConfig,
)
from tapewatch.engine.storage.journal import Journal
from tests.helpers import T0, bars_from_closes

# RSI(2)/SMA(3) with oversold 65: closes 10, 9 warm up; 10.5 is a buy (RSI 60, close above the
# SMA, flat); the order fills at the next bar's open (10.5). Then a slow slide: RSI low (no
# exit), close under the SMA (no new entry), the day's drawdown stays under 5%.
WARM = [10.0, 9.0]
BUY = 10.5
SLIDE = [10.0, 9.95, 9.9, 9.85, 9.8, 9.75]
STEP = timedelta(minutes=5)


class Gate:
    """The replay's sleep: each call waits until the test lets one more bar through."""

    def __init__(self) -> None:
        self._credits = 0
        self._event = asyncio.Event()

    async def __call__(self, _delay: float) -> None:
        while self._credits == 0:
            self._event.clear()
            await self._event.wait()
        self._credits -= 1

    def release(self, bars: int = 1) -> None:
        self._credits += bars
        self._event.set()


class AlwaysOpen:
    """Market hours stand-in: open, closing an hour after ``now``."""

    def is_open(self, now: datetime) -> bool:
        return True

    def next_open(self, now: datetime) -> datetime:
        return now + timedelta(days=1)

    def next_close(self, now: datetime) -> datetime:
        return now + timedelta(hours=1)


@dataclass
class Session:
    engine: Engine
    feed: ReplayFeed
    calendar: AlwaysOpen
    journal: Journal
    gate: Gate
    bars: list[Bar]

    def journal_events(self, kind: str) -> list[Event]:
        """Read through a second connection: the app closes its own when it quits."""
        with Journal(self.journal.path) as reader:
            return [e for _, e in reader.events(kinds=(kind,))]

    def operator_actions(self) -> list[str]:
        return [getattr(e, "action", "") for e in self.journal_events("operator")]


def config(**risk: float | str) -> EngineConfig:
    return EngineConfig(
        strategy=StrategyConfig(
            rsi_period=2,
            sma_period=3,
            rsi_oversold=65.0,
            rsi_overbought=90.0,
            position_pct=0.5,
        ),
        execution=ExecutionConfig(),
        risk=RiskConfig(**risk),  # type: ignore[arg-type]
    ).validate()


def arrays(bars: Sequence[Bar]) -> BarArrays:
    return BarArrays(
        bars[0].symbol,
        np.array([ns_from_datetime(b.ts) for b in bars], dtype=np.int64),
        np.array([b.open for b in bars]),
        np.array([b.high for b in bars]),
        np.array([b.low for b in bars]),
        np.array([b.close for b in bars]),
        np.array([b.volume for b in bars]),
    )


def make_session(
    tmp_path: Path,
    closes: Sequence[float],
    *,
    mode: Mode = Mode.DEMO,
    max_drawdown: float = 0.05,
    drawdown_action: str = "reduce",
    feed_bars: Callable[[list[Bar]], BarArrays | Iterator[BarArrays]] | None = None,
) -> Session:
    bars = bars_from_closes([*WARM, *closes])
    cfg = config(max_drawdown=max_drawdown, drawdown_action=drawdown_action)
    clock = SimClock(T0)
    gate = Gate()
    source = feed_bars(bars) if feed_bars is not None else arrays(bars)
    feed = ReplayFeed(
        source, clock, timeframe_seconds=300, warmup=len(WARM), speed=60.0, sleep=gate
    )
    journal = Journal(tmp_path / "journal.sqlite3")
    calendar = AlwaysOpen()
    engine = Engine(
        cfg,
        clock=clock,
        broker=SimBroker(cfg.starting_cash, cfg.execution, clock=clock),
        journal=journal,  # type: ignore[arg-type]  # engine's JournalLike is narrower (reported)
        mode=mode,
        account="DEMO" if mode is Mode.DEMO else "PA-TEST-0001",
        endpoint="offline" if mode is Mode.DEMO else "https://paper.example",
        in_session=calendar.is_open,
        who="tester@local",
    )
    return Session(engine, feed, calendar, journal, gate, bars)


def make_app(session: Session, **kwargs: object) -> TapewatchApp:
    kwargs.setdefault("themes", THEMES)
    return TapewatchApp(session=session, **kwargs)  # type: ignore[arg-type]


THEMES = load_themes()


def shown(widget: Widget) -> str:
    """The text a widget currently paints (what a person would read)."""
    region = Region(0, 0, widget.outer_size.width, widget.outer_size.height)
    return "\n".join(strip.text for strip in widget.render_lines(region))


async def until(pilot: Pilot[Any], predicate: Callable[[], bool], what: str = "") -> None:
    """Let the app run until ``predicate`` holds (fails after 5 s of app time)."""
    for _ in range(500):
        if predicate():
            return
        await pilot.pause(0.01)
    raise AssertionError(f"timed out waiting for {what or predicate}")


async def drawn(pilot: Pilot[Any], session: Session) -> None:
    """Wait until the panes show the engine's latest state (the next ~10 Hz tick)."""
    app = pilot.app
    assert isinstance(app, TapewatchApp)
    await until(pilot, lambda: app.drawn_version == session.engine.state.version, "redraw")


async def bars_processed(pilot: Pilot[Any], session: Session, count: int) -> None:
    """Open the gate for ``count`` more bars; wait until the engine took them and they show."""
    target = len(session.engine.state.bars) + count
    session.gate.release(count)
    await until(pilot, lambda: len(session.engine.state.bars) >= target, f"{target} bars")
    await drawn(pilot, session)


async def open_position(pilot: Pilot[Any], session: Session) -> float:
    """Buy on the crafted bar, fill on the next: returns the filled quantity."""
    await bars_processed(pilot, session, 2)
    position = session.engine.state.positions.get("SPY")
    assert position is not None and position.qty > 0, "the crafted buy did not fill"
    return position.qty


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    """Buy signal, fill, then a slow slide with no further signal."""
    s = make_session(tmp_path, [BUY, *SLIDE])
    yield s
    s.journal.close()
