"""Every way an alpaca-py call can fail, turned into one ``BrokerError`` a person can read.

alpaca-py raises ``APIError`` for HTTP errors, but its ``code`` and ``message`` properties parse
the body on each access and *raise* on a proxy's HTML page or a JSON body without ``code``; so
``status_code`` is read first and the body only inside try/except. Connection failures and
timeouts are ``requests`` exceptions, not ``APIError``. Messages never carry the raw body (it
could be a page of HTML) nor anything from the request headers (the keys live there).
"""

from __future__ import annotations

import json
from typing import Any

import requests
from alpaca.common.exceptions import APIError

from tapewatch.engine.core.broker import BrokerError

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
DUPLICATE_CLIENT_ORDER_ID = "client_order_id must be unique"
CODE_NOT_FOUND = 40410000
_MAX_TEXT = 160

_REASONS = {
    400: "bad request",
    401: "unauthorized",
    403: "forbidden",
    404: "not found",
    422: "unprocessable",
    429: "rate limited",
    500: "internal server error",
    502: "bad gateway",
    503: "service unavailable",
    504: "gateway timeout",
}


class RequestTimeout(BrokerError):
    """Our own deadline passed before the worker thread answered (the server hung)."""


class AlpacaApiError(BrokerError):
    """Alpaca answered with an HTTP error; ``code`` and ``api_message`` as read safely."""

    def __init__(
        self, text: str, *, status: int | None, code: int | None, api_message: str
    ) -> None:
        super().__init__(text, status=status, retryable=status in RETRYABLE_STATUSES)
        self.code = code
        self.api_message = api_message

    @property
    def duplicate_client_order_id(self) -> bool:
        """422 "client_order_id must be unique": the order exists already; look it up."""
        return self.status == 422 and DUPLICATE_CLIENT_ORDER_ID in self.api_message


def api_status(exc: BaseException) -> int | None:
    """The HTTP status of an APIError (None when it has no response)."""
    if not isinstance(exc, APIError):
        return None
    try:
        status = exc.status_code
    except Exception:  # a hand-made APIError without a response
        return None
    return int(status) if isinstance(status, int) else None


def _body(exc: APIError) -> dict[str, Any] | None:
    try:
        data = json.loads(str(exc))
    except (ValueError, TypeError):
        return None
    return data if isinstance(data, dict) else None


def api_code(exc: BaseException) -> int | None:
    """Alpaca's numeric error code, or None for HTML / code-less bodies (never raises)."""
    if not isinstance(exc, APIError):
        return None
    try:
        code = exc.code
    except Exception:  # JSONDecodeError on HTML, KeyError without "code", TypeError
        return None
    try:
        return int(code)
    except (TypeError, ValueError):
        return None


def api_message(exc: BaseException) -> str:
    """Alpaca's error message, one line, or "" when the body has none (never raises)."""
    if not isinstance(exc, APIError):
        return ""
    try:
        message = exc.message
    except Exception:
        body = _body(exc)
        message = body.get("message", "") if body else ""
    text = " ".join(str(message or "").split())
    return text[:_MAX_TEXT] + ("…" if len(text) > _MAX_TEXT else "")


def is_duplicate_client_order_id(exc: BaseException) -> bool:
    """422 "client_order_id must be unique": the order exists already; look it up."""
    return api_status(exc) == 422 and DUPLICATE_CLIENT_ORDER_ID in api_message(exc)


def is_not_found(exc: BaseException) -> bool:
    """404, e.g. "position does not exist" (code 40410000) or an unknown client order id."""
    return api_status(exc) == 404


def is_transient(exc: BaseException) -> bool:
    """A failure that waiting cures: 429, any 5xx, a timeout or a refused/dropped connection.

    401/403 (keys), 404 (an unknown symbol) and other 4xx answers are not: trying again
    would only repeat them."""
    if not isinstance(exc, BrokerError):
        return False
    if exc.status is not None:
        return exc.status == 429 or 500 <= exc.status <= 599
    return exc.retryable  # timeouts and connection errors carry no status


def wait_reason(exc: BrokerError) -> str:
    """A transient failure in a few words, for "waiting for Alpaca: <reason>, retrying ..."."""
    if exc.status is not None:
        return f"HTTP {exc.status}"
    if isinstance(exc, RequestTimeout) or "timed out" in str(exc):
        return "no answer in time"
    return "cannot connect"


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def classify(exc: BaseException, what: str, *, secrets: tuple[str, ...] = ()) -> BrokerError:
    """``exc`` from an SDK call doing ``what`` (e.g. "GET /v2/account") as a BrokerError."""
    if isinstance(exc, BrokerError):
        return exc
    if isinstance(exc, APIError):
        status = api_status(exc)
        message = api_message(exc)
        code = api_code(exc)
        reason = _REASONS.get(status or 0, "error")
        detail = f": {message}" if message else ""
        tag = f" (code {code})" if code is not None else ""
        text = f"Alpaca answered HTTP {status} {reason} to {what}{detail}{tag}"
        if status == 401:
            text += "; the keys were refused (paper keys on a live endpoint, or the reverse?)"
        return AlpacaApiError(
            _scrub(text, secrets), status=status, code=code, api_message=_scrub(message, secrets)
        )
    if isinstance(exc, requests.Timeout):
        return BrokerError(f"{what} timed out: Alpaca did not answer in time", retryable=True)
    if isinstance(exc, requests.ConnectionError):
        return BrokerError(
            f"{what} failed: cannot connect to Alpaca ({type(exc).__name__})", retryable=True
        )
    if isinstance(exc, requests.RequestException):
        return BrokerError(f"{what} failed: {type(exc).__name__}", retryable=False)
    if isinstance(exc, TimeoutError):
        return RequestTimeout(f"{what} timed out: no answer in time", retryable=True)
    text = _scrub(" ".join(str(exc).split())[:_MAX_TEXT], secrets)
    return BrokerError(f"{what} failed unexpectedly: {type(exc).__name__}: {text}")
