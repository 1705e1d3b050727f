"""The market-data websocket (``/v2/iex``, ``/v2/sip``, ``/v2/test``), msgpack like Alpaca's.

Handshake: ``connected`` -> client auth -> ``authenticated`` -> subscribe -> the full
``subscription``. Each market minute the hub sends one ``b`` bar per subscribed symbol (bar
start in ``t`` as a msgpack Timestamp), ``d`` daily bars at the session close and, with the
``updated_bars`` fault, a ``u`` correction of the previous minute. Only one authenticated
connection per key and feed: the second is told 406 and closed, as Alpaca does. Refusals come
as Alpaca's error frames (``[{"T":"error","code":409,"msg":"insufficient subscription"}]``)
answering the auth message, then the socket closes; the ``data_stream`` fault forces one:
``refuse`` (406), ``reject_auth`` (402, the data stream only) or ``insufficient_subscription``
(409). Like Alpaca, a client without a msgpack Content-Type header is answered in JSON (handy
for poking by hand).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass, field, replace

import msgpack
from aiohttp import WSMsgType, web

from tapewatch.sandbox.auth import KeyPolicy
from tapewatch.sandbox.bars import TimeFrame, query_bars
from tapewatch.sandbox.faults import Faults
from tapewatch.sandbox.market import BarTable, Market
from tapewatch.sandbox.peer import Peer
from tapewatch.sandbox.sessions import et_midnight
from tapewatch.sandbox.wire import bar_time, pack, unpack

FEEDS = ("iex", "sip", "test", "delayed_sip")
CHANNELS = (
    "trades",
    "quotes",
    "bars",
    "updatedBars",
    "dailyBars",
    "statuses",
    "lulds",
    "corrections",
    "cancelErrors",
)
_MIRRORS_TRADES = ("corrections", "cancelErrors")  # Alpaca derives these from trades
_DAY = TimeFrame(1, "Day")
_CHANNEL_OF = {"b": "bars", "u": "updatedBars", "d": "dailyBars"}

Frame = dict[str, object]


@dataclass(eq=False)
class DataClient:
    peer: Peer
    feed: str
    binary: bool
    key: str | None = None
    subs: dict[str, set[str]] = field(default_factory=lambda: {c: set() for c in CHANNELS})

    def send(self, frames: list[Frame]) -> None:
        if self.binary:
            self.peer.send(pack([_stamp(f, binary=True) for f in frames]))
        else:
            self.peer.send(json.dumps([_stamp(f, binary=False) for f in frames]))

    def wants(self, channel: str, symbol: str) -> bool:
        chosen = self.subs[channel]
        return symbol in chosen or "*" in chosen


def _stamp(frame: Frame, *, binary: bool) -> Frame:
    """Frames carry ``t`` as an epoch minute until encoded for one client."""
    minute = frame.get("t")
    if not isinstance(minute, int):
        return frame
    t: object = msgpack.Timestamp(minute * 60) if binary else bar_time(minute)
    return {**frame, "t": t}


def bar_frames(kind: str, symbol: str, table: BarTable) -> list[Frame]:
    return [
        {"T": kind, "S": symbol, "o": o, "h": h, "l": low, "c": c, "v": v, "n": n, "vw": vw, "t": t}
        for t, o, h, low, c, v, n, vw in table.rows()
    ]


def error_frame(code: int, message: str) -> Frame:
    return {"T": "error", "code": code, "msg": message}


class DataStreamHub:
    def __init__(
        self,
        market: Market,
        faults: Faults,
        keys: KeyPolicy,
        stats: Counter[str],
        auth_timeout: float,
    ) -> None:
        self._market = market
        self._faults = faults
        self._keys = keys
        self._stats = stats
        self._auth_timeout = auth_timeout
        self.clients: set[DataClient] = set()
        self._previous: list[tuple[str, BarTable]] = []

    # -- publishing ------------------------------------------------------------------------

    def publish_minute(self, minute: int) -> None:
        """Send the bars of the market minute that just finished."""
        market = self._market
        if not any(c.key is not None for c in self.clients):
            self._previous = []
            return  # nobody listens: skip the work (advancing hours of market stays cheap)
        frames: list[Frame] = []
        if self._faults.updated_bars:  # late trades changed last minute's bars
            for symbol, table in self._previous:
                fixed = replace(table, v=table.v + 100, n=table.n + 1)
                frames += bar_frames("u", symbol, fixed)
        self._previous = []
        daily: list[Frame] = []
        for symbol in market.symbols:
            hours = market.hours(symbol)
            if not hours.is_open(minute):
                continue
            table = market.minute_bars(symbol, minute, minute + 1)
            self._previous.append((symbol, table))
            frames += bar_frames("b", symbol, table)
            if hours.day_end(minute) == minute + 1:
                day = et_midnight(minute)
                daily += bar_frames("d", symbol, query_bars(market, symbol, _DAY, day, day))
        frames += daily
        if self._faults.data_stream == "mute" or not frames:
            return
        for client in self.clients:
            if client.key is None:
                continue
            mine = [f for f in frames if client.wants(_CHANNEL_OF[str(f["T"])], str(f["S"]))]
            if mine:
                client.send(mine)

    async def drop(self, code: int = 1011) -> None:
        """Close every data socket at once (the SDK will reconnect)."""
        for client in list(self.clients):
            await client.peer.drop(code)

    # -- one connection --------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        binary = "msgpack" in request.headers.get("Content-Type", "")
        client = DataClient(Peer(ws), request.match_info["feed"], binary)
        self.clients.add(client)
        self._stats["data_connections"] += 1
        try:
            client.send([{"T": "success", "msg": "connected"}])
            await self._converse(client, ws)
        finally:
            self.clients.discard(client)
            await client.peer.finish()
        return ws

    def _error(self, client: DataClient, code: int, message: str) -> None:
        self._stats[f"data_error_{code}"] += 1
        client.send([error_frame(code, message)])

    async def _converse(self, client: DataClient, ws: web.WebSocketResponse) -> None:
        deadline = asyncio.get_running_loop().time() + self._auth_timeout
        while True:
            timeout = None
            if client.key is None:
                timeout = max(0.0, deadline - asyncio.get_running_loop().time())
            try:
                msg = await ws.receive(timeout=timeout)
            except TimeoutError:
                self._error(client, 404, "auth timeout")
                return
            if msg.type not in (WSMsgType.BINARY, WSMsgType.TEXT):
                return  # closed, closing or broken
            try:
                request = unpack(msg.data) if msg.type == WSMsgType.BINARY else json.loads(msg.data)
            except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError):
                request = None
            if not isinstance(request, dict):
                self._error(client, 400, "invalid syntax")
                continue
            action = request.get("action")
            if action == "auth":
                if not self._authenticate(client, request):
                    return
            elif action in ("subscribe", "unsubscribe"):
                if client.key is None:
                    self._error(client, 401, "not authenticated")
                    continue
                self._subscribe(client, request, add=action == "subscribe")
            else:
                self._error(client, 400, "invalid syntax")

    def _authenticate(self, client: DataClient, request: dict[str, object]) -> bool:
        """Answer an auth message; False means the connection must close."""
        if client.key is not None:
            self._error(client, 403, "already authenticated")
            return True
        key, secret = request.get("key"), request.get("secret")
        mode = self._faults.data_stream
        if mode == "refuse":
            self._error(client, 406, "connection limit exceeded")
            return False
        refused = self._faults.reject_auth or mode == "reject_auth"
        if refused or not self._keys.accepts(_text(key), _text(secret)):
            self._error(client, 402, "auth failed")
            return False
        if mode == "insufficient_subscription":  # good keys, but the plan lacks this feed
            self._error(client, 409, "insufficient subscription")
            return False
        if any(c.key == key and c.feed == client.feed for c in self.clients):
            self._error(client, 406, "connection limit exceeded")
            return False
        client.key = _text(key)
        client.send([{"T": "success", "msg": "authenticated"}])
        return True

    def _subscribe(self, client: DataClient, request: dict[str, object], *, add: bool) -> None:
        for channel in CHANNELS:
            if channel in _MIRRORS_TRADES:
                continue
            symbols = request.get(channel)
            if not isinstance(symbols, list):
                continue
            chosen = {str(s).upper() for s in symbols}
            for target in (channel, *(_MIRRORS_TRADES if channel == "trades" else ())):
                if add:
                    client.subs[target] |= chosen
                else:
                    client.subs[target] -= chosen
        frame: Frame = {"T": "subscription"}
        frame.update({c: sorted(client.subs[c]) for c in CHANNELS})
        client.send([frame])


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
