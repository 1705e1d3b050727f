"""The soak: a full simulated trading week (Monday open to Friday close, 390 five-minute bars)
streamed at high speed through the sandbox and the real SDK, with a seeded random fault every
fraction of a second. One summary line; no order twice, no record lost."""

from __future__ import annotations

from pathlib import Path

from tests.reliability.soak_helpers import soak


async def test_a_simulated_week_with_random_faults_sends_nothing_twice_and_loses_nothing(
    tmp_path: Path,
) -> None:
    result = await soak(tmp_path, seed=20240304, duration=50.0, bar_interval=0.01)
    print(result.line())
    assert result.duplicates == 0 and result.lost == 0, result.problems
    assert result.max_exposure <= 1.0 + 1e-9 and result.missing_fills == 0
    assert result.problems == []
    assert result.orders > 0 and result.injected > 0 and result.survived > 0
    assert result.bars >= 300  # most of the week went through, faults and all
