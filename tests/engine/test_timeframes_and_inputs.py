"""Issue 12, items 1, 2 and 7: every timeframe, annualisation from the data, awkward inputs."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tapewatch.console.cli import main
from tapewatch.engine.backtest.stats import annualisation
from tapewatch.engine.market.loader import load_bars, write_csv
from tapewatch.engine.market.synthetic import generate
from tapewatch.engine.model.types import Timeframe

# -- item 1: timeframes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds", "label"),
    [
        ("1Min", 60, "1Min"),
        ("15Min", 900, "15Min"),
        ("59min", 3540, "59Min"),
        ("1Hour", 3600, "1Hour"),
        ("4Hour", 14_400, "4Hour"),
        ("23Hour", 82_800, "23Hour"),
        ("1Day", 86_400, "1Day"),
        ("1day", 86_400, "1Day"),
    ],
)
def test_timeframe_parse_accepts_alpaca_spelling(text: str, seconds: int, label: str) -> None:
    tf = Timeframe.parse(text)
    assert (tf.seconds, tf.label) == (seconds, label)
    assert Timeframe.from_seconds(seconds) == tf


@pytest.mark.parametrize("text", ["0Min", "60Min", "24Hour", "2Day", "1Week", "5", ""])
def test_timeframe_parse_refuses_the_rest(text: str) -> None:
    with pytest.raises(ValueError):
        Timeframe.parse(text)


@pytest.mark.parametrize("seconds", [30, 90, 7 * 86_400, 2 * 86_400])
def test_from_seconds_none_for_unsupported_spacing(seconds: int) -> None:
    assert Timeframe.from_seconds(seconds) is None


def _hourly_csv(tmp_path: Path) -> Path:
    bars = generate(
        "SPY", seed=3, start=date(2024, 1, 2), end=date(2024, 3, 28), timeframe_seconds=3600
    )
    path = tmp_path / "hourly.csv"
    write_csv(bars, path)
    return path


def _daily_frame(periods: int = 600, tz: str = "UTC") -> pd.DataFrame:
    index = pd.bdate_range("2018-01-02", periods=periods, tz=tz, name="timestamp")
    rng = np.random.default_rng(1)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, len(index))))
    return pd.DataFrame(
        {"open": close, "high": close * 1.01, "low": close * 0.99, "close": close, "volume": 1e3},
        index=index,
    )


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict[str, object]:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_timeframe_inferred_from_hourly_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = _json(capsys, ["backtest", "--data", str(_hourly_csv(tmp_path)), "--json"])
    assert report["timeframe"] == "1Hour"
    assert report["annualisation"] == "session-bound"
    assert report["bars_per_year"] == 7 * 252  # 09:30 … 15:30 New York, 252 sessions in 2024


def test_timeframe_given_and_agreeing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _hourly_csv(tmp_path)
    report = _json(capsys, ["backtest", "--data", str(path), "--json", "--timeframe", "1Hour"])
    assert report["timeframe"] == "1Hour"


@pytest.mark.parametrize("given", ["5Min", "1Min", "1Day"])
def test_timeframe_contradicting_the_data_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], given: str
) -> None:
    path = _hourly_csv(tmp_path)
    assert main(["backtest", "--data", str(path), "--timeframe", given]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert f"--timeframe {given}" in lines[0] and "1Hour" in lines[0] and str(path) in lines[0]


def test_daily_parquet_with_datetimeindex(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "daily.parquet"
    _daily_frame().to_parquet(path)  # the timestamp is the index
    report = _json(capsys, ["backtest", "--data", str(path), "--json"])
    assert report["timeframe"] == "1Day"
    assert report["bars"] == 600
    assert report["annualisation"] == "session-bound"
    assert 250 <= float(report["bars_per_year"]) <= 253  # type: ignore[arg-type]


def test_unsupported_spacing_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = _daily_frame().iloc[::5]  # weekly bars
    path = tmp_path / "weekly.parquet"
    frame.to_parquet(path)
    assert main(["backtest", "--data", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "7 days apart" in err[0]


# -- item 2: annualisation ------------------------------------------------------------------------


def test_session_bound_5min_uses_the_calendar() -> None:
    bars = generate("SPY", seed=1, start=date(2024, 1, 2), end=date(2024, 1, 31))
    assert annualisation(bars.ts_ns, 300) == ("session-bound", 78 * 252)


def test_24_hour_data_uses_its_own_frequency() -> None:
    stamps = pd.date_range("2024-01-01", periods=500, freq="15min", tz="UTC")
    basis, per_year = annualisation(np.asarray(stamps.as_unit("ns").asi8), 900)
    assert basis == "24-hour"
    assert per_year == pytest.approx(365.25 * 96)


def test_report_says_which_annualisation(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backtest", "--bars", "500"]) == 0
    out = capsys.readouterr().out
    assert "Sharpe annualised as session-bound: 19,656 bars/year" in out


def test_24_hour_csv_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stamps = pd.date_range("2024-01-01", periods=800, freq="h", tz="UTC")
    rng = np.random.default_rng(5)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.003, len(stamps))))
    frame = pd.DataFrame(
        {
            "timestamp": stamps.as_unit("ns").asi8 // 1_000_000_000,
            "open": close,
            "high": close * 1.01,
            "low": close * 0.99,
            "close": close,
            "volume": 1.0,
        }
    )
    path = tmp_path / "btc.csv"
    frame.to_csv(path, index=False)
    assert main(["backtest", "--data", str(path)]) == 0
    assert "Sharpe annualised as 24-hour: 8,766 bars/year" in capsys.readouterr().out


# -- item 7: inputs -------------------------------------------------------------------------------


def _frame_with(ts: object) -> pd.DataFrame:
    close = [100.0, 101.0, 102.0]
    return pd.DataFrame(
        {"timestamp": ts, "open": close, "high": close, "low": close, "close": close, "volume": 1}
    )


EXPECTED_NS = [1_704_205_800_000_000_000, 1_704_206_100_000_000_000, 1_704_206_400_123_000_000]


def test_epoch_milliseconds_csv(tmp_path: Path) -> None:
    path = tmp_path / "ms.csv"
    _frame_with([1_704_205_800_000, 1_704_206_100_000, 1_704_206_400_123]).to_csv(path, index=False)
    assert load_bars(path, "SPY").ts_ns.tolist() == EXPECTED_NS


def test_epoch_seconds_csv(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    _frame_with([1_704_205_800, 1_704_206_100, 1_704_206_400]).to_csv(path, index=False)
    assert load_bars(path, "SPY").ts_ns.tolist()[:2] == EXPECTED_NS[:2]


def test_epoch_too_large_names_the_value_without_numpy_repr(tmp_path: Path) -> None:
    path = tmp_path / "us.csv"
    _frame_with([1_704_205_800_000_000, 1_704_206_100_000_000, 1_704_206_400_000_000]).to_csv(
        path, index=False
    )
    with pytest.raises(ValueError) as info:
        load_bars(path, "SPY")
    message = str(info.value)
    assert "np." not in message and "float64" not in message
    assert "1704205800000000" in message and "line 2" in message


def test_parquet_unnamed_datetimeindex(tmp_path: Path) -> None:
    frame = _daily_frame(5)
    frame.index.name = None
    path = tmp_path / "unnamed.parquet"
    frame.to_parquet(path)
    bars = load_bars(path, "SPY")
    assert len(bars) == 5
    assert bars.ts_ns[0] == pd.Timestamp("2018-01-02", tz="UTC").value


def test_parquet_alpaca_multiindex(tmp_path: Path) -> None:
    frame = _daily_frame(5)
    frame.index = pd.MultiIndex.from_arrays(
        [["SPY"] * 5, frame.index], names=["symbol", "timestamp"]
    )
    path = tmp_path / "alpaca.parquet"
    frame.to_parquet(path)
    assert len(load_bars(path, "SPY")) == 5


def test_parquet_timestamp_column(tmp_path: Path) -> None:
    path = tmp_path / "column.parquet"
    _daily_frame(5).reset_index().to_parquet(path, index=False)
    assert len(load_bars(path, "SPY")) == 5


def test_parquet_epoch_milliseconds_column(tmp_path: Path) -> None:
    path = tmp_path / "ms.parquet"
    _frame_with(np.array([1_704_205_800_000, 1_704_206_100_000, 1_704_206_400_123])).to_parquet(
        path, index=False
    )
    assert load_bars(path, "SPY").ts_ns.tolist() == EXPECTED_NS


def test_closed_stdout_pipe_ends_quietly() -> None:
    """The reader is gone before the report is written: no traceback, no internal error."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from tapewatch.console.cli import main; "
            "sys.exit(main(['backtest', '--bars', '2000']))",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # like `| head` that has already exited
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) in (0, 141)
    assert err == ""
