"""Facts about this installation for ``tapewatch doctor`` and the console's help screen.

Python version, whether the interpreter is a free-threaded build and whether the GIL is on,
the keyring backend, the data directory, the broker endpoints and the market calendar's next
session. ``now`` is passed in; the keyring is imported lazily (and may talk to D-Bus, so a
screen should collect these facts in a worker thread). Endpoint URLs are shown without any
credentials embedded in them, and every value passes the secret redactor.
"""

from __future__ import annotations

import os
import platform
import sys
import sysconfig
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

from tapewatch.engine import __version__
from tapewatch.engine.observability.logs import redact
from tapewatch.engine.settings.config import data_dir as default_data_dir
from tapewatch.engine.settings.fields import (
    ENV_DATA_URL,
    ENV_STREAM_URL,
    ENV_TRADE_STREAM_URL,
    ENV_TRADING_URL,
)

ET = ZoneInfo("America/New_York")

ENDPOINTS: tuple[tuple[str, str, str], ...] = (
    ("trading", ENV_TRADING_URL, "https://paper-api.alpaca.markets"),
    ("market data", ENV_DATA_URL, "https://data.alpaca.markets"),
    ("data stream", ENV_STREAM_URL, "wss://stream.data.alpaca.markets/v2/iex"),
    ("trade updates", ENV_TRADE_STREAM_URL, "wss://paper-api.alpaca.markets/stream"),
)


class SessionCalendar(Protocol):
    def is_open(self, now: datetime) -> bool: ...

    def next_open(self, now: datetime) -> datetime: ...


@dataclass(frozen=True, slots=True)
class RuntimeFacts:
    tapewatch_version: str
    python_version: str
    implementation: str
    platform: str
    free_threaded: bool
    gil_enabled: bool | None  # None: this Python cannot say (before 3.13)
    keyring_backend: str
    data_dir: Path
    endpoints: tuple[tuple[str, str], ...]  # (name, URL)
    market_open: bool | None
    next_session: datetime | None
    calendar_note: str = ""  # why the calendar could not answer


def free_threaded_build() -> bool:
    """True for a ``python3.13t``-style build compiled without the GIL."""
    return bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


def gil_enabled() -> bool | None:
    """Whether the GIL is on right now; None where ``sys._is_gil_enabled`` does not exist."""
    probe = getattr(sys, "_is_gil_enabled", None)
    return bool(probe()) if callable(probe) else None


def keyring_backend_name() -> str:
    """The backend keyring would use here, or ``unavailable: <reason>``."""
    try:
        import keyring

        backend = keyring.get_keyring()
    except Exception as exc:  # import errors, D-Bus trouble, broken config
        return f"unavailable: {type(exc).__name__}: {exc}"
    name = _backend_label(backend)
    if type(backend).__module__ == "keyring.backends.fail":
        return f"{name} (no usable backend: unlock a Secret Service or use the env variables)"
    chain = getattr(backend, "backends", None)
    if type(backend).__module__ == "keyring.backends.chainer" and chain:
        return f"{name} of " + ", ".join(_backend_label(b) for b in chain)
    return name


def _backend_label(backend: object) -> str:
    cls = type(backend)
    return f"{cls.__module__}.{cls.__qualname__}"


def strip_credentials(url: str) -> str:
    """A URL with any ``user:password@`` removed (never print what might be a key)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact(url)
    if parts.username is None and parts.password is None:
        return redact(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return redact(urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)))


def endpoints(env: Mapping[str, str] | None = None) -> tuple[tuple[str, str], ...]:
    source = os.environ if env is None else env
    return tuple(
        (name, strip_credentials(source.get(var) or default)) for name, var, default in ENDPOINTS
    )


def collect_runtime_facts(
    now: datetime,
    *,
    data_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
    calendar: SessionCalendar | None = None,
    keyring_name: Callable[[], str] | None = None,
) -> RuntimeFacts:
    """Gather every fact; nothing here raises (a fact that cannot be read says why)."""
    market_open: bool | None = None
    next_session: datetime | None = None
    note = ""
    try:
        if calendar is None:
            from tapewatch.engine.market.calendar import MarketCalendar

            calendar = MarketCalendar()
        market_open = calendar.is_open(now)
        next_session = calendar.next_open(now)
    except Exception as exc:  # the calendar is optional information here
        note = f"unavailable: {type(exc).__name__}: {exc}"
    return RuntimeFacts(
        tapewatch_version=__version__,
        python_version=platform.python_version(),
        implementation=platform.python_implementation(),
        platform=platform.platform(terse=True),
        free_threaded=free_threaded_build(),
        gil_enabled=gil_enabled(),
        keyring_backend=redact((keyring_name or keyring_backend_name)()),
        data_dir=data_dir if data_dir is not None else default_data_dir(),
        endpoints=endpoints(env),
        market_open=market_open,
        next_session=next_session,
        calendar_note=redact(note),
    )


def _yes_no(value: bool | None, unknown: str) -> str:
    return unknown if value is None else ("yes" if value else "no")


def fact_rows(facts: RuntimeFacts) -> list[tuple[str, str]]:
    """(label, value) rows, in the order a person reads them."""
    if facts.next_session is not None:
        local = facts.next_session.astimezone(ET)
        utc = facts.next_session.astimezone(ZoneInfo("UTC"))
        nxt = f"{local:%a %Y-%m-%d %H:%M} ET ({utc:%H:%M} UTC)"
        if facts.market_open:
            nxt = f"market open now; next session {nxt}"
    else:
        nxt = facts.calendar_note or "unknown"
    rows = [
        ("tapewatch", facts.tapewatch_version),
        ("Python", f"{facts.python_version} ({facts.implementation}) on {facts.platform}"),
        ("free-threaded build", _yes_no(facts.free_threaded, "unknown")),
        ("GIL enabled", _yes_no(facts.gil_enabled, "yes (this Python cannot turn it off)")),
        ("keyring backend", facts.keyring_backend),
        ("data directory", str(facts.data_dir)),
    ]
    rows.extend((f"endpoint: {name}", url) for name, url in facts.endpoints)
    rows.append(("next market session", nxt))
    return [(label, redact(value)) for label, value in rows]


def format_facts(facts: RuntimeFacts, extra: Iterable[tuple[str, str]] = ()) -> str:
    """Aligned ``label  value`` lines (``extra`` rows appended, e.g. the doctor's file checks)."""
    rows = [*fact_rows(facts), *((label, redact(value)) for label, value in extra)]
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)
