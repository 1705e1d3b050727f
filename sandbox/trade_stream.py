"""The trade_updates websocket (``/stream``): JSON, sent in binary frames like Alpaca paper.

authenticate -> ``authorization`` authorized/unauthorized -> listen -> ``listening``; then
every order event (new, fill, canceled, rejected) with the full order object goes to each
authenticated client listening to ``trade_updates``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp import WSMsgType, web

from tapewatch.sandbox.auth import KeyPolicy
from tapewatch.sandbox.faults import Faults
from tapewatch.sandbox.peer import Peer


@dataclass(eq=False)
class TradeClient:
    peer: Peer
    authorized: bool = False
    listening: bool = False

    def send(self, message: Mapping[str, object]) -> None:
        self.peer.send(json.dumps(message, separators=(",", ":")).encode())


def _authorization(action: str, status: str) -> dict[str, object]:
    return {"stream": "authorization", "data": {"action": action, "status": status}}


class TradeStreamHub:
    def __init__(self, keys: KeyPolicy, faults: Faults, stats: Counter[str]) -> None:
        self._keys = keys
        self._faults = faults
        self._stats = stats
        self.clients: set[TradeClient] = set()

    def publish(self, update: dict[str, object]) -> None:
        message = {"stream": "trade_updates", "data": update}
        for client in self.clients:
            if client.listening:
                client.send(message)

    async def drop(self, code: int = 1001) -> None:
        for client in list(self.clients):
            await client.peer.drop(code)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        client = TradeClient(Peer(ws))
        self.clients.add(client)
        self._stats["trade_connections"] += 1
        try:
            await self._converse(client, ws)
        finally:
            self.clients.discard(client)
            await client.peer.finish()
        return ws

    async def _converse(self, client: TradeClient, ws: web.WebSocketResponse) -> None:
        async for msg in ws:
            if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                return
            try:
                request = json.loads(msg.data)
            except ValueError:
                request = None
            if not isinstance(request, dict):
                client.send({"stream": "error", "data": {"error": "invalid syntax"}})
                continue
            action = request.get("action")
            data = request.get("data") if isinstance(request.get("data"), dict) else {}
            assert isinstance(data, dict)
            if action in ("authenticate", "auth"):
                key = data.get("key_id", request.get("key"))
                secret = data.get("secret_key", request.get("secret"))
                ok = not self._faults.reject_auth and self._keys.accepts(
                    key if isinstance(key, str) else None,
                    secret if isinstance(secret, str) else None,
                )
                client.send(_authorization("authenticate", "authorized" if ok else "unauthorized"))
                if not ok:
                    self._stats["trade_unauthorized"] += 1
                    return
                client.authorized = True
            elif action == "listen":
                if not client.authorized:
                    client.send(_authorization("listen", "unauthorized"))
                    continue
                streams = data.get("streams")
                wanted = (
                    [s for s in streams if isinstance(s, str)] if isinstance(streams, list) else []
                )
                client.listening = "trade_updates" in wanted
                client.send({"stream": "listening", "data": {"streams": wanted}})
            else:
                client.send({"stream": "error", "data": {"error": "invalid action"}})
