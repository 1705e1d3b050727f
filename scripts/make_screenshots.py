"""Regenerate ``screenshots/`` headless from a seeded demo at a fixed simulated clock.

Never edit the images by hand: run ``python scripts/make_screenshots.py`` from the repository
root (add ``--svg-only`` to skip the PNGs). Every image comes from the same seeded session, so
a second run writes byte-identical SVGs:

- the offline demo, seed 7, default strategy (RSI 14 / SMA 50, oversold 30): warm-up plus
  ``BARS`` = 1005 bars through the engine, unpaced (the scene lives in console/showcase.py,
  shared with the snapshot tests). With this seed the strategy has closed two
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
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a plain script from a checkout
    sys.path.insert(0, str(ROOT))

from textual.pilot import Pilot  # noqa: E402

from scripts.showcase import (  # noqa: E402
    ShowcaseAccounts,
    open_flatten,
    open_live_confirm,
    settle,
    showcase_session,
)
from tapewatch.console.accounts import AccountDirectory  # noqa: E402
from tapewatch.console.app import create_app  # noqa: E402
from tapewatch.engine.model.types import Mode  # noqa: E402
from tapewatch.engine.root.demo import DemoSession  # noqa: E402

BIG = (120, 36)
SMALL = (80, 24)
OUT = ROOT / "screenshots"
PNG_SCALE = 1.5
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


async def settled(pilot: Pilot[Any], session: DemoSession) -> None:
    """The shared settle, plus any animation still running (a still image)."""
    await settle(pilot, session)
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()


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
        session = showcase_session(shot.mode)
        accounts = ShowcaseAccounts() if shot.mode is Mode.PAPER else None
        svg_text = asyncio.run(take(shot, session, accounts))
        svg = out / f"{shot.name}.svg"
        svg.write_text(svg_text, encoding="utf-8")
        if browser is not None:
            svg_to_png(browser, svg, svg.with_suffix(".png"))
        print(f"{svg}: {shot.what}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
