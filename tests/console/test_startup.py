"""Start-up: nothing heavy before the first frame, and the real demo wiring end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tapewatch.console.app import TapewatchApp, create_app
from tapewatch.engine.root.console_session import prime
from tapewatch.engine.root.demo import DemoOptions, build_demo
from tapewatch.engine.settings.config import EngineConfig
from tests.console.conftest import THEMES, drawn, shown, until

HEAVY = ("pandas", "numpy", "exchange_calendars", "plotext", "pyarrow", "alpaca")


def test_the_app_module_imports_nothing_heavy() -> None:
    code = (
        "import sys, json\n"
        "import tapewatch.console.launch, console.app\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []  # they load in a thread after the first frame


async def test_the_demo_session_builds_after_the_first_frame(tmp_path: Path) -> None:
    config = EngineConfig().validate()

    def factory() -> object:
        return build_demo(
            config, DemoOptions(seed=7, speed=60.0, lead_bars=None), data_dir=tmp_path
        )

    app = TapewatchApp(session_factory=factory, themes=THEMES)  # type: ignore[arg-type]
    async with app.run_test(size=(120, 36)) as pilot:
        assert "starting" in shown(app.query_one("#indicators"))  # painted before the build
        await until(pilot, lambda: app._snapshot is not None and app._snapshot.running)
        await until(pilot, lambda: "2026-01-07" in shown(app.query_one("#header")), "the header")
        await until(pilot, lambda: "RSI(14)" in shown(app.query_one("#indicators")), "RSI")
        header = shown(app.query_one("#header"))
        assert "DEMO" in header and "2026-01-07" in header and "market " in header
        assert "RSI(14)" in shown(app.query_one("#indicators"))
        snap = app._handle.snapshot() if app._handle is not None else None
        assert snap is not None and len(snap.bars) == 240  # warmed from history: panes full at once
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running, "app exit")
    journals = list((tmp_path / "demo").glob("journal-seed7-*.sqlite3"))
    assert len(journals) == 1


async def _screen_text(seed: int) -> tuple[str, str]:
    session = build_demo(
        EngineConfig().validate(), DemoOptions(seed=seed, lead_bars=None), data_dir=None
    )
    await prime(session, bars=40)
    app = create_app(session)
    async with app.run_test(size=(120, 36)) as pilot:
        await drawn(pilot, session)
        panes = "\n".join(shown(w) for w in app.query(".pane, #header, #order-log"))
        return panes, shown(app.query_one("#header"))


async def test_create_app_paints_the_same_screen_every_run() -> None:
    first, header = await _screen_text(seed=3)
    second, _ = await _screen_text(seed=3)
    assert first == second  # what snapshot tests rely on: no wall clock, no measured timings
    assert "2026-01-07" in header and "UI loop lag" not in first
