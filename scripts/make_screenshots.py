"""Regenerate ``screenshots/`` headless from a seeded demo at a fixed simulated clock.

Never edit the images by hand: run ``python scripts/make_screenshots.py`` from the repository
root (add ``--svg-only`` to skip the PNGs). Every image comes from the same seeded session, so
a second run writes byte-identical SVGs:

- the offline demo, seed 7, default strategy (RSI 14 / SMA 50, oversold 30): warm-up plus
  ``BARS`` = 1005 bars through the engine, unpaced. With this seed the strategy has closed two
  trades and entered a third at bar 999, so the panes show an open position, a filled order log
  and latency counts. The simulated clock then reads 2026-01-26 20:45 UTC (15:45 New York);
  the script checks both and stops if the engine's behaviour has changed;
- no pacing (``drive=False``) and no wall-clock timings (``measured=False``): every time on
  screen is the engine's ``SimClock``;
- the live-confirm modal uses the same bars in a PAPER session with a stand-in account
  directory that has live credentials (nothing connects: the modal only describes the account).

PNG conversion: headless Chromium renders each SVG file (``--screenshot``, 1.5× scale), with
the Fira Code font installed system-wide (Textual's SVG names "Fira Code" first and loads it
with ``local()``; the network is blocked for the run, so nothing is fetched). Chosen by looking
at the three candidates side by side:

- CairoSVG keeps the columns but has no per-glyph font fallback: the chart's braille SMA line
  and the ✗ marks (not in Fira Code) come out as empty boxes;
- rsvg-convert falls back per glyph but drifts the text columns (right-aligned numbers and the
  footer keys slide left);
- Chromium gets both right: columns aligned, missing glyphs from DejaVu via fontconfig.

Debian packages (``--svg-only`` needs none of them):

    apt-get install -y chromium fonts-firacode fonts-dejavu-core

Set ``CHROMIUM=/path/to/chrome`` to use another Chromium or Chrome binary.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a plain script from a checkout
    sys.path.insert(0, str(ROOT))

from textual.pilot import Pilot  # noqa: E402
from textual.widgets import Input  # noqa: E402

from console.accounts import AccountDirectory  # noqa: E402
from console.app import TICK, TapewatchApp, create_app  # noqa: E402
from console.panes.bars import CHART_INTERVAL, BarsPane  # noqa: E402
from console.screens.flatten import FlattenScreen  # noqa: E402
from console.screens.live import LiveConfirmScreen  # noqa: E402
from console.session import prime  # noqa: E402
from engine.brokers.base import Broker  # noqa: E402
from engine.brokers.sim import SimBroker  # noqa: E402
from engine.config import EngineConfig  # noqa: E402
from engine.engine import Engine  # noqa: E402
from engine.models import Mode  # noqa: E402
from engine.wiring import DemoOptions, DemoSession, build_demo  # noqa: E402

SEED = 7
BARS = 1005
EXPECTED_CLOCK = datetime(2026, 1, 26, 20, 45, tzinfo=UTC)
BIG = (120, 36)
SMALL = (80, 24)
OUT = ROOT / "screenshots"
WHO = "screenshots@tapewatch"
PNG_SCALE = 1.5
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class StandInAccounts:
    """A paper and a live account as the confirmation screens describe them; never connects."""

    def live_available(self) -> bool:
        return True

    def paper_available(self) -> bool:
        return True

    def describe(self, mode: Mode) -> str:
        return f"{mode.value} account AK-••••-7Q2X at https://api.alpaca.markets"

    async def connect(self, mode: Mode) -> tuple[Broker, str, str]:
        raise RuntimeError("the screenshot script never connects an account")


def demo_session(mode: Mode = Mode.DEMO) -> DemoSession:
    """The seeded demo; for PAPER the same bars drive an engine labelled as a paper account."""
    config = EngineConfig().validate()
    session = build_demo(config, DemoOptions(seed=SEED), data_dir=None)
    if mode is Mode.DEMO:
        session.engine.who = WHO
        return session
    clock = session.engine.clock
    engine = Engine(
        config,
        clock=clock,
        broker=SimBroker(config.starting_cash, config.execution, clock=clock),
        mode=mode,
        account="PA-••••-3F9K",
        endpoint="https://paper-api.alpaca.markets",
        in_session=session.calendar.is_open,
        who=WHO,
    )
    return DemoSession(engine=engine, feed=session.feed, calendar=session.calendar, journal=None)


def primed(mode: Mode = Mode.DEMO) -> DemoSession:
    session = demo_session(mode)
    asyncio.run(prime(session, bars=BARS))
    state = session.engine.state
    if session.engine.clock.now() != EXPECTED_CLOCK or not any(
        p.qty for p in state.positions.values()
    ):
        raise SystemExit(
            f"the seeded demo changed: clock {session.engine.clock.now()}, positions "
            f"{state.positions}; pick a new BARS/EXPECTED_CLOCK so a position is open"
        )
    return session


async def settled(pilot: Pilot[Any], session: DemoSession) -> None:
    """Wait until the panes drew the engine's latest state in the chosen theme's colours.

    The theme's variables arrive a refresh after mount, and the chart rebuilds at most every
    ``CHART_INTERVAL``: so wait past one rebuild and until no newer chart is pending.
    """
    app = pilot.app
    assert isinstance(app, TapewatchApp)
    bars = app.query_one(BarsPane)
    version = session.engine.state.version
    await pilot.pause(CHART_INTERVAL + 2 * TICK)
    for _ in range(500):
        if app.drawn_version == version and not bars.pending:
            break
        await pilot.pause(0.01)
    else:
        raise RuntimeError("the panes never drew the primed state")
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()


async def open_flatten(pilot: Pilot[Any]) -> None:
    await pilot.press("f")
    await pilot.pause()
    if not isinstance(pilot.app.screen, FlattenScreen):
        raise RuntimeError("f did not open the flatten preview")


async def open_live_confirm(pilot: Pilot[Any]) -> None:
    await pilot.press("m")
    await pilot.pause()
    screen = pilot.app.screen
    if not isinstance(screen, LiveConfirmScreen):
        raise RuntimeError("m did not open the live confirmation")
    screen.query_one(Input).cursor_blink = False  # a steady cursor: the same image every run


@dataclass(frozen=True)
class Shot:
    name: str
    what: str
    size: tuple[int, int]
    theme: str = "dark"
    mode: Mode = Mode.DEMO
    action: Callable[[Pilot[Any]], Awaitable[None]] | None = None


SHOTS = (
    Shot("main-dark", "main screen, dark theme (default), 120×36", BIG),
    Shot("main-light", "main screen, light theme, 120×36", BIG, theme="light"),
    Shot(
        "main-high-contrast",
        "main screen, high-contrast colour-blind-safe theme, 120×36",
        BIG,
        theme="high-contrast",
    ),
    Shot("compact-80x24", "80×24: the panes become pages (page 1, Market)", SMALL),
    Shot("flatten-preview", "f: the flatten preview modal, 120×36", BIG, action=open_flatten),
    Shot(
        "live-confirm",
        "m in a PAPER session: the live-switch confirmation, 120×36",
        BIG,
        mode=Mode.PAPER,
        action=open_live_confirm,
    ),
)


async def take(shot: Shot, session: DemoSession, accounts: AccountDirectory | None) -> str:
    app = create_app(session, theme=shot.theme, accounts=accounts)
    async with app.run_test(size=shot.size) as pilot:
        await settled(pilot, session)
        if shot.action is not None:
            await shot.action(pilot)
            await pilot.wait_for_scheduled_animations()
            await pilot.pause()
        return app.export_screenshot(title=f"tapewatch — {shot.what}")


def chromium() -> str:
    found = os.environ.get("CHROMIUM") or next(
        (p for p in map(shutil.which, BROWSERS) if p is not None), None
    )
    if found is None:
        raise SystemExit(
            "make_screenshots: no Chromium for the PNGs: apt-get install -y chromium "
            "fonts-firacode (or pass --svg-only)"
        )
    return found


def svg_to_png(browser: str, svg: Path, png: Path) -> None:
    """One headless Chromium run per image, sized to the SVG's view box, network blocked."""
    found = re.search(r'viewBox="0 0 ([\d.]+) ([\d.]+)"', svg.read_text(encoding="utf-8"))
    if found is None:
        raise SystemExit(f"make_screenshots: {svg} has no viewBox")
    width, height = (math.ceil(float(v)) for v in found.groups())
    with tempfile.TemporaryDirectory(prefix="tapewatch-shots-") as profile:
        result = subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--hide-scrollbars",
                "--disable-breakpad",
                "--host-resolver-rules=MAP * ~NOTFOUND",
                f"--user-data-dir={profile}",
                f"--force-device-scale-factor={PNG_SCALE}",
                f"--window-size={width},{height}",
                "--default-background-color=00000000",
                f"--screenshot={png}",
                svg.resolve().as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env={
                **os.environ,
                "HOME": profile,
                "XDG_CONFIG_HOME": profile,
                "XDG_CACHE_HOME": profile,
            },
            check=False,
        )
    if result.returncode != 0 or not png.exists():
        raise SystemExit(f"make_screenshots: Chromium failed on {svg}:\n{result.stderr[-2000:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="output folder")
    parser.add_argument("--svg-only", action="store_true", help="skip the PNG conversion")
    args = parser.parse_args(argv)
    for name in ("NO_COLOR", "TEXTUAL_THEME", "TEXTUAL_ANIMATIONS"):
        os.environ.pop(name, None)  # the user's terminal settings must not change the images
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    browser = None if args.svg_only else chromium()
    for shot in SHOTS:
        session = primed(shot.mode)
        accounts = StandInAccounts() if shot.mode is Mode.PAPER else None
        svg_text = asyncio.run(take(shot, session, accounts))
        svg = out / f"{shot.name}.svg"
        svg.write_text(svg_text, encoding="utf-8")
        if browser is not None:
            svg_to_png(browser, svg, svg.with_suffix(".png"))
        print(f"{svg}: {shot.what}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
