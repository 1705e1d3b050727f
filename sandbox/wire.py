"""How values look on Alpaca's wire: RFC 3339 UTC timestamps, numbers as strings, error bodies.

Shared by the REST handlers and both streams so an order looks the same wherever it appears.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgpack
from aiohttp import web

from tapewatch.sandbox.sessions import from_minute

UNAUTHORIZED = {"code": 40110000, "message": "request is not authorized"}
RATE_LIMITED = {"code": 42910000, "message": "rate limit exceeded"}


class ApiError(Exception):
    """An Alpaca-shaped error answer: HTTP status plus a JSON body (code may be absent)."""

    def __init__(self, status: int, code: int | None, message: str, **extra: object) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, object] = {"message": message, **extra}
        if code is not None:
            self.body = {"code": code, **self.body}


def timestamp(when: datetime | None) -> str | None:
    """``2021-03-16T18:38:01.942282Z``: UTC, microseconds, Z (Alpaca's trading format)."""
    if when is None:
        return None
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def bar_time(minute: int) -> str:
    """Bar stamps as the data API prints them: ``2022-02-01T05:00:00Z``."""
    return from_minute(minute).strftime("%Y-%m-%dT%H:%M:%SZ")


def decimal_text(value: Decimal | None) -> str | None:
    """A Decimal as plain text without exponent or trailing zeros ("5", "100.25")."""
    if value is None:
        return None
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def money(value: Decimal) -> str:
    return decimal_text(value.quantize(Decimal("0.0001"))) or "0"


def parse_time(text: str) -> datetime:
    """RFC 3339 or a bare date (midnight UTC), as the data API accepts them."""
    value = text.strip().replace(" ", "+")  # an unencoded '+' arrives as a space
    when = datetime.fromisoformat(value)
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(body, separators=(",", ":")),
        status=status,
        content_type="application/json",
    )


def error_response(error: ApiError) -> web.Response:
    return json_response(error.body, error.status)


def html_response(status: int, reason: str) -> web.Response:
    """What a proxy in front of the API sends: HTML, not JSON (the SDK's ``.code`` raises)."""
    body = (
        f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
        f"<center><h1>{status} {reason}</h1></center>\r\n</body>\r\n</html>\r\n"
    )
    return web.Response(text=body, status=status, content_type="text/html")


def pack(frames: list[dict[str, object]]) -> bytes:
    """One msgpack data-stream message (always an array of frames)."""
    return bytes(msgpack.packb(frames, use_bin_type=True, datetime=False))


def unpack(data: bytes) -> object:
    return msgpack.unpackb(data, raw=False, timestamp=0)
