"""Bars of any timeframe for a backtest, downloaded through alpaca-py's StockHistoricalDataClient.

The SDK pages on its own (``_get_marketdata`` follows ``next_page_token`` until it is null), so
retries must happen per page, not per call: a 429 on page 30 of 40 must not fetch pages 1-29
again. ``PagingSession`` is the client's ``requests`` session; it answers a 429 (and a 5xx or a
dropped connection: a GET for bars is always safe to repeat) by waiting as the project's
``RetryPolicy`` says, at least until the server's ``X-RateLimit-Reset``, and asking again, a
bounded number of times. The SDK's own blocking retries are switched off (``harden``), so after
the last attempt its ``APIError`` surfaces and becomes one ``HistoryError`` line.

Answers are read as raw dicts (``raw_data=True``): 10,000 pydantic ``Bar`` models a page would
cost more than the download. Daily bars go on the wire as ``1Day`` (``mapping.sdk_timeframe``
knows minutes and hours only, which is all a live session uses).
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import requests
from alpaca.data.enums import Adjustment
from alpaca.data.historical import StockHistoricalDataClient
from alpaca.data.requests import StockBarsRequest
from alpaca.data.timeframe import TimeFrame, TimeFrameUnit

from tapewatch.engine.adapters.alpaca.errors import RETRYABLE_STATUSES, classify
from tapewatch.engine.adapters.alpaca.mapping import data_feed
from tapewatch.engine.adapters.alpaca.rate import RequestBudget
from tapewatch.engine.adapters.alpaca.rest import (
    DEFAULT_TIMEOUT,
    RetryPolicy,
    TimedSession,
    harden,
)
from tapewatch.engine.market.bars import BarArrays
from tapewatch.engine.model.types import Timeframe
from tapewatch.engine.settings.errors import TapewatchError

ADJUSTMENT = "all"  # splits and dividends: a backtest over a split must not see a -50% bar
_UNITS = {"Min": TimeFrameUnit.Minute, "Hour": TimeFrameUnit.Hour, "Day": TimeFrameUnit.Day}

Sleep = Callable[[float], None]
PageSeen = Callable[[int, int], None]
"""Told (pages answered so far, bars received so far) after every page."""


class HistoryError(TapewatchError):
    """The download failed (refused keys, a bad symbol, 429s past the retry bound): one line."""


@dataclass
class PageLog:
    """What the session saw: pages answered, retries made and why (for the report and tests)."""

    pages: int = 0
    bars: int = 0
    retries: int = 0
    rate_limited: int = 0


class PagingSession(TimedSession):
    """A timed, budget-counting session that retries one page at a time (see the module doc)."""

    def __init__(
        self,
        timeout: float,
        budget: RequestBudget,
        *,
        policy: RetryPolicy,
        sleep: Sleep,
        now: Callable[[], float],
        rng: random.Random,
        log: PageLog,
    ) -> None:
        super().__init__(timeout, budget)
        self.policy = policy
        self.sleep = sleep
        self.now = now
        self.rng = rng
        self.log = log

    def request(self, method: Any, url: Any, *args: Any, **kwargs: Any) -> requests.Response:
        attempt = 1
        while True:
            try:
                response = super().request(method, url, *args, **kwargs)
            except (requests.ConnectionError, requests.Timeout):
                if attempt >= self.policy.attempts(None):
                    raise
                self._wait(None, attempt, {})
                attempt += 1
                continue
            status = response.status_code
            if status not in RETRYABLE_STATUSES or attempt >= self.policy.attempts(status):
                return response
            self._wait(status, attempt, response.headers)
            attempt += 1

    def _wait(self, status: int | None, attempt: int, headers: Mapping[str, str]) -> None:
        delay = self.policy.wait(status, attempt, self.rng)
        if status == 429:
            self.log.rate_limited += 1
            # the server says when its window frees up: no point asking again before that
            with contextlib.suppress(KeyError, TypeError, ValueError):
                reset = float(headers["X-RateLimit-Reset"]) - self.now()
                delay = max(delay, min(self.policy.cap, reset))
        self.log.retries += 1
        self.sleep(max(0.0, delay))


def sdk_timeframe(tf: Timeframe) -> TimeFrame:
    """``TimeFrame(5, Minute)``, ``TimeFrame(1, Hour)``, ``TimeFrame(1, Day)``."""
    return TimeFrame(tf.amount, _UNITS[tf.unit])


def _columns(symbol: str, raw: list[dict[str, Any]]) -> BarArrays:
    """Raw bar dicts (``t`` RFC 3339, ``o h l c v``) as columns, oldest first."""
    if not raw:
        return BarArrays.empty(symbol)
    import pandas as pd

    stamps = pd.to_datetime([b["t"] for b in raw], utc=True)
    ts = np.asarray(stamps.as_unit("ns").asi8, dtype=np.int64)
    fields = {k: np.fromiter((float(b[k]) for b in raw), np.float64, len(raw)) for k in "ohlcv"}
    order = np.argsort(ts, kind="stable")
    if bool(np.any(order != np.arange(len(ts)))):
        ts = ts[order]
        fields = {k: v[order] for k, v in fields.items()}
    return BarArrays(symbol, ts, fields["o"], fields["h"], fields["l"], fields["c"], fields["v"])


class BarDownloader:
    """``download(symbol, timeframe, start, end)``: every bar starting in [start, end]."""

    def __init__(
        self,
        key_id: str,
        secret: str,
        url: str,
        *,
        feed: str = "iex",
        timeout: float = DEFAULT_TIMEOUT,
        policy: RetryPolicy | None = None,
        sleep: Sleep = time.sleep,
        now: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        on_page: PageSeen | None = None,
    ) -> None:
        self.feed = feed
        self.url = url
        self.log = PageLog()
        self._secrets = (key_id, secret)
        self._on_page = on_page
        budget = RequestBudget()
        client = harden(
            StockHistoricalDataClient(key_id, secret, url_override=url, raw_data=True),
            timeout=timeout,
            budget=budget,
        )
        session = PagingSession(
            timeout,
            budget,
            policy=policy or RetryPolicy(),
            sleep=sleep,
            now=now,
            rng=rng or random.Random(),
            log=self.log,
        )
        session.hooks["response"].append(self._count)
        client._session = session
        self._client = client

    def _count(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        if response.status_code != 200:
            return
        try:
            body = response.json()
            self.log.bars += sum(len(v) for v in (body.get("bars") or {}).values())
        except (ValueError, AttributeError, TypeError):
            return
        self.log.pages += 1
        if self._on_page is not None:
            self._on_page(self.log.pages, self.log.bars)

    def download(
        self, symbol: str, timeframe: Timeframe, start: datetime, end: datetime
    ) -> BarArrays:
        request = StockBarsRequest(
            symbol_or_symbols=[symbol],
            timeframe=sdk_timeframe(timeframe),
            start=start,
            end=end,
            feed=data_feed(self.feed),
            adjustment=Adjustment(ADJUSTMENT),
        )
        what = f"GET bars {symbol} {timeframe.label} from {self.url}"
        try:
            raw: Any = self._client.get_stock_bars(request)
        except Exception as exc:  # every SDK / requests failure, classified and scrubbed once
            error = classify(exc, what, secrets=self._secrets)
            after = f" after {self.log.retries} retries" if self.log.retries else ""
            raise HistoryError(f"downloading bars failed{after}: {error}") from None
        return _columns(symbol, list(raw.get(symbol, [])))
