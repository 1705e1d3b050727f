"""``tapewatch backtest --engine-loop`` forces the engine loop; without it the vectorised path
runs. Both print the same report."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tapewatch.console.cli import main
from tapewatch.engine.backtest import runner

SHORT = ["--synthetic", "--seed", "5", "--start", "2024-03-04", "--end", "2024-03-29"]


def report(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert main(["backtest", *SHORT, "--json", *argv]) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_engine_loop_flag_forces_the_engine_and_changes_nothing_else(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = runner.drive_vector

    async def counting(*args: Any, **kwargs: Any) -> int:
        calls.append(1)
        return await real(*args, **kwargs)

    monkeypatch.setattr(runner, "drive_vector", counting)
    fast = report([], capsys)
    assert calls == [1]
    engine = report(["--engine-loop"], capsys)
    assert calls == [1]  # the second run never entered the vector path
    assert fast == engine
    assert fast["trades"] > 0
