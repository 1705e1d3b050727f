"""The alert rules of ``rules/tapewatch.rules.yml`` (beside this module), evaluated in-process
for the console.

Prometheus watches the bot from elsewhere; the console raises the same five conditions as
notifications. Each rule has hysteresis so an alert does not flap around its threshold: it
raises above ``raise_above`` (held for ``raise_for`` seconds) and clears only once the value has
stayed below the lower ``clear_below`` for ``clear_for`` seconds. Rates and quantiles are taken
over a sliding window, like ``rate(...[5m])`` in the rule file. Times are monotonic seconds
passed in by the caller, never read here.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tapewatch.engine.observability.metrics import (
    BrokerTelemetry,
    drawdown_ratio,
    histogram_snapshot,
    telemetry,
)

if TYPE_CHECKING:
    from tapewatch.engine.core.engine import Engine


@dataclass(frozen=True, slots=True)
class Alert:
    name: str
    message: str
    severity: str = "warning"
    value: float = 0.0
    since: float = 0.0  # monotonic seconds when it was raised


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    describe: str  # a format string taking ``value``
    raise_above: float
    clear_below: float
    raise_for: float = 0.0
    clear_for: float = 30.0
    severity: str = "warning"


RULES: tuple[Rule, ...] = (
    Rule("OrderLatencyHigh", "p99 order latency {value:.3f} s (> 0.2 s)", 0.2, 0.15),
    Rule("ApiErrorRateHigh", "broker API error rate {value:.1%} (> 1%)", 0.01, 0.005),
    Rule("DrawdownHigh", "drawdown {value:.1%} of the day's starting equity (> 3%)", 0.03, 0.025,
         severity="error"),
    Rule("RateLimitBudgetHigh", "rate-limit budget {value:.0%} used (> 80%)", 0.8, 0.7),
    Rule("WebsocketDisconnected", "websocket disconnected for {value:.0f} s (> 30 s)", 30.0, 0.5,
         clear_for=5.0, severity="error"),
)  # fmt: skip


@dataclass(slots=True)
class _Track:
    active: bool = False
    since: float = 0.0
    pending_since: float | None = None  # above raise threshold, waiting out raise_for
    clearing_since: float | None = None  # below clear threshold, waiting out clear_for
    value: float = 0.0


@dataclass(frozen=True, slots=True)
class AlertChanges:
    active: list[Alert]
    raised: list[Alert] = field(default_factory=list)
    cleared: list[str] = field(default_factory=list)


class AlertEvaluator:
    """Pure hysteresis over named values; ``None`` means no data (counts as clear)."""

    def __init__(self, rules: Iterable[Rule] = RULES) -> None:
        self.rules = {rule.name: rule for rule in rules}
        self._tracks = {name: _Track() for name in self.rules}

    def update(self, values: Mapping[str, float | None], now: float) -> AlertChanges:
        raised: list[Alert] = []
        cleared: list[str] = []
        for name, rule in self.rules.items():
            track = self._tracks[name]
            value = values.get(name)
            if track.active:
                if value is not None:
                    track.value = value
                if value is None or value < rule.clear_below:
                    if track.clearing_since is None:
                        track.clearing_since = now
                    if now - track.clearing_since >= rule.clear_for:
                        self._tracks[name] = _Track()
                        cleared.append(name)
                else:
                    track.clearing_since = None
            elif value is not None and value > rule.raise_above:
                if track.pending_since is None:
                    track.pending_since = now
                if now - track.pending_since >= rule.raise_for:
                    self._tracks[name] = _Track(active=True, since=now, value=value)
                    raised.append(self._alert(rule, self._tracks[name]))
            else:
                track.pending_since = None
        return AlertChanges(self.active(), raised, cleared)

    def active(self) -> list[Alert]:
        return [
            self._alert(self.rules[name], track)
            for name, track in self._tracks.items()
            if track.active
        ]

    @staticmethod
    def _alert(rule: Rule, track: _Track) -> Alert:
        message = rule.describe.format(value=track.value)
        return Alert(rule.name, message, rule.severity, track.value, track.since)


def quantile(q: float, bounds: tuple[float, ...], cumulative: tuple[int, ...]) -> float | None:
    """``histogram_quantile`` as Prometheus computes it: linear within the bucket."""
    total = cumulative[-1]
    if total <= 0:
        return None
    rank = q * total
    lower_bound, lower_count = 0.0, 0
    for bound, count in zip(bounds, cumulative, strict=False):
        if count >= rank:
            span = count - lower_count
            fraction = (rank - lower_count) / span if span else 1.0
            return lower_bound + (bound - lower_bound) * fraction
        lower_bound, lower_count = bound, count
    return bounds[-1]  # beyond the last finite bucket, Prometheus answers its upper bound


class EngineAlerts:
    """Reads one engine (and its broker's telemetry) and runs the rules over a sliding window."""

    def __init__(
        self,
        engine: Engine,
        *,
        provider: object | None = None,
        window: float = 300.0,
        rules: Iterable[Rule] = RULES,
    ) -> None:
        self.engine = engine
        self._provider = provider
        self.window = window
        self.evaluator = AlertEvaluator(rules)
        # (now, latency cumulative buckets, api errors, api requests)
        self._samples: deque[tuple[float, tuple[int, ...], int, int]] = deque()
        self._disconnected_since: float | None = None

    @property
    def provider(self) -> object:
        return self._provider if self._provider is not None else self.engine.broker

    def values(self, now: float) -> dict[str, float | None]:
        """Each rule's current value (None when there is nothing to judge yet)."""
        provider = self.provider
        snap = histogram_snapshot(self.engine.latency, "submit_to_ack")
        errors = sum(int(v) for v in dict(telemetry(provider, "api_error_counts", {})).values())
        requests = int(telemetry(provider, "api_request_count", 0))
        samples = self._samples
        samples.append((now, snap.cumulative, errors, requests))
        while len(samples) > 1 and now - samples[1][0] >= self.window:
            samples.popleft()  # keep the newest sample at least a window old as the base
        _, base_buckets, base_errors, base_requests = samples[0]
        delta = tuple(b - a for a, b in zip(base_buckets, snap.cumulative, strict=True))
        if len(samples) == 1:
            delta = snap.cumulative  # first look: everything recorded so far
            base_errors = base_requests = 0
        sent = requests - base_requests
        return {
            "OrderLatencyHigh": quantile(0.99, snap.bounds, delta),
            "ApiErrorRateHigh": (errors - base_errors) / sent if sent > 0 else None,
            "DrawdownHigh": drawdown_ratio(self.engine),
            "RateLimitBudgetHigh": float(telemetry(provider, "rate_limit_used_ratio", 0.0)),
            "WebsocketDisconnected": self._disconnected_for(provider, now),
        }

    def _disconnected_for(self, provider: object, now: float) -> float | None:
        if not isinstance(provider, BrokerTelemetry):
            self._disconnected_since = None
            return None  # this session has no websocket (offline demo, backtest)
        if telemetry(provider, "websocket_connected", False):
            self._disconnected_since = None
            return 0.0
        if self._disconnected_since is None:
            self._disconnected_since = now
        return now - self._disconnected_since

    def update(self, now: float) -> AlertChanges:
        return self.evaluator.update(self.values(now), now)

    def evaluate(self, now: float) -> list[Alert]:
        """The alerts active after this look (call it on a timer, e.g. once a second)."""
        return self.update(now).active
