"""Where each Alpaca client points, per mode: Alpaca's hosts by default, overridable.

Overrides come from the config file (a mapping) or the environment, the environment winning:
``TAPEWATCH_ALPACA_TRADING_URL`` and ``TAPEWATCH_ALPACA_DATA_URL`` (REST bases, without
``/v2``), ``TAPEWATCH_ALPACA_STREAM_URL`` (the full data-stream URL, ``.../v2/iex``) and
``TAPEWATCH_ALPACA_TRADE_STREAM_URL`` (the full trade-updates URL, ``.../stream``). These are
exactly the forms alpaca-py's ``url_override`` wants, so the local sandbox's banner can be
pasted as is. A REST base given with a trailing ``/v2`` is trimmed (the SDK appends its own).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from tapewatch.engine.model.types import Mode
from tapewatch.engine.settings.errors import ConfigError
from tapewatch.engine.settings.fields import (
    ENDPOINT_ENV,
    ENV_DATA_URL,
    ENV_STREAM_URL,
    ENV_TRADE_STREAM_URL,
    ENV_TRADING_URL,
    FEEDS,
)

__all__ = ["ENV_DATA_URL", "ENV_STREAM_URL", "ENV_TRADE_STREAM_URL", "ENV_TRADING_URL"]

DATA_FEED = "iex"  # the free plan's feed; SIP needs a subscription
TRADING_URLS = {
    Mode.PAPER: "https://paper-api.alpaca.markets",
    Mode.LIVE: "https://api.alpaca.markets",
}
TRADE_STREAM_URLS = {
    Mode.PAPER: "wss://paper-api.alpaca.markets/stream",
    Mode.LIVE: "wss://api.alpaca.markets/stream",
}
DATA_URL = "https://data.alpaca.markets"
DATA_STREAM_URL = f"wss://stream.data.alpaca.markets/v2/{DATA_FEED}"

CONFIG_KEYS = dict(ENDPOINT_ENV)
"""config-file key -> environment variable (engine.settings.fields defines them once)."""


def data_stream_url(feed: str) -> str:
    """Alpaca's market-data stream for ``feed`` ("iex" on the free plan, "sip")."""
    return f"wss://stream.data.alpaca.markets/v2/{feed}"


@dataclass(frozen=True, slots=True)
class Endpoints:
    """The four URLs one account session uses, and the data feed."""

    mode: Mode
    trading: str
    data: str
    data_stream: str
    trade_stream: str
    feed: str = DATA_FEED

    @property
    def paper(self) -> bool:
        return self.mode is Mode.PAPER

    @property
    def is_default(self) -> bool:
        return self == default_endpoints(self.mode, self.feed)


def _mode(mode: Mode | str) -> Mode:
    try:
        chosen = Mode(str(mode).upper())
    except ValueError:
        chosen = Mode.BACKTEST
    if chosen not in TRADING_URLS:
        raise ConfigError(f"Alpaca endpoints exist for PAPER and LIVE only, not {mode}")
    return chosen


def default_endpoints(mode: Mode | str, feed: str = DATA_FEED) -> Endpoints:
    chosen = _mode(mode)
    if feed not in FEEDS:
        raise ConfigError(
            f'must be "iex" or "sip", got {feed!r}', field="alpaca.feed", example=DATA_FEED
        )
    return Endpoints(
        mode=chosen,
        trading=TRADING_URLS[chosen],
        data=DATA_URL,
        data_stream=data_stream_url(feed),
        trade_stream=TRADE_STREAM_URLS[chosen],
        feed=feed,
    )


def _checked(url: str, name: str, schemes: tuple[str, ...], *, rest: bool) -> str:
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in schemes or not parts.netloc:
        example = (
            "https://paper-api.alpaca.markets"
            if rest
            else "wss://stream.data.alpaca.markets/v2/iex"
        )
        raise ConfigError(f"{name}={url!r} is not a {'/'.join(schemes)} URL; e.g. {example}")
    if rest and url.endswith("/v2"):
        url = url[: -len("/v2")]  # alpaca-py appends /v2 itself
    return url


def resolve_endpoints(
    mode: Mode | str,
    *,
    env: Mapping[str, str] | None = None,
    config: Mapping[str, str] | None = None,
    feed: str = DATA_FEED,
) -> Endpoints:
    """The endpoints for ``mode``: environment, else config-file keys, else Alpaca's hosts
    (the data stream of ``feed`` unless a stream URL is given)."""
    env = os.environ if env is None else env
    config = config or {}
    unknown = set(config) - set(CONFIG_KEYS)
    if unknown:
        raise ConfigError(
            f"unknown Alpaca endpoint setting(s) {', '.join(sorted(unknown))}; "
            f"use {', '.join(CONFIG_KEYS)}"
        )
    base = default_endpoints(mode, feed)

    def pick(key: str, default: str, schemes: tuple[str, ...], rest: bool) -> str:
        var = CONFIG_KEYS[key]
        raw = env.get(var, "").strip() or str(config.get(key, "")).strip()
        return _checked(raw, var, schemes, rest=rest) if raw else default

    return Endpoints(
        mode=base.mode,
        trading=pick("trading_url", base.trading, ("http", "https"), True),
        data=pick("data_url", base.data, ("http", "https"), True),
        data_stream=pick("stream_url", base.data_stream, ("ws", "wss"), False),
        trade_stream=pick("trade_stream_url", base.trade_stream, ("ws", "wss"), False),
        feed=base.feed,
    )
