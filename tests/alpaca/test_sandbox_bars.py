# mypy: disable-error-code="union-attr,index"
# (alpaca-py types every answer as "model | raw dict" for raw_data=True; these tests use models)
"""Market-data REST against the sandbox, with the real StockHistoricalDataClient."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from alpaca.data.enums import DataFeed
from alpaca.data.historical import StockHistoricalDataClient
from alpaca.data.models import Bar
from alpaca.data.requests import StockBarsRequest, StockLatestBarRequest
from alpaca.data.timeframe import TimeFrame, TimeFrameUnit

from tapewatch.sandbox import SandboxThread
from tests.alpaca.conftest import START, data_client, sandbox_state

NEW_YORK = ZoneInfo("America/New_York")
FIVE_MIN = TimeFrame(5, TimeFrameUnit.Minute)
ONE_MIN = TimeFrame(1, TimeFrameUnit.Minute)


def _request(
    timeframe: TimeFrame, start: datetime, end: datetime | None = None
) -> StockBarsRequest:
    return StockBarsRequest(
        symbol_or_symbols=["SPY", "AAPL"],
        timeframe=timeframe,
        start=start,
        end=end,
        feed=DataFeed.IEX,
    )


def _ohlc(bars: list[Bar]) -> list[tuple[object, ...]]:
    return [(b.timestamp, b.open, b.high, b.low, b.close, b.volume, b.vwap) for b in bars]


def test_five_minute_bars_paginate_and_are_deterministic(
    sandbox: SandboxThread, data: StockHistoricalDataClient
) -> None:
    request = _request(FIVE_MIN, START - timedelta(days=4))  # Friday through Tuesday 10:00
    before = sandbox_state(sandbox)["stats"]["rest_requests"]
    first = data.get_stock_bars(request)
    pages = sandbox_state(sandbox)["stats"]["rest_requests"] - before
    assert pages >= 4  # 50 bars a page (page_size) against the SDK's limit=10000
    second = data.get_stock_bars(request)
    for symbol in ("SPY", "AAPL"):
        bars = first.data[symbol]
        assert _ohlc(bars) == _ohlc(second.data[symbol])
        stamps = [b.timestamp for b in bars]
        assert stamps == sorted(set(stamps))
        assert len(bars) == 72 + 78 + 6  # Friday from 10:00, Monday, Tuesday to 10:00
        for bar in bars:
            local = bar.timestamp.astimezone(NEW_YORK)
            assert local.weekday() < 5 and time(9, 30) <= local.time() < time(16, 0)
            assert bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high
            assert bar.low <= (bar.vwap or 0) <= bar.high
        assert bars[-1].timestamp + timedelta(minutes=5) <= START  # only finished bars


def test_same_seed_same_bars_other_seed_other_bars(
    make_sandbox: Callable[..., SandboxThread],
) -> None:
    request = _request(ONE_MIN, START - timedelta(minutes=30), START)
    runs = [
        data_client(make_sandbox(bar_interval=0, seed=seed)).get_stock_bars(request)
        for seed in (7, 7, 8)
    ]
    assert _ohlc(runs[0].data["AAPL"]) == _ohlc(runs[1].data["AAPL"])
    assert _ohlc(runs[0].data["AAPL"]) != _ohlc(runs[2].data["AAPL"])


def test_five_minute_bars_aggregate_the_minute_bars(data: StockHistoricalDataClient) -> None:
    start = START - timedelta(minutes=30)
    fives = data.get_stock_bars(_request(FIVE_MIN, start)).data["AAPL"]
    ones = data.get_stock_bars(_request(ONE_MIN, start)).data["AAPL"]
    assert len(fives) == 6
    for i, five in enumerate(fives):
        chunk = ones[5 * i : 5 * i + 5]
        assert chunk[0].timestamp == five.timestamp
        assert five.open == chunk[0].open and five.close == chunk[-1].close
        assert five.high == max(b.high for b in chunk) and five.low == min(b.low for b in chunk)
        assert five.volume == sum(b.volume for b in chunk)


def test_empty_range_gives_an_empty_barset(data: StockHistoricalDataClient) -> None:
    saturday = datetime(2024, 3, 2, 15, 0, tzinfo=UTC)
    barset = data.get_stock_bars(_request(FIVE_MIN, saturday, saturday + timedelta(hours=3)))
    assert barset.data.get("AAPL", []) == []
    with pytest.raises(KeyError):
        barset["AAPL"]  # the SDK trap documented in ALPACA-WIRE.md


def test_daily_bars_are_stamped_at_midnight_new_york(data: StockHistoricalDataClient) -> None:
    day = TimeFrame(1, TimeFrameUnit.Day)
    monday = datetime(2024, 2, 26, tzinfo=NEW_YORK)
    bars = data.get_stock_bars(_request(day, monday)).data["SPY"]
    assert [b.timestamp.astimezone(NEW_YORK).time() for b in bars] == [time(0)] * len(bars)
    assert [b.timestamp.astimezone(NEW_YORK).day for b in bars] == [26, 27, 28, 29, 1, 4]
    later = data.get_stock_bars(_request(day, monday + timedelta(hours=10))).data["SPY"]
    assert later == bars[1:]  # a bar counts from its stamp: Monday's (00:00) is before 10:00


def test_fakepaca_trades_around_the_clock(data: StockHistoricalDataClient) -> None:
    saturday = datetime(2024, 3, 2, 15, 0, tzinfo=UTC)
    request = StockBarsRequest(
        symbol_or_symbols="FAKEPACA", timeframe=ONE_MIN, start=saturday, end=saturday
    )
    assert len(data.get_stock_bars(request).data["FAKEPACA"]) == 1


def test_latest_bar_is_the_last_finished_minute(
    make_sandbox: Callable[..., SandboxThread],
) -> None:
    sandbox = make_sandbox(bar_interval=0)
    client = data_client(sandbox)
    latest = client.get_stock_latest_bar(StockLatestBarRequest(symbol_or_symbols=["AAPL", "SPY"]))
    assert latest["AAPL"].timestamp == START - timedelta(minutes=1)
    minute = client.get_stock_bars(_request(ONE_MIN, START - timedelta(minutes=1))).data["AAPL"]
    assert _ohlc(minute) == _ohlc([latest["AAPL"]])
