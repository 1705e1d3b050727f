"""The offline demo never imports pandas: it was ~100 MB of the console's idle memory.

The demo's market calendar answers from the shipped session table; exchange-calendars (and with
it pandas, and pyarrow when installed) stays out of the process. Each run is a fresh interpreter.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HEAVY = ("pandas", "exchange_calendars", "pyarrow")

DEMO = """
import asyncio, json, sys
from datetime import UTC, datetime
from pathlib import Path

if sys.argv[2] == "broken":  # the control: no shipped table, so the fallback must show up
    import tapewatch.engine.market.calendar
    tapewatch.engine.market.calendar.SHIPPED_PATH = Path(sys.argv[1]) / "missing.npz"

from tapewatch.engine.market.calendar import MarketCalendar
from tapewatch.engine.settings.config import EngineConfig
from tapewatch.engine.root.demo import DemoOptions, build_demo
async def main() -> dict[str, object]:
    session = build_demo(EngineConfig(), DemoOptions(), data_dir=Path(sys.argv[1]))
    engine, feed = session.engine, session.feed
    await engine.start()
    engine.warm(feed.warmup())
    feed.set_speed(None)
    delivered = 0
    async for bar in feed.bars():
        await engine.on_bar(bar)
        delivered += 1
        if delivered == 100:  # past a session boundary (78 bars a day)
            break
    await engine.stop()
    if session.journal is not None:
        session.journal.close()
    return {
        "bars": delivered,
        "open": MarketCalendar().is_open(datetime(2026, 1, 5, 15, 0, tzinfo=UTC)),
        "closed": session.calendar.is_open(datetime(2026, 1, 3, 15, 0, tzinfo=UTC)),
    }


result = asyncio.run(main())
heavy = sys.argv[3].split(",")
result["heavy"] = sorted(m for m in sys.modules if m.split(".")[0] in heavy)
print(json.dumps(result))
"""


def run_demo(tmp_path: Path, variant: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", DEMO, str(tmp_path), variant, ",".join(HEAVY)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_demo_bars_and_market_hours_leave_pandas_out(tmp_path: Path) -> None:
    result = run_demo(tmp_path, "shipped")
    assert (result["bars"], result["open"], result["closed"]) == (100, True, False)
    assert result["heavy"] == []


def test_the_check_sees_pandas_when_the_calendar_falls_back(tmp_path: Path) -> None:
    """Guard against a vacuous check: without the shipped table the same run loads pandas."""
    result = run_demo(tmp_path, "broken")
    assert (result["bars"], result["open"], result["closed"]) == (100, True, False)
    heavy = result["heavy"]
    assert isinstance(heavy, list)
    assert "pandas" in heavy and "exchange_calendars" in heavy
