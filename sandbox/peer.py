"""One connected websocket client with its own send queue.

The market ticker and the order engine publish by queueing (never awaiting a socket), so one
slow or dead client can never stall a tick or a fill; a pump task per client drains the queue.
"""

from __future__ import annotations

import asyncio

from aiohttp import web


class Peer:
    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self._queue: asyncio.Queue[bytes | str | None] = asyncio.Queue()
        self._pump = asyncio.create_task(self._drain())

    def send(self, payload: bytes | str) -> None:
        self._queue.put_nowait(payload)

    async def _drain(self) -> None:
        while (item := await self._queue.get()) is not None:
            try:
                if isinstance(item, bytes):
                    await self.ws.send_bytes(item)
                else:
                    await self.ws.send_str(item)
            except (ConnectionError, RuntimeError):
                return  # the client is gone; its reader will notice and clean up

    async def finish(self, code: int = 1000) -> None:
        """Send what is queued, then close the socket."""
        self._queue.put_nowait(None)
        await asyncio.wait([self._pump])  # never raises, even if the pump was cancelled
        await self.ws.close(code=code)

    async def drop(self, code: int) -> None:
        """Close now, discarding anything queued (a network drop or server shutdown)."""
        self._pump.cancel()
        await self.ws.close(code=code)
