"""``tapewatch backtest --alpaca``: history through the real StockHistoricalDataClient from the
local sandbox (paged 50 bars at a time), cached as private Parquet, reused without a request,
refetched on --refresh, 429s waited out page by page, and one line when there are no keys."""

from __future__ import annotations

import json
import math
import os
import stat
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from alpaca.data.enums import DataFeed
from alpaca.data.requests import StockBarsRequest
from alpaca.data.timeframe import TimeFrame, TimeFrameUnit
from keyring.backend import KeyringBackend

from tapewatch.console.cli import main
from tapewatch.engine.adapters.alpaca.bar_download import HistoryError
from tapewatch.engine.adapters.alpaca.rest import RetryPolicy
from tapewatch.engine.core.feed import DataError
from tapewatch.engine.market.bars import BarArrays, ns_from_datetime
from tapewatch.engine.market.history_cache import HistoryKey, source_tag
from tapewatch.engine.model.types import Timeframe
from tapewatch.engine.root.history import HistoryRequest, alpaca_history, regular_hours
from tapewatch.engine.settings import credentials as cr
from tapewatch.engine.settings.model import Settings, load_settings
from tapewatch.sandbox import SandboxThread
from tests.alpaca.conftest import KEY, SECRET, FakeTime, data_client, sandbox_state

FIRST, LAST = date(2024, 2, 26), date(2024, 3, 1)  # Monday to Friday, before the sandbox's now
FIVE = Timeframe(5, "Min")
SESSION_BARS = 78 * 5  # five full sessions of 5-minute bars
PAGE = 50  # the fixture's page_size
QUICK = ["--rsi-period", "2", "--sma-period", "3", "--rsi-oversold", "40", "--rsi-overbought", "60"]


class MemoryKeyring(KeyringBackend):
    """A keyring in a dict, pinned for the test (no D-Bus, nothing on disk)."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.entries.pop((service, username), None)


@pytest.fixture
def keyring_() -> Iterator[MemoryKeyring]:
    backend = MemoryKeyring()
    cr.reset_backend()
    cr.select_backend(backend=backend)
    yield backend
    cr.reset_backend()


@pytest.fixture
def point_at(monkeypatch: pytest.MonkeyPatch) -> Callable[[SandboxThread], None]:
    def point(sandbox: SandboxThread) -> None:
        monkeypatch.setenv("TAPEWATCH_ALPACA_DATA_URL", sandbox.data_url)

    return point


def _keys_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APCA_API_KEY_ID", KEY)
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)


def _backtest(data_dir: Path, *extra: str) -> list[str]:
    return [
        "backtest",
        "--alpaca",
        "--symbol",
        "SPY",
        "--start",
        FIRST.isoformat(),
        "--end",
        LAST.isoformat(),
        "--timeframe",
        "5Min",
        "--data-dir",
        str(data_dir),
        "--json",
        *QUICK,
        *extra,
    ]


def _requests(sandbox: SandboxThread) -> int:
    return int(sandbox_state(sandbox)["stats"]["rest_requests"])


def _cache_files(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "history").glob("*.parquet"))


def test_download_pages_caches_privately_and_the_cache_needs_no_network(
    sandbox: SandboxThread,
    point_at: Callable[[SandboxThread], None],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    keyring_: MemoryKeyring,
) -> None:
    point_at(sandbox)
    _keys_in_env(monkeypatch)
    data_dir = tmp_path / "data"

    assert main(_backtest(data_dir)) == 0
    downloaded = capsys.readouterr()
    pages = _requests(sandbox)
    assert pages == math.ceil(SESSION_BARS / PAGE) > 2
    report = json.loads(downloaded.out)
    assert report["bars"] == SESSION_BARS and report["symbol"] == "SPY"
    assert report["trades"] > 0  # the quick thresholds trade: the comparison below means something
    assert f"downloaded from Alpaca ({pages} pages)" in downloaded.err

    [cached] = _cache_files(data_dir)
    assert cached.name.startswith(f"SPY_5Min_iex_all_{FIRST}_{LAST}_src-")
    assert stat.S_IMODE(cached.stat().st_mode) == 0o600
    assert stat.S_IMODE(cached.parent.stat().st_mode) == 0o700

    # The second run reads the cache: no request reaches the sandbox, not even with no keys.
    monkeypatch.delenv("APCA_API_KEY_ID")
    monkeypatch.delenv("APCA_API_SECRET_KEY")
    assert main(_backtest(data_dir)) == 0
    again = capsys.readouterr()
    assert _requests(sandbox) == pages
    assert "from the cache" in again.err
    assert again.out == downloaded.out  # the cached bars give the same backtest, byte for byte


def test_refresh_downloads_again_and_replaces_the_cache(
    sandbox: SandboxThread,
    point_at: Callable[[SandboxThread], None],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    keyring_: MemoryKeyring,
) -> None:
    point_at(sandbox)
    _keys_in_env(monkeypatch)
    assert main(_backtest(tmp_path)) == 0
    first = capsys.readouterr().out
    pages = _requests(sandbox)
    [cached] = _cache_files(tmp_path)
    cached.write_bytes(b"not parquet")  # a refresh must not even read what is there

    assert main(_backtest(tmp_path, "--refresh")) == 0
    refreshed = capsys.readouterr()
    assert _requests(sandbox) == 2 * pages
    assert "downloaded from Alpaca" in refreshed.err
    assert refreshed.out == first
    assert cached.read_bytes()[:4] == b"PAR1"


def test_keys_come_from_the_keyring_when_the_environment_has_none(
    sandbox: SandboxThread,
    point_at: Callable[[SandboxThread], None],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    keyring_: MemoryKeyring,
) -> None:
    point_at(sandbox)
    cr.store_credentials("paper", KEY, SECRET)
    assert main(_backtest(tmp_path)) == 0
    assert json.loads(capsys.readouterr().out)["bars"] == SESSION_BARS


def test_no_keys_is_one_line_naming_login_exit_2(
    sandbox: SandboxThread,
    point_at: Callable[[SandboxThread], None],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    keyring_: MemoryKeyring,
) -> None:
    point_at(sandbox)
    assert main(_backtest(tmp_path)) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert "tapewatch login" in captured.err and "APCA_API_KEY_ID" in captured.err
    assert _requests(sandbox) == 0 and _cache_files(tmp_path) == []


def _settings(sandbox: SandboxThread, data_dir: Path) -> Settings:
    env = {**os.environ, "TAPEWATCH_ALPACA_DATA_URL": sandbox.data_url}
    return load_settings(flags={"data_dir": str(data_dir)}, env=env)


def _env_keys(mode: object, env: object) -> cr.Credentials:
    return cr.Credentials(KEY, SECRET, "paper", "environment")


def test_a_429_mid_way_is_waited_out_and_only_that_page_is_asked_again(
    make_sandbox: Callable[..., SandboxThread], tmp_path: Path
) -> None:
    clock = FakeTime(datetime(2024, 3, 5, tzinfo=UTC).timestamp())
    sandbox = make_sandbox(data_rate_limit=3, time_source=clock)  # the 4th page in a minute: 429
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds)

    request = HistoryRequest("SPY", FIVE, FIRST, LAST)
    history = alpaca_history(
        _settings(sandbox, tmp_path),
        request,
        load=_env_keys,
        sleep=sleep,
        now=clock,
    )
    stats = sandbox_state(sandbox)["stats"]
    pages = math.ceil(SESSION_BARS / PAGE)
    assert len(history.bars) == SESSION_BARS and history.pages == pages
    assert stats["rate_limited"] >= 2 and history.retries == stats["rate_limited"]
    assert stats["rest_requests"] == pages + stats["rate_limited"]  # no page fetched twice
    assert all(s >= 1.0 for s in slept)  # at least the policy's first wait, or the reset
    # The same bars as one unthrottled request through the SDK itself (same seed, same market).
    direct = data_client(make_sandbox()).get_stock_bars(
        StockBarsRequest(
            symbol_or_symbols="SPY",
            timeframe=TimeFrame(5, TimeFrameUnit.Minute),
            start=datetime(2024, 2, 26, 5, tzinfo=UTC),
            end=datetime(2024, 3, 2, 5, tzinfo=UTC),
            feed=DataFeed.IEX,
        )
    )
    closes = [bar.close for bar in direct.data["SPY"]]  # type: ignore[union-attr]
    assert history.bars.close.tolist() == closes


def test_429s_past_the_retry_bound_are_one_line(
    make_sandbox: Callable[..., SandboxThread], tmp_path: Path
) -> None:
    sandbox = make_sandbox()
    sandbox.apply_faults(rest_error={"status": 429, "count": 50, "path": "/v2/stocks/bars"})
    slept: list[float] = []
    with pytest.raises(HistoryError) as caught:
        alpaca_history(
            _settings(sandbox, tmp_path),
            HistoryRequest("SPY", FIVE, FIRST, LAST),
            load=_env_keys,
            sleep=slept.append,
        )
    attempts = RetryPolicy().rate_limit_attempts
    assert _requests(sandbox) == attempts and len(slept) == attempts - 1
    message = str(caught.value)
    assert "\n" not in message and "429" in message and SECRET not in message
    assert _cache_files(tmp_path) == []


def test_extended_hours_bars_are_left_out() -> None:
    """Alpaca's intraday bars include 04:00-20:00 New York; a live session ignores those.
    A bar that holds part of the session stays (the 09:00 hourly bar holds 09:30-10:00)."""
    stamps = [
        datetime(2024, 3, 1, 13, 25, tzinfo=UTC),  # 08:25 New York: pre-market
        datetime(2024, 3, 1, 14, 25, tzinfo=UTC),  # 09:25: ends as the session opens
        datetime(2024, 3, 1, 14, 30, tzinfo=UTC),  # 09:30: the open
        datetime(2024, 3, 1, 20, 55, tzinfo=UTC),  # 15:55: the last regular bar
        datetime(2024, 3, 1, 21, 0, tzinfo=UTC),  # 16:00: after hours
        datetime(2024, 3, 2, 15, 0, tzinfo=UTC),  # a Saturday
    ]
    ones = [1.0] * len(stamps)
    bars = BarArrays("SPY", [ns_from_datetime(s) for s in stamps], ones, ones, ones, ones, ones)
    kept = regular_hours(bars, date(2024, 3, 1), date(2024, 3, 2), 300)
    assert kept.ts_ns.tolist() == [ns_from_datetime(s) for s in stamps[2:4]]
    gap = timedelta(hours=6, minutes=25)
    assert kept.ts_ns[1] - kept.ts_ns[0] == int(gap.total_seconds()) * 10**9


def test_a_damaged_cache_file_is_one_line_naming_refresh(
    sandbox: SandboxThread,
    point_at: Callable[[SandboxThread], None],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    keyring_: MemoryKeyring,
) -> None:
    point_at(sandbox)
    _keys_in_env(monkeypatch)
    assert main(_backtest(tmp_path)) == 0
    [cached] = _cache_files(tmp_path)
    cached.write_bytes(cached.read_bytes()[:100])  # cut short, as by a full disk
    capsys.readouterr()
    assert main(_backtest(tmp_path)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--refresh" in err and str(cached) in err


def test_a_download_that_cannot_be_cached_still_runs_and_says_why(
    sandbox: SandboxThread, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def no_pyarrow(bars: object, path: object) -> None:
        raise DataError(f"{path}: writing Parquet needs pyarrow")

    monkeypatch.setattr("tapewatch.engine.market.history_cache.write_parquet", no_pyarrow)
    history = alpaca_history(
        _settings(sandbox, tmp_path), HistoryRequest("SPY", FIVE, FIRST, LAST), load=_env_keys
    )
    assert len(history.bars) == SESSION_BARS and history.path is None
    assert "not cached" in history.describe() and "pyarrow" in history.describe()
    assert _cache_files(tmp_path) == []  # and no half-written file is left behind
    assert list((tmp_path / "history").iterdir()) == []


@pytest.mark.parametrize(
    ("timeframe", "per_day"), [(Timeframe(1, "Day"), 1), (Timeframe(1, "Hour"), 7)]
)
def test_daily_and_hourly_bars_download_through_the_sdk(
    sandbox: SandboxThread, tmp_path: Path, timeframe: Timeframe, per_day: int
) -> None:
    history = alpaca_history(
        _settings(sandbox, tmp_path), HistoryRequest("SPY", timeframe, FIRST, LAST), load=_env_keys
    )
    assert len(history.bars) == 5 * per_day
    days = history.bars.ts_ns.astype("datetime64[ns]").astype("datetime64[D]")
    assert sorted({str(d) for d in days}) == [
        f"2024-0{d}" for d in ("2-26", "2-27", "2-28", "2-29", "3-01")
    ]


def test_hourly_bars_that_hold_part_of_the_session_stay() -> None:
    stamps = [datetime(2024, 3, 1, h, tzinfo=UTC) for h in (13, 14, 20, 21)]  # 08:00 … 16:00 NY
    ones = [1.0] * len(stamps)
    bars = BarArrays("SPY", [ns_from_datetime(s) for s in stamps], ones, ones, ones, ones, ones)
    kept = regular_hours(bars, date(2024, 3, 1), date(2024, 3, 1), 3600)
    assert kept.ts_ns.tolist() == [ns_from_datetime(s) for s in stamps[1:3]]


def test_another_data_host_never_reads_the_first_ones_cache(
    make_sandbox: Callable[..., SandboxThread], tmp_path: Path
) -> None:
    request = HistoryRequest("SPY", FIVE, FIRST, LAST)
    first, second = make_sandbox(), make_sandbox(seed=8)
    one = alpaca_history(_settings(first, tmp_path), request, load=_env_keys)
    two = alpaca_history(_settings(second, tmp_path), request, load=_env_keys)
    assert one.downloaded and two.downloaded and one.path != two.path
    assert one.bars.close.tolist() != two.bars.close.tolist()
    assert len(_cache_files(tmp_path)) == 2
    again = alpaca_history(_settings(first, tmp_path), request, load=_env_keys)
    assert not again.downloaded and again.bars.close.tolist() == one.bars.close.tolist()


def test_alpacas_own_host_has_the_plain_cache_name() -> None:
    key = HistoryKey("SPY", "5Min", "iex", "all", FIRST, LAST)
    assert key.filename == f"SPY_5Min_iex_all_{FIRST}_{LAST}.parquet"
    assert source_tag("http://127.0.0.1:1") != source_tag("http://127.0.0.1:2")
    with pytest.raises(ValueError):
        HistoryKey("../etc", "5Min", "iex", "all", FIRST, LAST)


def test_a_range_that_is_not_over_is_not_cached(
    make_sandbox: Callable[..., SandboxThread], tmp_path: Path
) -> None:
    """The sandbox's market is at 10:00 New York on 2024-03-05: that day's bars still grow."""
    sandbox = make_sandbox()
    today = HistoryRequest("SPY", FIVE, LAST, date(2024, 3, 5))
    clock = FakeTime(datetime(2024, 3, 5, 15, 0, tzinfo=UTC).timestamp())
    history = alpaca_history(_settings(sandbox, tmp_path), today, load=_env_keys, now=clock)
    assert len(history.bars) == 78 * 2 + 6  # Friday, Monday, Tuesday to 10:00
    assert history.path is None and "not over yet" in history.describe()
    assert _cache_files(tmp_path) == []
