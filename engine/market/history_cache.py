"""Downloaded history kept on disk as Parquet, so a second backtest of the same range is offline.

One file per (symbol, timeframe, feed, adjustment, first day, last day, source) under
``<data dir>/history/``; the name is the key, so a different range or feed is a different file
and nothing needs an index. ``source`` is empty for Alpaca's own data host and a digest of the
URL otherwise, so bars from the local sandbox are never read back as Alpaca's. Files are
written whole to a private temporary name and renamed into place (a crash never leaves half a
cache that looks complete); folders are 0700 and files 0600, like everything else in the data
directory. Reading goes through ``load_bars``, the same checked loader a user's own Parquet
file takes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from tapewatch.engine.market.bars import BarArrays
from tapewatch.engine.market.loader import load_bars, write_parquet
from tapewatch.engine.storage.datadir import FILE_MODE, private_dir

FOLDER = "history"
_SAFE = re.compile(r"^[A-Z0-9][A-Z0-9.\-]{0,19}$")


@dataclass(frozen=True, slots=True)
class HistoryKey:
    """What a cached file holds; its ``filename`` is the cache key."""

    symbol: str
    timeframe: str  # Alpaca's spelling: 5Min, 1Hour, 1Day
    feed: str
    adjustment: str
    start: date
    end: date
    source: str = ""  # "" for Alpaca's data host, else ``source_tag(url)``

    def __post_init__(self) -> None:
        if not _SAFE.match(self.symbol):
            raise ValueError(f"symbol {self.symbol!r} cannot name a cache file")

    @property
    def filename(self) -> str:
        return (
            f"{self.symbol}_{self.timeframe}_{self.feed}_{self.adjustment}_"
            f"{self.start.isoformat()}_{self.end.isoformat()}"
            f"{'_' + self.source if self.source else ''}.parquet"
        )


def source_tag(url: str) -> str:
    """A short, stable name for a data host other than Alpaca's (``src-`` + 10 hex digits)."""
    return "src-" + hashlib.sha256(url.encode()).hexdigest()[:10]


def cache_path(data_dir: Path, key: HistoryKey) -> Path:
    return Path(data_dir) / FOLDER / key.filename


def read_cached(path: Path, symbol: str) -> BarArrays | None:
    """The cached bars, or None when there is no such file (a download is then needed)."""
    if not path.is_file():
        return None
    return load_bars(path, symbol)


def write_cache(path: Path, bars: BarArrays) -> Path:
    """Store ``bars`` at ``path`` atomically, private to this user."""
    folder = private_dir(path.parent)
    temporary = folder / f".{path.name}.{os.getpid()}.part"
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE)
        os.fchmod(fd, FILE_MODE)
        os.close(fd)
        write_parquet(bars, temporary)
        os.chmod(temporary, FILE_MODE)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    return path
