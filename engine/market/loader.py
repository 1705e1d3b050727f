"""Load bars from CSV or Parquet into ``BarArrays``, with one-line errors a person can act on.

Columns: ``timestamp, open, high, low, close, volume`` (header case-insensitive, extra columns
ignored). A timestamp is ISO 8601 (``2024-01-02T14:30:00Z``, an offset, or naive = **UTC**) or,
if the whole column is numeric, epoch seconds or milliseconds (told apart by magnitude: below
1e11 is seconds, below 1e14 milliseconds). It is the bar's START, like ``Bar.ts``. A Parquet file
may carry the timestamp as its index (``df.to_parquet()`` of a frame indexed by time, named or
not, or Alpaca's ``(symbol, timestamp)`` index) instead of a column.

Every problem raises ``DataError`` naming the file, the row (CSV: the file's line number, header
= line 1; Parquet: the 1-based data row) and what to do. pandas is imported lazily: the console
should not pay its start-up cost unless a file is actually loaded.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from tapewatch.engine.core.feed import DataError
from tapewatch.engine.market.bars import BarArrays

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")
PRICE_COLUMNS = ("open", "high", "low", "close")
_CSV_SUFFIXES = (".csv", ".csv.gz", ".txt")
_PARQUET_SUFFIXES = (".parquet", ".pq")
_MAX_EPOCH_SECONDS = 1e11  # year ~5138: anything larger is surely milliseconds or nanoseconds
_MAX_EPOCH_MILLIS = 1e14  # the same instant range in milliseconds
_NS_PER_SEC = 1_000_000_000
_CSV_CHUNK = 100_000  # rows parsed at a time: the C parser's buffers stay small


def _kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(_CSV_SUFFIXES):
        return "csv"
    if name.endswith(_PARQUET_SUFFIXES):
        return "parquet"
    supported = ", ".join(_CSV_SUFFIXES + _PARQUET_SUFFIXES)
    raise DataError(f"{path}: unknown file type; use one of {supported}")


class _Where:
    """Turns a DataFrame index into the row reference a person can find in the file."""

    def __init__(self, path: Path, kind: str) -> None:
        self.path = path
        self.kind = kind

    def at(self, index: int) -> str:
        if self.kind == "csv":
            return f"{self.path}: line {index + 2}"  # the header is line 1
        return f"{self.path}: row {index + 1}"


def load_bars(path: str | Path, symbol: str) -> BarArrays:
    """Read a CSV or Parquet bar file, validate it, and return its bars as columns."""
    path = Path(path)
    kind = _kind(path)
    if not path.exists():
        raise DataError(f"{path}: file not found; check the path")
    if not path.is_file():
        raise DataError(f"{path}: is not a file; give the path of a .csv or .parquet file")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror}); check its permissions") from exc
    if size == 0:
        raise DataError(f"{path}: file is empty; it needs a header line and at least one bar")
    where = _Where(path, kind)
    frames = _read_csv(path) if kind == "csv" else _read_parquet(path)
    parts = [list(part) for frame in frames if len((part := _columns(frame, where))[0])]
    _release_arrow_memory()
    if not parts:
        raise DataError(f"{path}: has a header but no bars; add data rows below the header")
    index, ts, o, h, lo, c, v = _join(parts)
    _check_order(ts, index, where)
    return BarArrays(symbol, ts, o, h, lo, c, v)


def _join(parts: list[list[np.ndarray]]) -> list[np.ndarray]:
    """Each column's chunks joined into one array, freeing the chunks column by column, so at
    most one column is held twice (joining all at once peaked at two copies of the file)."""
    joined = []
    for k in range(len(parts[0])):
        joined.append(np.concatenate([part[k] for part in parts]))
        for part in parts:
            part[k] = _EMPTY
    return joined


_EMPTY = np.empty(0)


def _release_arrow_memory() -> None:
    """Hand pyarrow's pooled buffers back to the system once the file is read (the pool
    otherwise keeps them for the whole backtest). A no-op when pyarrow was never loaded."""
    import sys

    arrow = sys.modules.get("pyarrow")
    if arrow is not None:
        arrow.default_memory_pool().release_unused()


def _pick(names: list[str], path: Path) -> dict[str, str]:
    """Map each required column to its name in the file (case-insensitive)."""
    found: dict[str, str] = {}
    for name in names:
        key = str(name).strip().lower()
        if key in COLUMNS:
            if key in found:
                raise DataError(f"{path}: column {key!r} appears twice; keep one")
            found[key] = name
    missing = [c for c in COLUMNS if c not in found]
    if missing:
        have = ", ".join(str(n) for n in names) or "none"
        raise DataError(
            f"{path}: missing column(s) {', '.join(missing)} (found: {have}); "
            f"the header must name {', '.join(COLUMNS)}"
        )
    return found


def _read_csv(path: Path) -> Iterator[pd.DataFrame]:
    """The file in chunks (bounded parser memory); each chunk's index is line number - 2."""
    import pandas as pd

    try:
        header = pd.read_csv(path, nrows=0, encoding="utf-8-sig")
        mapping = _pick(list(header.columns), path)
        with warnings.catch_warnings():
            # A first data row longer than the header would otherwise be truncated silently.
            warnings.simplefilter("error", category=pd.errors.ParserWarning)
            reader = pd.read_csv(
                path,
                encoding="utf-8-sig",
                index_col=False,
                skip_blank_lines=False,  # keeps row index = line number - 2
                skipinitialspace=True,
                chunksize=_CSV_CHUNK,
            )
            with reader:
                for chunk in reader:
                    frame = chunk[list(mapping.values())]
                    frame = frame.rename(columns={v: k for k, v in mapping.items()})
                    blank = frame.isna().all(axis=1)
                    if bool(blank.any()):
                        frame = frame[~blank]  # blank lines carry nothing; index keeps lines
                    yield frame
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{path}: file is empty; it needs a header line and bars") from exc
    except pd.errors.ParserError as exc:
        raise DataError(_parser_message(path, str(exc))) from exc
    except pd.errors.ParserWarning as exc:
        raise DataError(
            f"{path}: line 2: has more fields than the header; "
            "fix that row (a stray comma?) or delete it"
        ) from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: is not UTF-8 text; export it as UTF-8 CSV") from exc
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc}); check the file and its permissions") from exc


def _parser_message(path: Path, text: str) -> str:
    match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", text)
    if match:
        want, line, saw = match.groups()
        return (
            f"{path}: line {line}: has {saw} fields, the header has {want}; "
            "fix that row (a stray comma?) or delete it"
        )
    first = text.strip().splitlines()[0] if text.strip() else "unreadable CSV"
    return f"{path}: cannot parse CSV ({first}); check the file is comma-separated text"


def _read_parquet(path: Path) -> Iterator[pd.DataFrame]:
    """The file in chunks like the CSV reader's, each indexed by row number - 1."""
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise DataError(
            f"{path}: reading Parquet needs pyarrow; install it with "
            "pip install 'tapewatch[parquet]' or use a CSV file"
        ) from exc
    try:
        source = pq.ParquetFile(path, memory_map=False)
        schema = source.schema_arrow
        names = list(schema.names)
        index_name = _timestamp_index(schema)
        if index_name is not None and not any(str(n).strip().lower() == "timestamp" for n in names):
            names = [("timestamp" if n == index_name else n) for n in names]
            mapping = _pick(names, path)
            mapping["timestamp"] = index_name
        else:
            mapping = _pick(names, path)
        if source.metadata.num_rows == 0:
            raise DataError(f"{path}: has no rows; it needs at least one bar")
        yield from _parquet_chunks(source, mapping)
    except DataError:
        raise
    except OSError as exc:
        raise DataError(f"{path}: cannot read Parquet ({exc}); check the file") from exc
    except Exception as exc:  # pyarrow raises ArrowInvalid and friends for corrupt files
        raise DataError(f"{path}: not a readable Parquet file ({exc}); re-export it") from exc


def _parquet_chunks(source: Any, mapping: dict[str, str]) -> Iterator[pd.DataFrame]:
    """Row group by row group, one column at a time, cut into chunks. Bounded memory: pyarrow
    decodes a whole row group even when asked for batches (often the whole file: 1M bars in
    one group), and a whole-table read held its buffers and a pandas copy of every column at
    once (a 1M-bar backtest peaked near 390 MB)."""
    import pandas as pd

    offset = 0
    for group in range(source.metadata.num_row_groups):
        columns = {
            ours: source.read_row_group(group, columns=[stored]).column(0).to_pandas()
            for ours, stored in mapping.items()
        }
        rows = len(next(iter(columns.values())))
        for start in range(0, rows, _CSV_CHUNK):
            stop = min(start + _CSV_CHUNK, rows)
            index = pd.RangeIndex(offset + start, offset + stop)
            yield pd.DataFrame(
                {name: column.iloc[start:stop].set_axis(index) for name, column in columns.items()}
            )
        offset += rows
        del columns


def _timestamp_index(schema: Any) -> str | None:
    """The stored name of a pandas index column holding timestamps, if the file has one."""
    import json

    meta = (schema.metadata or {}).get(b"pandas")
    if not meta:
        return None
    try:
        index_columns = json.loads(meta).get("index_columns", [])
    except ValueError:
        return None
    for name in index_columns:
        named = isinstance(name, str) and name in schema.names
        # str() of a pyarrow timestamp type is "timestamp[<unit>(, tz=...)]": pyarrow itself was
        # imported (guarded) by the caller that opened the file.
        if named and str(schema.field(name).type).startswith("timestamp["):
            return str(name)
    return None


def _first(mask: Any) -> int | None:
    """Position of the first True in a boolean array, or None."""
    hits = np.flatnonzero(np.asarray(mask, dtype=bool))
    return int(hits[0]) if len(hits) else None


def _numeric(frame: pd.DataFrame, name: str, where: _Where) -> np.ndarray:
    import pandas as pd

    column = frame[name]
    if pd.api.types.is_bool_dtype(column) or not pd.api.types.is_numeric_dtype(column):
        values = pd.to_numeric(column, errors="coerce")
        bad = _first(values.isna().to_numpy() & column.notna().to_numpy())
        if bad is not None:
            raise DataError(
                f"{where.at(int(frame.index[bad]))}: {name} {str(column.iloc[bad])!r} is not a "
                "number; fix or delete that row"
            )
        column = values
    array = column.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = _first(~np.isfinite(array))
    if bad is not None:
        raise DataError(
            f"{where.at(int(frame.index[bad]))}: {name} is missing, NaN or infinite; "
            "fill it in or delete that row"
        )
    return array


def _timestamps(frame: pd.DataFrame, where: _Where) -> np.ndarray:
    import pandas as pd

    column = frame["timestamp"]
    missing = _first(column.isna().to_numpy())
    if missing is not None:
        raise DataError(
            f"{where.at(int(frame.index[missing]))}: timestamp is empty; "
            "give an ISO 8601 time such as 2024-01-02T14:30:00Z"
        )
    if isinstance(column.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(column):
        return _epoch_ns(column)  # naive datetimes are UTC
    numbers = pd.to_numeric(column, errors="coerce")
    if not bool(numbers.isna().any()):
        return _epoch_seconds(frame, numbers.to_numpy(dtype=np.float64), where)
    with _quiet_pandas():
        parsed = pd.to_datetime(column.astype(str), utc=True, format="ISO8601", errors="coerce")
    bad = _first(parsed.isna().to_numpy())
    if bad is not None:
        raise DataError(
            f"{where.at(int(frame.index[bad]))}: timestamp {str(column.iloc[bad])!r} is not "
            "ISO 8601; write it like 2024-01-02T14:30:00Z (naive times are read as UTC)"
        )
    return _epoch_ns(parsed)


def _epoch_ns(column: pd.Series) -> np.ndarray:
    """Datetime column (tz-aware, or naive meaning UTC) as int64 epoch nanoseconds."""
    import pandas as pd

    return np.array(pd.DatetimeIndex(column).as_unit("ns").asi8, dtype=np.int64)


def _epoch_seconds(frame: pd.DataFrame, seconds: np.ndarray, where: _Where) -> np.ndarray:
    """Epoch seconds, or milliseconds when the column's largest value says so, as epoch ns."""
    finite = np.isfinite(seconds)
    bad = _first(~finite)
    if bad is None and len(seconds):
        biggest = float(np.max(np.abs(seconds)))
        if _MAX_EPOCH_SECONDS <= biggest < _MAX_EPOCH_MILLIS:
            if bool(np.all(seconds == np.floor(seconds))):  # whole milliseconds: exact in ints
                return seconds.astype(np.int64) * (_NS_PER_SEC // 1000)
            seconds = seconds / 1000.0
        bad = _first(np.abs(seconds) >= _MAX_EPOCH_SECONDS)
    if bad is not None:
        raise DataError(
            f"{where.at(int(frame.index[bad]))}: timestamp {_plain(seconds[bad])} is not epoch "
            "seconds or milliseconds; use one of those (the whole column alike) or ISO 8601 times"
        )
    whole = np.floor(seconds)
    frac_ns = np.round((seconds - whole) * _NS_PER_SEC).astype(np.int64)
    return whole.astype(np.int64) * _NS_PER_SEC + frac_ns


def _plain(value: Any) -> str:
    """A number as a person writes it (never numpy's ``np.float64(...)`` repr)."""
    number = float(value)
    return f"{int(number)}" if number.is_integer() else repr(number)


@contextmanager
def _quiet_pandas() -> Iterator[None]:
    """Silence pandas' own deprecation chatter inside a parse (never user-facing warnings)."""
    import pandas as pd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=pd.errors.Pandas4Warning)
        yield


def _columns(frame: pd.DataFrame, where: _Where) -> tuple[np.ndarray, ...]:
    """Row index, timestamps and OHLCV of one chunk, with every per-row check applied."""
    ts = _timestamps(frame, where)
    o, h, lo, c, v = (_numeric(frame, name, where) for name in COLUMNS[1:])

    def fail(mask: np.ndarray, problem: str) -> None:
        bad = _first(mask)
        if bad is not None:
            raise DataError(f"{where.at(int(frame.index[bad]))}: {problem}")

    fail(h < lo, "high is below low; fix the high/low values or delete that row")
    for name, column in zip(PRICE_COLUMNS, (o, h, lo, c), strict=True):
        fail(column <= 0, f"{name} must be positive; fix or delete that row")
    fail(v < 0, "volume is negative; fix it (0 is allowed) or delete that row")
    index = np.asarray(frame.index, dtype=np.int64)
    return index, ts, o, h, lo, c, v


def _check_order(ts: np.ndarray, index: np.ndarray, where: _Where) -> None:
    """Timestamps must strictly increase: one bar per time, oldest first."""
    step = np.diff(ts)
    dup = _first(step == 0)
    if dup is not None:
        raise DataError(
            f"{where.at(int(index[dup + 1]))}: duplicate timestamp (same as the row "
            "before); keep one bar per timestamp"
        )
    back = _first(step < 0)
    if back is not None:
        raise DataError(
            f"{where.at(int(index[back + 1]))}: timestamp goes back in time; "
            "sort the file by timestamp (oldest first)"
        )


def write_csv(bars: BarArrays, path: str | Path) -> None:
    """Write bars as CSV that ``load_bars`` reads back exactly (UTC ``...Z`` times, repr floats)."""
    path = Path(path)
    ts = bars.ts_ns
    unit: Literal["s", "ns"] = "s" if bool(np.all(ts % _NS_PER_SEC == 0)) else "ns"
    chunk = 65_536
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(",".join(COLUMNS) + "\n")
        for lo in range(0, len(bars), chunk):
            hi = min(lo + chunk, len(bars))
            moments: np.ndarray[Any, np.dtype[np.datetime64]] = ts[lo:hi].view("datetime64[ns]")
            stamps = np.datetime_as_string(moments, unit=unit)
            rows = zip(
                stamps.tolist(),
                bars.open[lo:hi].tolist(),
                bars.high[lo:hi].tolist(),
                bars.low[lo:hi].tolist(),
                bars.close[lo:hi].tolist(),
                bars.volume[lo:hi].tolist(),
                strict=True,
            )
            lines = (f"{t}Z,{o!r},{h!r},{lw!r},{c!r},{v!r}\n" for t, o, h, lw, c, v in rows)
            out.write("".join(lines))


def write_parquet(bars: BarArrays, path: str | Path) -> None:
    """Write bars as Parquet (tz-aware UTC timestamps); needs pyarrow (``tapewatch[parquet]``)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise DataError(
            f"{path}: writing Parquet needs pyarrow; "
            "install it with pip install 'tapewatch[parquet]'"
        ) from exc
    table = pa.table(
        {
            "timestamp": pa.array(bars.ts_ns, type=pa.timestamp("ns", tz="UTC")),
            "open": bars.open,
            "high": bars.high,
            "low": bars.low,
            "close": bars.close,
            "volume": bars.volume,
        }
    )
    pq.write_table(table, str(path))


__all__ = ["COLUMNS", "load_bars", "write_csv", "write_parquet"]
