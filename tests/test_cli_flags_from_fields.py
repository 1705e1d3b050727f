"""The strategy flags come from the one settings table (``engine.settings.fields``).

A setting added to the table with a flag appears on every command that takes strategy flags,
typed by its kind, with the engine's default in its help; nothing in the CLI spells it again.
"""

from __future__ import annotations

import pytest

from tapewatch.console.cli import build_parser, main
from tapewatch.engine.api.settings import ENGINE_FIELDS, EngineConfig

FLAGGED = [f for f in ENGINE_FIELDS if f.flag is not None]


def _help(command: str, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit):
        build_parser().parse_args([command, "--help"])
    return " ".join(capsys.readouterr().out.split())  # argparse wraps: compare words


def test_the_table_has_the_strategy_flags() -> None:
    flags = {f.flag for f in FLAGGED}
    assert {"--symbol", "--rsi-period", "--max-drawdown", "--cash", "--rsi-method"} <= flags


@pytest.mark.parametrize("command", ["backtest", "demo", "run"])
def test_every_field_flag_is_offered_with_its_default(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    text = _help(command, capsys)
    config = EngineConfig()
    for field in FLAGGED:
        assert field.flag in text, f"{command} lacks {field.flag}"
        assert field.help in text
    assert "RSI look-back in bars, 2-10000 (default 14)" in text
    assert f"(default {config.strategy.position_pct:g})" in text
    assert "{sma,wilder}" in text


def test_a_flag_is_typed_by_its_field_kind() -> None:
    args = build_parser().parse_args(
        ["backtest", "--rsi-period", "21", "--max-drawdown", "0.1", "--rsi-method", "wilder"]
    )
    assert args.rsi_period == 21 and isinstance(args.rsi_period, int)
    assert args.max_drawdown == pytest.approx(0.1)
    assert args.rsi_method == "wilder"
    assert args.symbol is None  # not given: the config file's value (or the default) stands


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["backtest", "--rsi-period", "2.5"], "--rsi-period"),
        (["backtest", "--rsi-method", "ema"], "--rsi-method"),
        (["backtest", "--position-pct", "nan"], "--position-pct"),
    ],
)
def test_a_bad_flag_value_is_one_line_and_exit_2(
    argv: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and named in err[0] and "Traceback" not in err[0]
