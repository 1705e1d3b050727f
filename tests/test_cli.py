"""The command line: help, version, one-line errors with exit 2, deterministic backtests,
and the headless demo stopping cleanly on SIGTERM."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tapewatch.console.cli import main
from tapewatch.engine.core.portfolio import rebuild
from tapewatch.engine.model.events import SessionStopped
from tapewatch.engine.storage.journal import Journal

SHORT = ["--synthetic", "--seed", "5", "--start", "2024-03-04", "--end", "2024-03-29"]


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own exits (--help, --version, bad flags)
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(["--version"], capsys)
    assert code == 0 and out.startswith("tapewatch 0.")
    code, out, _ = run_main(["--help"], capsys)
    assert code == 0
    for command in ("demo", "backtest", "sandbox"):
        assert command in out


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["backtest", "--bogus"], "unrecognized arguments: --bogus"),
        (["backtest", "--rsi-oversold", "70", "--rsi-overbought", "30"], "--rsi-oversold"),
        (["backtest", "--rsi-period", "1"], "--rsi-period"),
        (["backtest", "--sma-period", "0"], "--sma-period"),
        (["backtest", "--position-pct", "1.5"], "--position-pct"),
        (["backtest", "--position-pct", "0"], "--position-pct"),
        (["backtest", "--max-drawdown", "2"], "--max-drawdown"),
        (["backtest", "--timeframe", "7Days"], "timeframe"),
        (["backtest", "--cash", "abc"], "--cash"),
        (["backtest", "--start", "2024-13-01"], "YYYY-MM-DD"),
        (["backtest", "--compare", "70-30"], "--compare"),
        (["backtest", "--compare", "30/70"], "--compare"),
        (["backtest", "--data", "/nonexistent/bars.csv"], "bars.csv"),
        (["demo", "--headless", "--speed", "0"], "--speed"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    argv: list[str], needle: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = run_main([*argv], capsys)
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert needle in lines[0]
    assert "Traceback" not in err
    assert out == ""


def test_a_malformed_data_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bars.csv"
    bad.write_text("timestamp,open,high,low,close,volume\n2024-01-02T14:30:00Z,1,0.5,1,1,10\n")
    code, _, err = run_main(["backtest", "--data", str(bad)], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "bars.csv" in err


def test_backtest_json_is_byte_identical_across_runs(capsys: pytest.CaptureFixture[str]) -> None:
    first = run_main(["backtest", *SHORT, "--json"], capsys)
    second = run_main(["backtest", *SHORT, "--json"], capsys)
    assert first[0] == second[0] == 0
    assert first[1] == second[1]
    report = json.loads(first[1])
    assert report["bars"] == 19 * 78  # 2024-03-29 is Good Friday: no session
    assert {
        "end_equity",
        "total_return",
        "cagr",
        "max_drawdown",
        "sharpe",
        "trades",
        "win_rate",
        "avg_trade",
        "exposure",
        "fees",
    } <= set(report)


def test_backtest_table_trades_csv_and_compare(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trades = tmp_path / "trades.csv"
    argv = [
        "backtest",
        *SHORT,
        "--rsi-oversold",
        "40",
        "--rsi-overbought",
        "60",
        "--commission",
        "1",
        "--trades",
        str(trades),
    ]
    code, out, _ = run_main(argv, capsys)
    assert code == 0
    assert "End equity" in out and "Sharpe" in out
    rows = list(csv.DictReader(trades.open()))
    assert rows, "the run should trade with these thresholds"
    assert list(rows[0]) == ["time", "side", "quantity", "price", "fees"]
    assert all(float(r["fees"]) == 1.0 for r in rows)
    code, out, _ = run_main(["backtest", *SHORT, "--compare", "70/30,60/40", "--json"], capsys)
    both = json.loads(out)["compare"]
    assert [(r["rsi_overbought"], r["rsi_oversold"]) for r in both] == [(70, 30), (60, 40)]
    assert both[0]["bars"] == both[1]["bars"]
    code, out, _ = run_main(["backtest", *SHORT, "--compare", "70/30,60/40"], capsys)
    assert "70/30" in out and "60/40" in out


def test_demo_headless_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    env = {**os.environ, "TAPEWATCH_DATA_DIR": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tapewatch.console.cli",
            "demo",
            "--headless",
            "--speed",
            "3000",
            "--seed",
            "3",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(lines) < 15:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
        assert any("-> HOLD" in line or "-> BUY" in line or "-> SELL" in line for line in lines), (
            lines
        )
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "session stopped: received SIGTERM" in out
    (path,) = (tmp_path / "demo").glob("journal-*.sqlite3")
    with Journal(path) as journal:
        events = [e for _, e in journal.events()]
    assert isinstance(events[-1], SessionStopped)
    assert rebuild(events).cash > 0


def test_an_unusable_data_dir_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the data directory should be")
    code, _out, err = run_main(
        ["demo", "--headless", "--speed", "1000", "--data-dir", str(blocker)], capsys
    )
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "not-a-dir" in err and "Traceback" not in err
    assert blocker.read_text().startswith("a file")  # nothing touched


def test_a_journal_from_a_newer_tapewatch_is_refused_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import sqlite3

    from tapewatch.engine.storage.journal import Journal, JournalError

    path = tmp_path / "journal.sqlite3"
    Journal(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    before = path.read_bytes()
    with pytest.raises(JournalError, match="newer"):
        Journal(path)
    assert path.read_bytes() == before


def test_the_sandbox_without_its_extra_is_one_line_naming_the_install() -> None:
    """aiohttp comes with tapewatch[sandbox]; without it the command says so, exit 2."""
    code = (
        "import sys\n"
        "sys.modules['aiohttp'] = None  # as if the [sandbox] extra were not installed\n"
        "from tapewatch.console.cli import main\n"
        "sys.exit(main(['sandbox', '--port', '0']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "tapewatch sandbox: the sandbox needs its server packages: pip install 'tapewatch[sandbox]'"
    ]
