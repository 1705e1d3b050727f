"""Market-data REST routes: ``/v2/stocks/bars`` (paged) and the ``latest`` bar/trade/quote.

Pages hold at most ``min(limit, page_size)`` bars across all symbols (symbols in alphabetical
order, as Alpaca pages them); ``next_page_token`` names the last bar sent, so a page is the
same however often it is fetched. Errors carry only ``message``, like Alpaca's data API.
"""

from __future__ import annotations

import base64
import binascii
import math
from datetime import datetime

from aiohttp import web

from tapewatch.sandbox.bars import TimeFrame, query_bars
from tapewatch.sandbox.market import BarTable
from tapewatch.sandbox.sessions import et_midnight, to_minute
from tapewatch.sandbox.state import STATE, SandboxState
from tapewatch.sandbox.wire import ApiError, bar_time, json_response, parse_time, timestamp

FEEDS = frozenset({"iex", "sip", "delayed_sip", "otc", "boats", "overnight"})
ADJUSTMENTS = frozenset({"raw", "split", "dividend", "all"})
MAX_LIMIT = 10_000
DEFAULT_LIMIT = 1_000


def _bad(message: str) -> ApiError:
    return ApiError(400, None, message)


def _state(request: web.Request) -> SandboxState:
    return request.app[STATE]


def _symbols(request: web.Request) -> list[str]:
    symbols = [s.strip().upper() for s in request.query.get("symbols", "").split(",")]
    chosen = sorted({s for s in symbols if s})
    if not chosen:
        raise _bad("missing symbols")
    return chosen


def _check_choices(request: web.Request) -> None:
    query = request.query
    if query.get("feed", "iex") not in FEEDS:
        raise _bad("invalid feed")
    if query.get("adjustment", "raw") not in ADJUSTMENTS:
        raise _bad("invalid adjustment")
    if query.get("sort", "asc") not in ("asc", "desc"):
        raise _bad("invalid sort")


def _when(request: web.Request, name: str) -> datetime | None:
    raw = request.query.get(name)
    if not raw:
        return None
    try:
        return parse_time(raw)
    except ValueError as exc:
        raise _bad(f"invalid {name}") from exc


def _limit(request: web.Request) -> int:
    try:
        limit = int(request.query.get("limit") or DEFAULT_LIMIT)
    except ValueError as exc:
        raise _bad("invalid limit") from exc
    if not 1 <= limit <= MAX_LIMIT:
        raise _bad("invalid limit")
    return limit


def _encode_token(symbol: str, timeframe: TimeFrame, minute: int) -> str:
    return base64.b64encode(f"{symbol}|{timeframe.label}|{bar_time(minute)}".encode()).decode()


def _decode_token(token: str, timeframe: TimeFrame) -> tuple[str, int]:
    try:
        symbol, label, stamp = base64.b64decode(token, validate=True).decode().split("|")
        if label != timeframe.label:
            raise ValueError(label)
        return symbol, to_minute(parse_time(stamp))
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise _bad("invalid page_token") from exc


def _bar_json(row: tuple[int, float, float, float, float, int, int, float]) -> dict[str, object]:
    t, o, h, low, c, v, n, vw = row
    return {"t": bar_time(t), "o": o, "h": h, "l": low, "c": c, "v": v, "n": n, "vw": vw}


async def get_bars(request: web.Request) -> web.Response:
    state = _state(request)
    market = state.market
    symbols = _symbols(request)
    _check_choices(request)
    try:
        timeframe = TimeFrame.parse(request.query.get("timeframe", ""))
    except ValueError as exc:
        raise _bad("invalid timeframe") from exc
    start = _when(request, "start")
    end = _when(request, "end")
    first = math.ceil(start.timestamp() / 60) if start else et_midnight(market.now_minute)
    last = math.floor(end.timestamp() / 60) if end else market.now_minute
    if last < first:
        raise _bad("end should not be before start")
    descending = request.query.get("sort", "asc") == "desc"
    room = min(_limit(request), state.config.page_size)
    resume: tuple[str, int] | None = None
    if token := request.query.get("page_token"):
        resume = _decode_token(token, timeframe)
    out: dict[str, list[dict[str, object]]] = {}
    next_token: str | None = None
    for symbol in symbols:
        if not market.knows(symbol) or (resume is not None and symbol < resume[0]):
            continue
        lo, hi = first, last
        if resume is not None and symbol == resume[0]:
            lo, hi = (lo, resume[1] - 1) if descending else (resume[1] + 1, hi)
        table: BarTable = (
            query_bars(market, symbol, timeframe, lo, hi) if lo <= hi else BarTable.empty()
        )
        if len(table) == 0:
            continue
        if room == 0:  # the page is full and this symbol still has bars
            next_token = _encode_token(*_last_sent(out, timeframe))
            break
        if descending:
            table = table.take(slice(None, None, -1))
        page = table.take(slice(0, room))
        out[symbol] = [_bar_json(row) for row in page.rows()]
        room -= len(page)
        if len(page) < len(table):
            next_token = _encode_token(symbol, timeframe, int(page.t[-1]))
            break
    return json_response({"bars": out, "next_page_token": next_token})


def _last_sent(
    out: dict[str, list[dict[str, object]]], timeframe: TimeFrame
) -> tuple[str, TimeFrame, int]:
    symbol = next(reversed(out))
    stamp = str(out[symbol][-1]["t"])
    return symbol, timeframe, to_minute(parse_time(stamp))


async def get_latest_bars(request: web.Request) -> web.Response:
    market = _state(request).market
    _check_choices(request)
    bars: dict[str, object] = {}
    for symbol in _symbols(request):
        minute = market.last_bar_minute(symbol) if market.knows(symbol) else None
        if minute is not None:
            rows = market.minute_bars(symbol, minute, minute + 1).rows()
            if rows:
                bars[symbol] = _bar_json(rows[0])
    return json_response({"bars": bars})


async def get_latest_trades(request: web.Request) -> web.Response:
    state = _state(request)
    _check_choices(request)
    stamp = timestamp(state.now())
    trades = {
        s: {
            "t": stamp,
            "x": "V",
            "p": state.market.price(s),
            "s": 100,
            "c": ["@"],
            "i": 1,
            "z": "B",
        }
        for s in _symbols(request)
        if state.market.knows(s)
    }
    return json_response({"trades": trades})


async def get_latest_quotes(request: web.Request) -> web.Response:
    state = _state(request)
    _check_choices(request)
    stamp = timestamp(state.now())
    quotes: dict[str, object] = {}
    for s in _symbols(request):
        if state.market.knows(s):
            price = state.market.price(s)
            quotes[s] = {
                "t": stamp,
                "ax": "V",
                "ap": round(price + 0.01, 2),
                "as": 1,
                "bx": "V",
                "bp": round(price - 0.01, 2),
                "bs": 1,
                "c": ["R"],
                "z": "B",
            }
    return json_response({"quotes": quotes})


def add_data_routes(app: web.Application) -> None:
    app.router.add_get("/v2/stocks/bars", get_bars)
    app.router.add_get("/v2/stocks/bars/latest", get_latest_bars)
    app.router.add_get("/v2/stocks/trades/latest", get_latest_trades)
    app.router.add_get("/v2/stocks/quotes/latest", get_latest_quotes)
