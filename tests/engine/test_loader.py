"""Bar files: exact round trips, and one clear line (file, row, fix) for every bad input."""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest

from tapewatch.engine.core.feed import DataError
from tapewatch.engine.market.bars import BarArrays
from tapewatch.engine.market.loader import load_bars, write_csv, write_parquet
from tapewatch.engine.market.synthetic import generate

HEADER = "timestamp,open,high,low,close,volume\n"
ROW1 = "2024-01-02T14:30:00Z,100,101,99,100.5,1000\n"
ROW2 = "2024-01-02T14:35:00Z,100.5,102,100,101,2000\n"
ROW3 = "2024-01-02T14:40:00Z,101,101.5,100.2,100.8,1500\n"
FIELDS = ("ts_ns", "open", "high", "low", "close", "volume")


def write(tmp_path: Path, text: str, name: str = "bars.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_for(path: Path) -> str:
    with pytest.raises(DataError) as info:
        load_bars(path, "SPY")
    message = str(info.value)
    assert "\n" not in message  # one line
    assert str(path) in message  # names the file
    return message


def same(a: BarArrays, b: BarArrays) -> bool:
    return all(np.array_equal(getattr(a, f), getattr(b, f)) for f in FIELDS)


@pytest.fixture(scope="module")
def sample() -> BarArrays:
    return generate(seed=4, start=date(2024, 3, 4), end=date(2024, 3, 15))


# -- good files -------------------------------------------------------------------------------


def test_csv_round_trip_is_exact(tmp_path: Path, sample: BarArrays) -> None:
    path = tmp_path / "spy.csv"
    write_csv(sample, path)
    loaded = load_bars(path, "SPY")
    assert loaded.symbol == "SPY"
    assert same(loaded, sample)
    assert path.read_text().splitlines()[1].startswith("2024-03-04T14:30:00Z,")


def test_parquet_round_trip_is_exact(tmp_path: Path, sample: BarArrays) -> None:
    path = tmp_path / "spy.parquet"
    write_parquet(sample, path)
    assert same(load_bars(path, "SPY"), sample)


def test_parquet_written_by_pandas_with_naive_times(tmp_path: Path) -> None:
    import pandas as pd

    frame = pd.DataFrame(
        {
            "Timestamp": pd.to_datetime(["2024-01-02 14:30", "2024-01-02 14:35"]),
            "Open": [1.0, 2.0],
            "High": [2.0, 3.0],
            "Low": [0.5, 1.5],
            "Close": [1.5, 2.5],
            "Volume": [10, 20],
            "vwap": [1.2, 2.2],
        }
    )
    path = tmp_path / "bars.pq"
    frame.to_parquet(path)
    bars = load_bars(path, "SPY")
    assert bars.bar(0).ts == datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
    assert bars.volume.tolist() == [10.0, 20.0]


def test_header_case_extra_columns_and_timestamp_styles(tmp_path: Path) -> None:
    text = (
        "Symbol,TIMESTAMP,Open,High,Low,Close,Volume,trade_count\n"
        "SPY,2024-01-02 14:30:00,100,101,99,100.5,1000,5\n"  # naive = UTC
        "SPY,2024-01-02T09:35:00-05:00,100.5,102,100,101,2000,6\n"  # an offset
        "SPY,2024-01-02T14:40:00.000+00:00,101,101.5,100.2,100.8,1500,7\n"
    )
    bars = load_bars(write(tmp_path, text), "QQQ")
    assert bars.symbol == "QQQ"
    assert [b.ts.minute for b in bars.iter_bars()] == [30, 35, 40]
    assert all(b.ts.tzinfo is not None and b.ts.hour == 14 for b in bars.iter_bars())


def test_epoch_seconds_are_accepted(tmp_path: Path) -> None:
    text = HEADER + "1704205800,100,101,99,100.5,1000\n1704206100,100.5,102,100,101,2000\n"
    bars = load_bars(write(tmp_path, text), "SPY")
    assert bars.bar(0).ts == datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
    assert bars.bar(1).ts == datetime(2024, 1, 2, 14, 35, tzinfo=UTC)


def test_blank_lines_are_skipped_and_line_numbers_stay_true(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + ROW1 + "\n" + ROW2 + "2024-01-02T14:40:00Z,1,1,1,x,1\n")
    assert "line 5" in error_for(path)
    assert len(load_bars(write(tmp_path, HEADER + ROW1 + "\n" + ROW2, "ok.csv"), "SPY")) == 2


# -- bad files --------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    message = error_for(tmp_path / "nope.csv")
    assert "not found" in message


def test_directory_instead_of_a_file(tmp_path: Path) -> None:
    folder = tmp_path / "bars.csv"
    folder.mkdir()
    assert "not a file" in error_for(folder)


def test_unreadable_file(tmp_path: Path) -> None:
    path = write(tmp_path, "\xff\xfe garbage", "bin.csv")
    path.write_bytes(b"timestamp,open\n\xff\xfe\xfa\n")
    assert "UTF-8" in error_for(path)


def test_unknown_extension(tmp_path: Path) -> None:
    message = error_for(write(tmp_path, HEADER + ROW1, "bars.xlsx"))
    assert "unknown file type" in message and ".csv" in message and ".parquet" in message


def test_empty_file(tmp_path: Path) -> None:
    assert "empty" in error_for(write(tmp_path, ""))


def test_header_without_rows(tmp_path: Path) -> None:
    assert "no bars" in error_for(write(tmp_path, HEADER))


def test_missing_columns_are_named(tmp_path: Path) -> None:
    message = error_for(write(tmp_path, "timestamp,open,close\n2024-01-02T14:30:00Z,1,1\n"))
    assert "missing column(s) high, low, volume" in message


def test_unparseable_timestamp(tmp_path: Path) -> None:
    message = error_for(write(tmp_path, HEADER + ROW1 + "yesterday,1,2,0.5,1,10\n"))
    assert "line 3" in message and "'yesterday'" in message and "ISO 8601" in message


def test_epoch_microseconds_are_caught(tmp_path: Path) -> None:
    """Seconds and milliseconds are read (issue 12); anything larger is refused by the row."""
    message = error_for(write(tmp_path, HEADER + "1704205800000000,100,101,99,100.5,1000\n"))
    assert "line 2" in message and "epoch seconds or milliseconds" in message


def test_garbage_value(tmp_path: Path) -> None:
    message = error_for(write(tmp_path, HEADER + ROW1 + "2024-01-02T14:35:00Z,1,2,0.5,abc,10\n"))
    assert "line 3" in message and "close 'abc' is not a number" in message


def test_ragged_row(tmp_path: Path) -> None:
    message = error_for(write(tmp_path, HEADER + ROW1 + "2024-01-02T14:35:00Z,1,2,0.5,1,10,9\n"))
    assert "line 3" in message and "7 fields" in message


def test_nan_value(tmp_path: Path) -> None:
    message = error_for(write(tmp_path, HEADER + ROW1 + "2024-01-02T14:35:00Z,1,2,NaN,1,10\n"))
    assert "line 3" in message and "low is missing, NaN" in message


def test_empty_cell(tmp_path: Path) -> None:
    message = error_for(write(tmp_path, HEADER + ROW1 + ROW2 + "2024-01-02T14:40:00Z,1,2,0.5,1,\n"))
    assert "line 4" in message and "volume" in message


def test_high_below_low(tmp_path: Path) -> None:
    message = error_for(write(tmp_path, HEADER + ROW1 + "2024-01-02T14:35:00Z,1,0.5,2,1,10\n"))
    assert "line 3" in message and "high is below low" in message


def test_non_positive_price(tmp_path: Path) -> None:
    message = error_for(write(tmp_path, HEADER + "2024-01-02T14:30:00Z,0,1,0,0.5,10\n"))
    assert "line 2" in message and "open must be positive" in message


def test_negative_volume(tmp_path: Path) -> None:
    message = error_for(write(tmp_path, HEADER + ROW1 + ROW2 + "2024-01-02T14:40:00Z,1,2,1,1,-5\n"))
    assert "line 4" in message and "volume is negative" in message


def test_unsorted_timestamps(tmp_path: Path) -> None:
    message = error_for(write(tmp_path, HEADER + ROW1 + ROW3 + ROW2))
    assert "line 4" in message and "sort the file" in message


def test_duplicate_timestamps(tmp_path: Path) -> None:
    message = error_for(write(tmp_path, HEADER + ROW1 + ROW2 + ROW2))
    assert "line 4" in message and "duplicate timestamp" in message


def test_parquet_rows_are_counted_from_one(tmp_path: Path, sample: BarArrays) -> None:
    bad = BarArrays(
        "SPY",
        sample.ts_ns[:3],
        sample.open[:3],
        np.array([1.0, 1.0, 0.5]),
        np.array([0.9, 0.9, 0.9]),
        sample.close[:3],
        sample.volume[:3],
    )
    path = tmp_path / "bad.parquet"
    write_parquet(bad, path)
    assert "row 3" in error_for(path)


def test_corrupt_parquet(tmp_path: Path) -> None:
    assert "Parquet" in error_for(write(tmp_path, "not parquet at all", "x.parquet"))


def test_parquet_without_pyarrow_says_what_to_install(
    tmp_path: Path, sample: BarArrays, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "spy.parquet"
    write_parquet(sample, path)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    assert "tapewatch[parquet]" in error_for(path)


def test_ragged_first_row(tmp_path: Path) -> None:
    message = error_for(write(tmp_path, HEADER + "2024-01-02T14:35:00Z,1,2,0.5,1,10,9\n" + ROW2))
    assert "line 2" in message and "more fields than the header" in message


def test_line_numbers_survive_chunked_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tapewatch.engine.market.loader as loader

    monkeypatch.setattr(loader, "_CSV_CHUNK", 2)
    good = HEADER + ROW1 + "\n" + ROW2 + ROW3
    assert len(load_bars(write(tmp_path, good, "good.csv"), "SPY")) == 3
    assert "line 5" in error_for(write(tmp_path, HEADER + ROW1 + ROW2 + ROW3 + ROW2))
    assert "line 6" in error_for(write(tmp_path, good + "2024-01-02T14:45:00Z,1,1,1,x,1\n"))


def test_parquet_is_read_in_row_groups_and_chunks_exactly(
    tmp_path: Path, sample: BarArrays, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many row groups, chunks smaller than a group: the same bars, and row numbers that count
    across both (the loader reads a column of a group at a time to bound its memory)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    import tapewatch.engine.market.loader as loader

    monkeypatch.setattr(loader, "_CSV_CHUNK", 7)
    n = len(sample)
    table = pa.table(
        {
            "timestamp": pa.array(sample.ts_ns, type=pa.timestamp("ns", tz="UTC")),
            "open": sample.open,
            "high": sample.high,
            "low": sample.low,
            "close": sample.close,
            "volume": sample.volume,
        }
    )
    path = tmp_path / "groups.parquet"
    pq.write_table(table, path, row_group_size=50)
    assert pq.ParquetFile(path).metadata.num_row_groups > 2
    assert same(load_bars(path, "SPY"), sample)

    broken = sample.high.copy()
    broken[n - 3] = sample.low[n - 3] / 2  # high below low, in the last row group
    pq.write_table(table.set_column(2, "high", pa.array(broken)), path, row_group_size=50)
    assert f"row {n - 2}" in error_for(path)
