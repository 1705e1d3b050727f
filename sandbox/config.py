"""Configuration of the local Alpaca-compatible sandbox.

Kept apart from the server so every module (market, accounts, streams) can read it without
importing aiohttp machinery, and so the CLI can build one from flags.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
MAX_PARTIAL_FILLS = 100


@dataclass(frozen=True)
class SandboxKey:
    """One API key pair the sandbox accepts; ``paper`` marks which environment it belongs to."""

    secret: str
    paper: bool = True


@dataclass
class SandboxConfig:
    """Everything that shapes one sandbox run; the defaults rehearse a paper account."""

    host: str = "127.0.0.1"
    port: int = 0  # 0: an ephemeral port
    seed: int = 7
    bar_interval: float = 60.0  # real seconds per streamed 1-minute bar; <= 0: manual only
    rate_limit: int = 200  # requests per rolling minute per key (trading API)
    data_rate_limit: int | None = None  # market-data REST budget; None: same as rate_limit
    symbols: tuple[str, ...] = ("SPY", "AAPL", "FAKEPACA")
    always_open: tuple[str, ...] = ("FAKEPACA",)  # symbols that trade around the clock
    starting_cash: float = 100_000.0
    keys: Mapping[str, SandboxKey] | None = None  # None: any non-empty key pair
    live: bool = False  # a live sandbox refuses paper keys (and a paper one live keys)
    start: datetime | None = None  # market clock start; None: the wall clock at start-up
    calendar: str = "XNYS"  # "XNYS" (exchange-calendars) or "weekday" (Mon-Fri 09:30-16:00 ET)
    fast_forward_closed: bool = True  # the market clock jumps over nights and weekends
    fill_delay: float = 0.0  # seconds between "new" and "fill" (and between partial fills)
    partial_fills: int = 1  # a market order fills in this many parts, fill_delay apart
    day_orders_expire: bool = True  # a DAY order still open at the close ends "expired"
    non_fractionable: tuple[str, ...] = ()  # assets refusing fractional qty and notional orders
    fractional_trading: bool = True  # False: the account refuses every fractional order
    page_size: int = 10_000  # most bars per market-data page (the SDK always asks for 10000)
    auth_timeout: float = 10.0  # seconds a data-stream client has to authenticate
    faults: Mapping[str, Any] = field(default_factory=dict)  # same keys as POST /_sandbox/faults
    time_source: Callable[[], float] = time.time  # unix seconds, for rate limits and the start

    def __post_init__(self) -> None:
        if self.host not in LOOPBACK_HOSTS:
            raise ValueError(f"the sandbox binds loopback only, not {self.host!r}")
        if self.rate_limit < 1 or (self.data_rate_limit is not None and self.data_rate_limit < 1):
            raise ValueError("rate limits must be at least 1 request per minute")
        if self.page_size < 1:
            raise ValueError("page_size must be at least 1")
        if self.fill_delay < 0 or not 1 <= self.partial_fills <= MAX_PARTIAL_FILLS:
            raise ValueError(
                f"fill_delay must be >= 0 and partial_fills between 1 and {MAX_PARTIAL_FILLS}"
            )
        if self.calendar not in ("XNYS", "weekday"):
            raise ValueError(f"unknown calendar {self.calendar!r} (XNYS or weekday)")
        self.symbols = tuple(s.upper() for s in self.symbols)
        self.always_open = tuple(s.upper() for s in self.always_open)
        self.non_fractionable = tuple(s.upper() for s in self.non_fractionable)
        if self.start is not None and self.start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
