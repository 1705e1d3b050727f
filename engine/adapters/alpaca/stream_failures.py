"""Why an Alpaca stream is not delivering, said in one line, and how long until the next try.

alpaca-py reports every failed stream (re)connection with a full traceback (``log.exception``)
and keeps no state a program can read; 409 ends its loop silently. Here an exception becomes a
`Failure` (Alpaca's error code when there is one, the reason, what to do about it), a socket's
state is a `StreamHealth` snapshot, `Backoff` picks the jittered wait (1 → 60 s), and
`worth_saying` keeps a failure that repeats every retry from filling the log. The SDK's own
stream loggers are demoted to DEBUG without tracebacks: their words stay in the log file, and
the one line tapewatch writes is the only one a screen sees.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from dataclasses import dataclass

import websockets

# Alpaca's market-data stream error messages and their codes (the SDK keeps only the message).
ALPACA_STREAM_ERRORS = {
    "invalid syntax": 400,
    "not authenticated": 401,
    "auth failed": 402,
    "already authenticated": 403,
    "auth timeout": 404,
    "symbol limit exceeded": 405,
    "connection limit exceeded": 406,
    "slow client": 407,
    "insufficient subscription": 409,
    "invalid subscribe action for this feed": 410,
    "internal error": 500,
}
SDK_STREAM_LOGGERS = ("alpaca.data.live.websocket", "alpaca.trading.stream")
FIRST_RETRY = 1.0
MAX_RETRY = 60.0
_KEYS_ADVICE = "check the API keys (paper keys for paper, live keys for live)"


@dataclass(frozen=True)
class Failure:
    """One failed connection or a lost one: ``text`` is the line, ``reason`` its short form."""

    reason: str
    advice: str = ""
    code: int | None = None
    lasting: bool = False  # will not clear by itself (keys, subscription): health says "down"

    @property
    def text(self) -> str:
        return f"{self.reason}{self.advice}"


class Backoff:
    """Exponential from ``first`` to ``cap`` seconds with equal jitter (half fixed, half
    random), so a refused stream never retries in a tight loop nor in lock-step."""

    def __init__(
        self, first: float = FIRST_RETRY, cap: float = MAX_RETRY, rng: random.Random | None = None
    ) -> None:
        if first <= 0 or cap < first:
            raise ValueError("backoff needs 0 < first <= cap")
        self.first = first
        self.cap = cap
        self._rng = rng or random.Random()

    def ceiling(self, attempt: int) -> float:
        """The un-jittered wait after ``attempt`` consecutive failures (1, 2, ...)."""
        return min(self.cap, self.first * 2.0 ** max(0, min(attempt - 1, 30)))

    def delay(self, attempt: int) -> float:
        ceiling = self.ceiling(attempt)
        return ceiling / 2 + self._rng.uniform(0.0, ceiling / 2)


def worth_saying(failures: int, same_reason: bool) -> bool:
    """Say a failure the first time, when its reason changes, then on the 2nd, 4th, 8th ...
    repeat: a refused stream retrying for hours writes a handful of lines, not thousands."""
    return not same_reason or failures & (failures - 1) == 0


def retry_words(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds >= 0.95 else f"{seconds:.2g} s"


def refused_keys(detail: str, code: int | None = None) -> Failure:
    return Failure(f"authentication refused ({detail})", f"; {_KEYS_ADVICE}", code, True)


def from_error_message(message: str, *, feed: str) -> Failure:
    """An Alpaca error frame's message (what the SDK raises at auth) as a Failure."""
    text = message.strip()
    code = ALPACA_STREAM_ERRORS.get(text.lower())
    if code in (401, 402, 404):
        return refused_keys(f"{code} {text}", code)
    if code == 406:
        return Failure(
            "connection limit exceeded (406)",
            ": another program uses this key's data stream (Alpaca allows one per key and feed)",
            code,
        )
    if code == 409:
        return Failure(
            "insufficient subscription (409)",
            f": the account's plan does not include the {feed} feed (iex needs no "
            'subscription, sip does); use [alpaca] feed = "iex"',
            code,
            True,
        )
    if code is not None:
        return Failure(f"refused ({code} {text})", code=code)
    if text == "failed to authenticate":  # the SDK's words for anything but "authenticated"
        return refused_keys("unauthorized")
    return Failure(f"refused ({text})")


def classify(exc: BaseException, *, endpoint: str, feed: str = "iex") -> Failure:
    """Any exception from connecting, authenticating or reading as one Failure."""
    if isinstance(exc, ValueError):
        return from_error_message(str(exc), feed=feed)
    if isinstance(exc, websockets.exceptions.ConnectionClosed):
        return Failure(f"connection lost ({exc})")
    if isinstance(exc, websockets.exceptions.InvalidURI):
        return Failure(f"bad URL ({endpoint})", "; check the stream URL setting", lasting=True)
    status = getattr(exc, "status_code", None)
    response = getattr(exc, "response", None)
    status = status if status is not None else getattr(response, "status_code", None)
    if isinstance(exc, websockets.exceptions.InvalidHandshake):
        detail = f"HTTP {status}" if status is not None else str(exc) or type(exc).__name__
        return Failure(f"unreachable ({endpoint}: {detail} instead of a websocket)")
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return Failure(f"unreachable ({endpoint}: timed out)")
    if isinstance(exc, ConnectionRefusedError):
        return Failure(f"unreachable ({endpoint}: connection refused)")
    if isinstance(exc, socket.gaierror):
        return Failure(f"unreachable ({endpoint}: host not found)")
    if isinstance(exc, OSError):
        return Failure(f"unreachable ({endpoint}: {exc.strerror or exc})")
    return Failure(f"failed ({type(exc).__name__}: {exc})")


class QuietSdkFilter(logging.Filter):
    """On the SDK's stream loggers: WARNING and above become DEBUG, without the traceback.

    Runs where the record is made, before any handler looks at its level, so neither a stderr
    handler nor Python's last-resort handler prints it; the log file still keeps the words.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO:
            record.levelno = logging.DEBUG
            record.levelname = logging.getLevelName(logging.DEBUG)
            record.exc_info = None
            record.exc_text = None
            record.stack_info = None
        return True


_QUIET = QuietSdkFilter()


def quiet_sdk_stream_logs() -> None:
    """Install `QuietSdkFilter` on alpaca-py's stream loggers (idempotent)."""
    for name in SDK_STREAM_LOGGERS:
        logger = logging.getLogger(name)
        if _QUIET not in logger.filters:
            logger.addFilter(_QUIET)
