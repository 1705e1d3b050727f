"""Every flag is checked: out-of-range numbers, dates and paths are one stderr line naming the
flag, exit 2, no traceback; a long value is never echoed whole; ``run --headless --live`` needs
``--confirm-live`` (or LIVE typed on a terminal) before any keyring or network access."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from tapewatch.console.cli import LONG_INPUT, SHOWN, build_parser, main

HUGE = str(10**20)
LONG = "7" * 10_000  # a paste gone wrong


@pytest.fixture(autouse=True)
def _quiet_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No user config file, and any data directory a bug might create lands in tmp."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("TAPEWATCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("TAPEWATCH_CONFIG", raising=False)


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_exit_2(code: int, out: str, err: str, needle: str) -> str:
    assert code == 2, (code, err)
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert needle in lines[0], lines[0]
    assert "Traceback" not in err
    assert out == ""
    return lines[0]


BAD = [
    # demo
    (["demo", "--speed", "0"], "--speed"),
    (["demo", "--speed", "1e308"], "--speed"),
    (["demo", "--speed", "inf"], "--speed"),
    (["demo", "--speed", "nan"], "--speed"),
    (["demo", "--speed", "-60"], "--speed"),
    (["demo", "--seed", "-1"], "--seed"),
    (["demo", "--seed", HUGE], "--seed"),
    (["demo", "--seed", "1.5"], "--seed"),
    (["demo", "--cash", "1e308"], "--cash"),
    (["demo", "--cash", "inf"], "--cash"),
    (["demo", "--cash", "nan"], "--cash"),
    (["demo", "--cash", "-5"], "--cash"),
    (["demo", "--metrics-port", "70000"], "--metrics-port"),
    (["demo", "--metrics-port", "-1"], "--metrics-port"),
    (["demo", "--theme", "no such/theme"], "--theme"),
    # backtest: strategy flags (shared by demo and run)
    (["backtest", "--rsi-period", HUGE], "--rsi-period"),
    (["backtest", "--sma-period", HUGE], "--sma-period"),
    (["backtest", "--sma-period", "10001"], "--sma-period"),
    (["backtest", "--rsi-oversold", "nan"], "--rsi-oversold"),
    (["backtest", "--rsi-overbought", "inf"], "--rsi-overbought"),
    (["backtest", "--position-pct", "nan"], "--position-pct"),
    (["backtest", "--max-drawdown", "inf"], "--max-drawdown"),
    (["backtest", "--slippage-bps", "1e308"], "--slippage-bps"),
    (["backtest", "--commission", "1e308"], "--commission"),
    (["backtest", "--commission", "inf"], "--commission"),
    (["backtest", "--commission-per-share", "1e308"], "--commission-per-share"),
    (["backtest", "--commission-per-share", "-0.01"], "--commission-per-share"),
    (["backtest", "--symbol", "SPY$"], "symbol"),
    (["backtest", "--symbol", "A" * 16], "symbol"),
    (["backtest", "--timeframe", "99999Min"], "timeframe"),
    # backtest: its own flags
    (["backtest", "--seed", "-3"], "--seed"),
    (["backtest", "--seed", HUGE], "--seed"),
    (["backtest", "--start", "9999-01-01"], "--start"),
    (["backtest", "--end", "9999-12-31"], "--end"),
    (["backtest", "--start", "1899-12-31"], "--start"),
    (["backtest", "--start", "2024-02-30"], "--start"),
    (["backtest", "--bars", "0"], "--bars"),
    (["backtest", "--bars", HUGE], "--bars"),
    (["backtest", "--start", "2199-06-01", "--bars", "2000000"], "--bars"),
    (["backtest", "--start", "1900-01-02", "--timeframe", "1Min"], "--start"),
    (["backtest", "--compare", ",".join(["70/30"] * 21)], "--compare"),
    (["backtest", "--compare", "nan/30"], "--compare"),
    # sandbox
    (["sandbox", "--port", "70000"], "--port"),
    (["sandbox", "--port", "-1"], "--port"),
    (["sandbox", "--seed", "-5"], "--seed"),
    (["sandbox", "--bar-interval", "0"], "--bar-interval"),
    (["sandbox", "--bar-interval", "inf"], "--bar-interval"),
    (["sandbox", "--bar-interval", "1e308"], "--bar-interval"),
    (["sandbox", "--rate-limit", "0"], "--rate-limit"),
    (["sandbox", "--rate-limit", HUGE], "--rate-limit"),
    # run (all refused before any keyring or network access)
    (["run", "--headless", "--cash", "inf"], "--cash"),
    (["run", "--headless", "--rsi-period", HUGE], "--rsi-period"),
    (["run", "--headless", "--metrics-port", "70000"], "--metrics-port"),
    (["run", "--headless", "--live"], "--confirm-live"),
    # trades
    (["trades", "--since", "9999-99-99"], "--since"),
    (["trades", "--since", "yesterday"], "--since"),
    (["trades", "--mode", "sim"], "--mode"),
]


@pytest.mark.parametrize(("argv", "flag"), BAD, ids=[" ".join(a)[:60] for a, _ in BAD])
def test_a_bad_value_is_one_line_naming_the_flag_and_exit_2(
    argv: list[str], flag: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = run_main(argv, capsys)
    assert_one_line_exit_2(code, out, err, flag)
    assert not (tmp_path / "data").exists(), "nothing is created for a refused command"


@pytest.fixture
def a_file(tmp_path: Path) -> Path:
    path = tmp_path / "plain-file"
    path.write_text("not a folder")
    return path


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["backtest", "--trades", "{tmp}"], "--trades"),  # a directory as --trades FILE
        (["backtest", "--trades", "{tmp}/missing/t.csv"], "--trades"),
        (["backtest", "--trades", "{file}/t.csv"], "--trades"),
        (["backtest", "--data", "{tmp}"], "--data"),
        (["backtest", "--data", "{tmp}/missing.csv"], "--data"),
        (["demo", "--headless", "--data-dir", "{file}"], "--data-dir"),
        (["demo", "--data-dir", "{file}/below"], "--data-dir"),
        (["run", "--headless", "--data-dir", "{file}"], "--data-dir"),
        (["doctor", "--data-dir", "{file}"], "--data-dir"),
        (["audit", "verify", "--file", "{tmp}"], "--file"),
        (["audit", "verify", "--data-dir", "{file}"], "--data-dir"),
        (["trades", "--data-dir", "{file}"], "--data-dir"),
        (["trades", "--data-dir", ""], "--data-dir"),
        (["backtest", "--data", "bars\0.csv"], "--data"),
    ],
)
def test_a_bad_path_is_one_line_naming_the_flag_and_exit_2(
    argv: list[str],
    flag: str,
    tmp_path: Path,
    a_file: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    argv = [a.format(tmp=work, file=a_file) for a in argv]
    code, out, err = run_main(argv, capsys)
    assert_one_line_exit_2(code, out, err, flag)
    assert sorted(p.name for p in work.iterdir()) == []  # nothing written
    assert a_file.read_text() == "not a folder"


LONG_VALUED = [
    "--symbol",
    "--timeframe",
    "--cash",
    "--rsi-period",
    "--sma-period",
    "--rsi-oversold",
    "--rsi-overbought",
    "--rsi-method",
    "--position-pct",
    "--max-drawdown",
    "--slippage-bps",
    "--commission",
    "--commission-per-share",
    "--config",
]
LONG_CASES = [
    *(["backtest", flag, LONG] for flag in LONG_VALUED),
    *(
        ["backtest", flag, LONG]
        for flag in ("--seed", "--start", "--end", "--bars", "--compare", "--data", "--trades")
    ),
    *(
        ["demo", flag, LONG]
        for flag in ("--speed", "--seed", "--data-dir", "--metrics-port", "--theme")
    ),
    *(["sandbox", flag, LONG] for flag in ("--port", "--seed", "--bar-interval", "--rate-limit")),
    *(["run", "--headless", flag, LONG] for flag in ("--data-dir", "--metrics-port", "--cash")),
    *(["trades", flag, LONG] for flag in ("--since", "--mode", "--data-dir", "--journal")),
    ["doctor", "--data-dir", LONG],
    ["audit", "verify", "--file", LONG],
    ["backtest", "--symbol=" + LONG],
    ["backtest", "--symbol", "x\n" * 5000],  # a value full of line breaks stays one line
    ["backtest", "--rsi-method", "w " * 5000],  # spaces: no single long word to catch
]


@pytest.mark.parametrize("argv", LONG_CASES, ids=[" ".join(a)[:40] for a in LONG_CASES])
def test_a_10_000_character_value_is_never_echoed_whole(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    flag = next(a for a in argv if a.startswith("--") and a != "--headless").split("=")[0]
    code, out, err = run_main(argv, capsys)
    line = assert_one_line_exit_2(code, out, err, flag.lstrip("-").split("-")[0])
    value = argv[-1].split("=", 1)[-1]
    assert value not in err
    assert value[: LONG_INPUT + 1] not in err
    assert len(line) < 400, line


def test_cut_values_keep_a_recognisable_start(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(["backtest", "--symbol", "ABCDEFGHIJ" * 1000], capsys)
    line = assert_one_line_exit_2(code, out, err, "symbol")
    assert ("ABCDEFGHIJ" * 4)[:SHOWN] + "…" in line


def test_a_long_value_in_the_config_file_is_cut_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[strategy]\nsymbol = "{"Q" * 10_000}"\n[alpaca]\nfeed = "iex"\n')
    code, out, err = run_main(["backtest", "--config", str(config)], capsys)
    line = assert_one_line_exit_2(code, out, err, "strategy.symbol")
    assert "Q" * (SHOWN + 1) not in line and "…" in line
    config.write_text(f'[alpaca]\nfeed = "{"z" * 10_000}"\n')
    code, out, err = run_main(["backtest", "--config", str(config)], capsys)
    line = assert_one_line_exit_2(code, out, err, "alpaca.feed")
    assert "z" * (SHOWN + 1) not in line


@pytest.mark.parametrize(
    "argv",
    [
        ["demo", "--speed", "1", "--seed", "0"],
        ["demo", "--speed", "10000", "--seed", str(2**32 - 1), "--metrics-port", "0"],
        ["backtest", "--start", "1900-01-01", "--end", "2199-12-31", "--bars", "2000000"],
        ["sandbox", "--port", "0", "--bar-interval", "0.01", "--rate-limit", "100000"],
        ["sandbox", "--port", "65535", "--bar-interval", "3600", "--rate-limit", "1"],
        ["run", "--headless", "--live", "--confirm-live"],
        ["trades", "--since", "2024-03-04", "--mode", "live", "--json"],
    ],
)
def test_the_edges_of_each_range_are_accepted(argv: list[str]) -> None:
    build_parser().parse_args(argv)  # no SystemExit


def test_ordinary_paths_in_messages_are_shown_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "a-reasonably-long-folder-name"
    folder.mkdir()
    assert SHOWN < len(str(folder)) <= LONG_INPUT
    code, out, err = run_main(["backtest", "--trades", str(folder)], capsys)
    line = assert_one_line_exit_2(code, out, err, "--trades")
    assert str(folder) in line


# ---- run --headless --live: a yes before anything is touched ----------------------------


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def credential_calls(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Record keyring look-ups; answer "no keys stored" so a confirmed run stops right after."""
    import tapewatch.engine.api.accounts

    calls: list[object] = []

    def load_credentials(mode: object, *args: object, **kwargs: object) -> None:
        calls.append(mode)

    monkeypatch.setattr(tapewatch.engine.api.accounts, "load_credentials", load_credentials)
    return calls


def test_live_without_confirmation_touches_nothing(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    credential_calls: list[object],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("LIVE\n"))  # not a terminal: typing is no yes
    data = tmp_path / "d"
    code, out, err = run_main(["run", "--headless", "--live", "--data-dir", str(data)], capsys)
    line = assert_one_line_exit_2(code, out, err, "--confirm-live")
    assert "real money" in line
    assert credential_calls == []
    assert not data.exists()


def test_live_confirmed_by_flag_goes_on_to_the_keys(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    credential_calls: list[object],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    argv = ["run", "--headless", "--live", "--confirm-live", "--data-dir", str(tmp_path / "d")]
    code, _out, err = run_main(argv, capsys)
    assert code == 2 and "no live API keys" in err  # it got as far as the keyring
    assert len(credential_calls) == 1


def test_live_confirmed_by_typing_live_on_a_terminal(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    credential_calls: list[object],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("sys.stdin", Tty("LIVE\n"))
    code, _out, err = run_main(
        ["run", "--headless", "--live", "--data-dir", str(tmp_path / "d")], capsys
    )
    assert "Type LIVE" in err
    assert code == 2 and "no live API keys" in err
    assert len(credential_calls) == 1


@pytest.mark.parametrize("typed", ["live\n", "yes\n", ""])
def test_anything_but_live_typed_on_a_terminal_refuses(
    typed: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    credential_calls: list[object],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("sys.stdin", Tty(typed))
    data = tmp_path / "d"
    code, out, err = run_main(["run", "--headless", "--live", "--data-dir", str(data)], capsys)
    assert code == 2 and out == ""
    assert "not confirmed" in err.splitlines()[-1]
    assert credential_calls == [] and not data.exists()


def test_paper_needs_no_confirmation(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    credential_calls: list[object],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code, _out, err = run_main(["run", "--headless", "--data-dir", str(tmp_path / "d")], capsys)
    assert code == 2 and "no paper API keys" in err
    assert len(credential_calls) == 1


@pytest.mark.parametrize("command", [["demo", "--headless"], ["run", "--headless"]])
def test_a_daily_timeframe_is_for_backtests_only(
    command: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = main([*command, "--timeframe", "1Day", "--data-dir", str(tmp_path / "d")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == [
        "tapewatch: error: --timeframe 1Day is for backtests; the console, demo and run use "
        "1Min-23Hour"
    ]
    assert not (tmp_path / "d").exists()
