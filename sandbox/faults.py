"""Fault switches: the failures a real Alpaca session throws at a client, on demand.

One parser serves both the constructor config and ``POST /_sandbox/faults``, so a test can
start a sandbox already broken or break it mid-run. Switches (latency, mute, reject auth, ...)
persist until changed; counters (next N REST errors, lost order responses) run down as used.
One-shot actions (drop the data stream, advance the market, set a price) are returned to the
caller to perform, since they act on the market and the sockets rather than on this state.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tapewatch.sandbox.config import MAX_PARTIAL_FILLS
from tapewatch.sandbox.wire import ApiError

# refuse: 406 connection limit; reject_auth: 402 auth failed; insufficient_subscription: 409
DATA_STREAM_MODES = ("normal", "mute", "refuse", "reject_auth", "insufficient_subscription")
REST_ERROR_STATUSES = (429, 500, 502, 503, 504)
_SWITCHES = (
    "rest_error",
    "clear_rest_errors",
    "latency_ms",
    "lose_order_responses",
    "reject_auth",
    "data_stream",
    "updated_bars",
    "hold_fills",
)
ACTIONS = ("drop_data_stream", "advance_minutes", "set_price")
# How the venue treats orders: a closed market, partial fills, fractions, a late POST answer.
MAX_LATE_RESPONSE_MS = 60_000.0
TRADING_SWITCHES = (
    "market_closed",
    "partial_fills",
    "non_fractionable",
    "fractional_trading",
    "late_order_response_ms",
)


@dataclass
class InjectedError:
    """Answer the next ``count`` matching REST calls with ``status`` instead of serving them."""

    status: int
    count: int = 1
    path: str | None = None  # only calls whose path starts with this
    method: str | None = None  # only this HTTP method
    html: bool | None = None  # None: HTML for 502/504 (proxies), JSON otherwise

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self.path is None or path.startswith(self.path)

    @property
    def as_html(self) -> bool:
        return self.html if self.html is not None else self.status in (502, 504)

    def to_dict(self) -> dict[str, object]:
        return {
            "status": self.status,
            "count": self.count,
            "path": self.path,
            "method": self.method,
            "html": self.as_html,
        }


@dataclass
class Faults:
    rest_errors: list[InjectedError] = field(default_factory=list)
    latency_ms: float = 0.0
    lose_order_responses: int = 0
    reject_auth: bool = False
    data_stream: str = "normal"
    updated_bars: bool = False
    hold_fills: bool = False
    market_closed: bool = False  # the session is closed now: orders queue until it reopens
    partial_fills: int = 1  # parts a market order fills in
    non_fractionable: tuple[str, ...] = ()  # assets refusing fractional and notional orders
    fractional_trading: bool = True  # False: the account refuses fractional orders
    late_order_response_ms: float = 0.0  # > 0: fill first, answer the POST this much later

    def apply(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        """Apply switches from ``spec``; return its one-shot actions for the caller to run."""
        unknown = set(spec) - set(_SWITCHES) - set(TRADING_SWITCHES) - set(ACTIONS)
        if unknown:
            raise ApiError(400, None, f"unknown fault keys: {', '.join(sorted(unknown))}")
        trial = copy.deepcopy(self)  # all or nothing: a bad key leaves every switch as it was
        try:
            trial._apply(spec)
        except (TypeError, ValueError) as exc:
            raise ApiError(400, None, f"bad fault spec: {exc}") from exc
        self.__dict__.update(trial.__dict__)
        return {k: spec[k] for k in ACTIONS if k in spec}

    def _apply(self, spec: Mapping[str, Any]) -> None:
        if spec.get("clear_rest_errors"):
            self.rest_errors.clear()
        if "rest_error" in spec:
            entries = spec["rest_error"]
            for entry in entries if isinstance(entries, list) else [entries]:
                error = InjectedError(**entry)
                if error.status not in REST_ERROR_STATUSES or error.count < 1:
                    raise ValueError(f"rest_error status must be one of {REST_ERROR_STATUSES}")
                self.rest_errors.append(error)
        if "latency_ms" in spec:
            self.latency_ms = max(0.0, float(spec["latency_ms"]))
        if "lose_order_responses" in spec:
            self.lose_order_responses = max(0, int(spec["lose_order_responses"]))
        if "reject_auth" in spec:
            self.reject_auth = bool(spec["reject_auth"])
        if "data_stream" in spec:
            if spec["data_stream"] not in DATA_STREAM_MODES:
                raise ValueError(f"data_stream must be one of {DATA_STREAM_MODES}")
            self.data_stream = str(spec["data_stream"])
        if "updated_bars" in spec:
            self.updated_bars = bool(spec["updated_bars"])
        if "hold_fills" in spec:
            self.hold_fills = bool(spec["hold_fills"])
        self._apply_trading(spec)

    def _apply_trading(self, spec: Mapping[str, Any]) -> None:
        if "market_closed" in spec:
            self.market_closed = bool(spec["market_closed"])
        if "partial_fills" in spec:
            parts = spec["partial_fills"]
            if isinstance(parts, bool) or not isinstance(parts, int):
                raise TypeError("partial_fills must be a whole number")
            if not 1 <= parts <= MAX_PARTIAL_FILLS:
                raise ValueError(f"partial_fills must be between 1 and {MAX_PARTIAL_FILLS}")
            self.partial_fills = parts
        if "non_fractionable" in spec:
            symbols = spec["non_fractionable"]
            if not isinstance(symbols, list | tuple) or not all(
                isinstance(s, str) for s in symbols
            ):
                raise TypeError("non_fractionable must be a list of symbols")
            self.non_fractionable = tuple(s.upper() for s in symbols)
        if "fractional_trading" in spec:
            self.fractional_trading = bool(spec["fractional_trading"])
        if "late_order_response_ms" in spec:
            late = float(spec["late_order_response_ms"])
            if not 0.0 <= late <= MAX_LATE_RESPONSE_MS:
                raise ValueError(f"late_order_response_ms must be 0 to {MAX_LATE_RESPONSE_MS:g}")
            self.late_order_response_ms = late

    def take_rest_error(self, method: str, path: str) -> InjectedError | None:
        """The injected error for this call, if one is armed (consumes one use)."""
        for error in self.rest_errors:
            if error.matches(method, path):
                error.count -= 1
                if error.count <= 0:
                    self.rest_errors.remove(error)
                return error
        return None

    def take_lost_order_response(self) -> bool:
        if self.lose_order_responses > 0:
            self.lose_order_responses -= 1
            return True
        return False

    def to_dict(self) -> dict[str, object]:
        return {
            "rest_errors": [e.to_dict() for e in self.rest_errors],
            "latency_ms": self.latency_ms,
            "lose_order_responses": self.lose_order_responses,
            "reject_auth": self.reject_auth,
            "data_stream": self.data_stream,
            "updated_bars": self.updated_bars,
            "hold_fills": self.hold_fills,
            "market_closed": self.market_closed,
            "partial_fills": self.partial_fills,
            "non_fractionable": list(self.non_fractionable),
            "fractional_trading": self.fractional_trading,
            "late_order_response_ms": self.late_order_response_ms,
        }
