"""Minute bars from Alpaca's market-data REST, and how far back warming up must reach.

Only 1-minute bars are fetched, even for a 5-minute or 1-hour strategy: the aggregator then
builds history and live bars the same way (session-anchored, start-labelled), so warm-up bars
can never differ from the bars traded. The request uses the SDK's ``TimeFrame`` object (a
"1Min" string fails its validation), ``DataFeed.IEX`` explicitly (a free plan gets 403 for
recent SIP data otherwise) and reads ``barset.data.get(symbol, [])`` (an empty range has no key).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from alpaca.data.enums import Adjustment
from alpaca.data.historical import StockHistoricalDataClient
from alpaca.data.requests import StockBarsRequest

from tapewatch.engine.adapters.alpaca.mapping import data_feed, sdk_timeframe, to_bar
from tapewatch.engine.adapters.alpaca.rate import RequestBudget
from tapewatch.engine.adapters.alpaca.rest import DEFAULT_TIMEOUT, RestCaller, RetryPolicy
from tapewatch.engine.market.calendar import MarketCalendar
from tapewatch.engine.model.types import Bar, Timeframe

ONE_MINUTE = Timeframe(1, "Min")


class MinuteHistory:
    """``fetch(symbol, first, last)``: finished minute bars starting in [first, last]."""

    def __init__(
        self,
        key_id: str,
        secret: str,
        url: str,
        *,
        feed: str = "iex",
        timeout: float = DEFAULT_TIMEOUT,
        policy: RetryPolicy | None = None,
        rate_limit_per_minute: int = 200,
    ) -> None:
        self.budget = RequestBudget(rate_limit_per_minute)
        self._feed = data_feed(feed)

        def factory() -> StockHistoricalDataClient:
            return StockHistoricalDataClient(key_id, secret, url_override=url)

        self.rest: RestCaller[StockHistoricalDataClient] = RestCaller(
            "data",
            factory,
            budget=self.budget,
            timeout=timeout,
            policy=policy,
            secrets=(key_id, secret),
        )

    async def fetch(self, symbol: str, first: datetime, last: datetime) -> list[Bar]:
        if last < first:
            return []
        request = StockBarsRequest(
            symbol_or_symbols=[symbol],
            timeframe=sdk_timeframe(ONE_MINUTE),
            start=first,
            end=last,
            feed=self._feed,
            adjustment=Adjustment.RAW,
        )

        def call(client: StockHistoricalDataClient) -> list[Any]:
            barset: Any = client.get_stock_bars(request)
            return list(barset.data.get(symbol, []))

        raw = await self.rest.call(f"GET bars {symbol}", call)
        bars = [to_bar(b, symbol) for b in raw]
        return [b for b in bars if first <= b.ts <= last]

    def close(self) -> None:
        self.rest.close()


def warmup_start(
    now: datetime, timeframe: Timeframe, periods: int, calendar: MarketCalendar | None
) -> datetime:
    """Where history must begin for ``periods`` closed bars before ``now`` (plus one spare),
    counting only regular sessions (nights, weekends and holidays hold no bars)."""
    need = periods + 1
    if calendar is None:
        return now - need * timeframe.delta
    per_day = math.ceil(390 * 60 / timeframe.seconds)
    span = math.ceil(need / per_day * 7 / 5) + 10
    while True:
        sessions = calendar.sessions(now.date() - timedelta(days=span), now.date())
        count = 0
        for session in reversed(sessions):
            if session.open >= now:
                continue
            end = min(session.close, now)
            count += math.ceil((end - session.open).total_seconds() / timeframe.seconds)
            if count >= need:
                return session.open
        span *= 2
