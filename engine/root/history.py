"""Alpaca history for a backtest: the cache first, else a download with the user's keys.

This is the host's job (it reads keys and picks endpoints, like ``tapewatch run``): the paper
keys from ``APCA_API_KEY_ID``/``APCA_API_SECRET_KEY`` or the keyring, the data URL and feed from
the settings (``[alpaca] data_url``/``feed``, ``TAPEWATCH_ALPACA_DATA_URL``). A cached range
needs no keys and no network at all; ``refresh`` downloads it again and replaces the file.
Days are New York days: ``start`` from its midnight, ``end`` through its last second.

Alpaca's intraday bars include pre- and after-market trading; a live session ignores those
minutes (``adapters.alpaca.aggregator``), so the backtest keeps regular-session bars only, and
the cache holds what the backtest reads.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from tapewatch.engine.core.feed import DataError
from tapewatch.engine.market.bars import BarArrays, ns_from_datetime
from tapewatch.engine.market.calendar import MarketCalendar
from tapewatch.engine.market.history_cache import (
    HistoryKey,
    cache_path,
    read_cached,
    source_tag,
    write_cache,
)
from tapewatch.engine.model.types import Mode, Timeframe
from tapewatch.engine.settings.credentials import CredentialError, Credentials, load_credentials
from tapewatch.engine.settings.errors import UsageError
from tapewatch.engine.settings.model import Settings
from tapewatch.engine.storage.datadir import prepare_data_dir

NEW_YORK = ZoneInfo("America/New_York")
NO_KEYS = (
    "no Alpaca API keys to download history with: run 'tapewatch login', or set "
    "APCA_API_KEY_ID and APCA_API_SECRET_KEY"
)

KeyLoader = Callable[[Mode, Mapping[str, str] | None], Credentials | None]


class NoHistory(UsageError):
    """Alpaca had no bars for the range asked (a wrong symbol, a holiday, a future date)."""


@dataclass(frozen=True, slots=True)
class HistoryRequest:
    symbol: str
    timeframe: Timeframe
    start: date
    end: date
    refresh: bool = False


@dataclass(frozen=True, slots=True)
class History:
    """The bars and where they came from (``downloaded`` False: read from ``path``)."""

    bars: BarArrays
    path: Path | None
    downloaded: bool
    pages: int = 0
    retries: int = 0
    outside_hours: int = 0  # extended-hours bars dropped
    not_cached: str | None = None  # why the download could not be kept, if it could not

    def describe(self) -> str:
        bars = self.bars
        what = f"{len(bars):,} bars of {bars.symbol}"
        if not self.downloaded:
            return f"{what} from the cache {self.path} (--refresh downloads them again)"
        retried = f", {self.retries} retries" if self.retries else ""
        if self.outside_hours:
            retried += f", {self.outside_hours:,} extended-hours bars left out"
        kept = f", cached in {self.path}" if self.path is not None else ""
        if self.not_cached:
            kept = f"; not cached: {self.not_cached}"
        pages = f"{self.pages} page{'s' if self.pages != 1 else ''}"
        return f"{what} downloaded from Alpaca ({pages}{retried}){kept}"


def day_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """[start's New York midnight, end's last New York second]."""
    first = datetime.combine(start, clock_time(0), NEW_YORK)
    last = datetime.combine(end + timedelta(days=1), clock_time(0), NEW_YORK)
    return first, last - timedelta(seconds=1)


def regular_hours(bars: BarArrays, start: date, end: date, timeframe_seconds: int) -> BarArrays:
    """The bars that overlap a regular session (XNYS; half days close early). Alpaca aligns
    bars to the clock, so the 09:00 hourly bar holds 09:30-10:00 and is kept."""
    sessions = MarketCalendar().sessions(start, end)
    if len(bars) == 0 or not sessions:
        return bars if len(bars) == 0 else BarArrays.empty(bars.symbol)
    opens = np.array([ns_from_datetime(s.open) for s in sessions], dtype=np.int64)
    closes = np.array([ns_from_datetime(s.close) for s in sessions], dtype=np.int64)
    ts = bars.ts_ns
    ends = ts + np.int64(timeframe_seconds) * 1_000_000_000
    at = np.searchsorted(opens, ends, side="left") - 1  # the last session opening before the end
    inside = (at >= 0) & (ts < closes[np.clip(at, 0, None)])
    if bool(inside.all()):
        return bars
    return BarArrays(
        bars.symbol,
        ts[inside],
        bars.open[inside],
        bars.high[inside],
        bars.low[inside],
        bars.close[inside],
        bars.volume[inside],
    )


def _keys(load: KeyLoader, env: Mapping[str, str] | None) -> Credentials:
    creds = load(Mode.PAPER, env)
    if creds is None:
        raise CredentialError(NO_KEYS)
    return creds


def _default_load(mode: Mode, env: Mapping[str, str] | None) -> Credentials | None:
    return load_credentials(mode, env=env)


def alpaca_history(
    settings: Settings,
    request: HistoryRequest,
    *,
    env: Mapping[str, str] | None = None,
    load: KeyLoader = _default_load,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], float] = time.time,
    on_page: Callable[[int, int], None] | None = None,
) -> History:
    """The bars of ``request``: from the cache unless ``refresh``, else downloaded and cached."""
    from tapewatch.engine.adapters.alpaca.bar_download import ADJUSTMENT
    from tapewatch.engine.adapters.alpaca.endpoints import DATA_URL

    endpoints = settings.endpoints(Mode.PAPER)  # the data host is the same for paper and live
    symbol = request.symbol.strip().upper()
    tf = request.timeframe
    if request.end < request.start:
        raise UsageError(f"--end {request.end} is before --start {request.start}")
    path: Path | None = None
    if settings.data_dir is not None:
        try:
            source = "" if endpoints.data == DATA_URL else source_tag(endpoints.data)
            key = HistoryKey(
                symbol, tf.label, endpoints.feed, ADJUSTMENT, request.start, request.end, source
            )
        except ValueError as exc:
            raise UsageError(f"--symbol: {exc}; use a ticker such as SPY") from None
        path = cache_path(prepare_data_dir(settings.data_dir), key)
        try:
            cached = None if request.refresh else read_cached(path, symbol)
        except DataError as exc:  # a damaged file: say how to replace it
            raise DataError(f"{exc} (the history cache; --refresh downloads it again)") from None
        if cached is not None:
            return History(cached, path, downloaded=False)
    creds = _keys(load, env)
    from tapewatch.engine.adapters.alpaca.bar_download import BarDownloader

    downloader = BarDownloader(
        creds.key_id,
        creds.secret,
        endpoints.data,
        feed=endpoints.feed,
        sleep=sleep,
        now=now,
        on_page=on_page,
    )
    first, last = day_bounds(request.start, request.end)
    raw = downloader.download(symbol, tf, first, last)
    bars = raw if tf.unit == "Day" else regular_hours(raw, request.start, request.end, tf.seconds)
    if len(bars) == 0:
        raise NoHistory(
            f"Alpaca has no {tf.label} bars of {symbol} from {request.start} to {request.end} "
            f"on the {endpoints.feed} feed; check the symbol and the dates"
        )
    problem = None
    if path is not None and last.timestamp() >= now():
        problem = f"{request.end} is not over yet, so the range may still grow"
        path = None
    if path is not None:
        try:
            write_cache(path, bars)
        except (DataError, OSError) as exc:  # no pyarrow, a full disk: the run goes on uncached
            problem = str(exc.strerror if isinstance(exc, OSError) and exc.strerror else exc)
            path = None
    log = downloader.log
    return History(
        bars,
        path,
        downloaded=True,
        pages=log.pages,
        retries=log.retries,
        outside_hours=len(raw) - len(bars),
        not_cached=problem,
    )
