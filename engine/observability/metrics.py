"""Prometheus metrics for one engine, served on 127.0.0.1 unless asked otherwise.

Two sources, and no heavy work on the event path:
- a bus sink counts what only events tell (trades by outcome, bars): one dict increment each;
- a custom collector reads everything else when scraped: the engine's state (equity, positions,
  trading state), the gate's breakers, the process (memory, CPU, disk, loop lag) and the
  LatencyRecorder's HdrHistograms, which the Latency pane reads too. Those are exported as
  Prometheus histograms (cumulative counts at fixed bounds, plus sum and count) computed from
  the HdrHistogram counts at scrape time, so nothing is recorded twice.

Broker telemetry (rate limits, API errors, websocket health) comes from optional methods on the
broker, read with defaults so an offline demo still exports every metric; see
``BrokerTelemetry``. The HTTP server runs in a daemon thread: a scrape never waits for the loop.
"""

from __future__ import annotations

import contextlib
import io
import logging
import socket
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import numpy as np
from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import ThreadingWSGIServer, make_wsgi_app
from prometheus_client.utils import floatToGoString

from tapewatch.engine.model.events import Event
from tapewatch.engine.model.types import OrderStatus, TradingState
from tapewatch.engine.observability.health import STREAM_STATES
from tapewatch.engine.observability.latency import LatencyRecorder
from tapewatch.engine.observability.logs import redact
from tapewatch.engine.observability.sysmetrics import (
    LoopLagSampler,
    cpu_seconds,
    disk_free_bytes,
    resident_memory_bytes,
)
from tapewatch.engine.settings.config import ConfigError

if TYPE_CHECKING:
    from tapewatch.engine.core.engine import Engine
log = logging.getLogger("tapewatch.metrics")

DEFAULT_HOST = "127.0.0.1"
_POLL = 0.05  # seconds: how quickly stop() returns

# Upper bounds (seconds) shared by every latency histogram: 10 µs to a minute, with 0.2 s (the
# order-latency alert threshold) on a bucket edge so the alert's quantile is not interpolated
# across it.
BUCKETS: tuple[float, ...] = (
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip

ORDER_STAGES = ("decision_to_submit", "submit_to_ack", "ack_to_fill")
OUTCOMES = ("filled", "rejected", "denied", "cancelled")
# Statuses exported at 0 from the start, so rate() over them works before the first error.
SEEDED_STATUSES = ("400", "401", "403", "404", "422", "429", "500", "502", "503", "504", "network")

_OUTCOME_OF = {
    OrderStatus.FILLED: "filled",
    OrderStatus.REJECTED: "rejected",
    OrderStatus.CANCELLED: "cancelled",
    OrderStatus.EXPIRED: "cancelled",
}
_SEEN_ORDERS = 4096  # order ids remembered so a terminal status is counted once


@runtime_checkable
class BrokerTelemetry(Protocol):
    """Optional broker methods the collector reads (all cheap, thread-safe, non-blocking)."""

    def rate_limit_used_ratio(self) -> float: ...  # 0..1 of the API budget used this window

    def api_error_counts(self) -> Mapping[str, int]: ...  # status ("429", "network") -> count

    def api_request_count(self) -> int: ...  # every REST request sent

    def websocket_connected(self) -> bool: ...

    def websocket_last_message_age(self, now: datetime) -> float | None: ...  # seconds


def telemetry(provider: object, name: str, default: Any, *args: object) -> Any:
    """Read one telemetry method of a ``BrokerTelemetry`` provider; another provider (the
    demo's simulated broker) or a failing method reads as ``default``."""
    if not isinstance(provider, BrokerTelemetry):
        return default
    method = getattr(provider, name)
    try:
        value = method(*args)
    except Exception:  # a scrape must never fail on one bad reading
        log.debug("telemetry %s failed", name, exc_info=True)
        return default
    return default if value is None else value


# -- HdrHistogram -> Prometheus histogram ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HistogramSnapshot:
    """Cumulative counts at ``bounds`` (seconds), then the +Inf total, with the sum in seconds."""

    bounds: tuple[float, ...]
    cumulative: tuple[int, ...]  # one per bound, then the +Inf bucket
    sum: float

    @property
    def count(self) -> int:
        return self.cumulative[-1]


def _hdr(recorder: LatencyRecorder, stage: str) -> Any:
    accessor = getattr(recorder, "histogram", None)
    return accessor(stage) if callable(accessor) else recorder._hist[stage]


_MIDPOINTS: dict[tuple[int, int, int], np.ndarray] = {}


def _midpoints(h: Any) -> np.ndarray:
    """Each counts-array slot's middle value (HdrHistogram's "median equivalent"), vectorised.

    Slot ``i`` covers values ``low .. low + size - 1`` where both follow from the histogram's
    bucket geometry; the table is built once per geometry.
    """
    key = (h.counts_len, h.sub_bucket_half_count_magnitude, h.unit_magnitude)
    table = _MIDPOINTS.get(key)
    if table is None:
        index = np.arange(h.counts_len, dtype=np.int64)
        half = h.sub_bucket_half_count
        bucket = (index >> h.sub_bucket_half_count_magnitude) - 1
        sub = (index & (half - 1)) + half
        first = bucket < 0
        sub = np.where(first, sub - half, sub)
        shift = np.where(first, 0, bucket) + h.unit_magnitude
        table = (sub << shift) + ((np.int64(1) << shift) >> 1)
        _MIDPOINTS[key] = table
    return table


def histogram_snapshot(
    recorder: LatencyRecorder, stage: str, bounds: tuple[float, ...] = BUCKETS
) -> HistogramSnapshot:
    """Read one stage's HdrHistogram as fixed buckets (values are microseconds inside).

    The counts array is copied first, so a value recorded meanwhile cannot make a bucket
    disagree with the total. A bound falls in an HdrHistogram bucket 0.1% wide; values in that
    bucket count as at or below the bound.
    """
    h = _hdr(recorder, stage)
    counts = np.ctypeslib.as_array(h.counts).astype(np.int64)  # a copy
    running = np.cumsum(counts)
    total = int(running[-1])
    last = len(running) - 1
    cumulative = [
        int(running[min(last, h.get_counts_array_index(max(1, round(b * 1e6))))]) for b in bounds
    ]
    cumulative.append(total)
    micros = float(counts @ _midpoints(h))
    return HistogramSnapshot(bounds, tuple(cumulative), micros / 1e6)


def _histogram_family(
    name: str, doc: str, recorder: LatencyRecorder, stages: Iterable[str], label: str | None
) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=[label] if label else None)
    for stage in stages:
        snap = histogram_snapshot(recorder, stage)
        edges = [floatToGoString(b) for b in snap.bounds] + ["+Inf"]
        buckets = list(zip(edges, snap.cumulative, strict=True))
        family.add_metric([stage] if label else [], buckets, snap.sum)
    return family


# -- the engine's metrics ----------------------------------------------------------------------


class EngineMetrics:
    """A registry holding one engine's metrics; attach once, read by any number of scrapers."""

    def __init__(
        self,
        engine: Engine,
        *,
        data_dir: Path | None = None,
        provider: object | None = None,
        lag: LoopLagSampler | None = None,
        registry: CollectorRegistry | None = None,
        process_collector: bool = True,
    ) -> None:
        self.engine = engine
        self.data_dir = data_dir
        self._provider = provider
        self.lag = lag or LoopLagSampler()
        self.trades = dict.fromkeys(OUTCOMES, 0)
        self.bars = 0
        self._settled: OrderedDict[str, None] = OrderedDict()
        self.registry = registry or CollectorRegistry(auto_describe=False)
        self.registry.register(self)
        if process_collector:
            ProcessCollector(registry=self.registry)  # the standard process_* series too
        engine.add_sink(self.on_event)

    @property
    def provider(self) -> object:
        """Where broker telemetry comes from: the given provider, else the current broker."""
        return self._provider if self._provider is not None else self.engine.broker

    # -- event sink (the engine's hot path: O(1), no I/O) --------------------------------------

    def on_event(self, event: Event) -> None:
        kind = event.kind
        if kind == "bar":
            self.bars += 1
        elif kind == "risk_denied":
            self.trades["denied"] += 1
        elif kind in ("fill", "order_submitted", "order_updated"):
            order = event.order  # type: ignore[attr-defined]
            outcome = _OUTCOME_OF.get(order.status)
            if outcome is not None and self._first_settlement(order.client_order_id):
                self.trades[outcome] += 1

    def _first_settlement(self, client_order_id: str) -> bool:
        seen = self._settled
        if client_order_id in seen:
            return False
        seen[client_order_id] = None
        if len(seen) > _SEEN_ORDERS:
            seen.popitem(last=False)
        return True

    # -- the collector (runs in the HTTP thread at scrape time) --------------------------------

    def describe(self) -> Iterable[Metric]:
        return ()

    def collect(self) -> Iterable[Metric]:
        yield from self._trading()
        yield from self._broker()
        yield from self._latency()
        yield from self._process()

    def _trading(self) -> Iterable[Metric]:
        engine = self.engine
        state = engine.state
        yield _gauge("tapewatch_equity_dollars", "Account equity in dollars.", state.equity)
        yield _gauge("tapewatch_cash_dollars", "Account cash in dollars.", state.cash)
        yield _gauge(
            "tapewatch_day_start_equity_dollars",
            "Equity at the start of the trading day, in dollars (the drawdown reference).",
            state.day_start_equity,
        )
        yield _gauge(
            "tapewatch_drawdown_ratio",
            "Drawdown from the day's starting equity as a fraction (0.03 is 3%).",
            drawdown_ratio(engine),
        )
        positions = GaugeMetricFamily(
            "tapewatch_position_qty",
            "Position size in shares (negative is short).",
            labels=["symbol"],
        )
        qty = {engine.symbol: 0.0}
        for symbol, position in dict(state.positions).items():
            qty[symbol] = position.qty
        for symbol, value in sorted(qty.items()):
            positions.add_metric([redact(symbol)], value)
        yield positions
        trading = GaugeMetricFamily(
            "tapewatch_trading_state",
            "The risk gate's trading state: 1 for the current state, 0 for the others.",
            labels=["state"],
        )
        for s in TradingState:
            trading.add_metric([s.value], 1.0 if state.trading_state is s else 0.0)
        yield trading
        mode = GaugeMetricFamily(
            "tapewatch_mode", "The session's mode: 1 for the current mode.", labels=["mode"]
        )
        mode.add_metric([state.mode.value], 1.0)
        yield mode
        breakers = GaugeMetricFamily(
            "tapewatch_breaker_tripped", "1 while a risk breaker is tripped.", labels=["breaker"]
        )
        for status in engine.breaker_statuses():
            breakers.add_metric([redact(status.name)], 1.0 if status.tripped else 0.0)
        yield breakers
        yield _gauge(
            "tapewatch_orders_in_flight", "Orders sent and not yet settled.", state.in_flight
        )
        trades = CounterMetricFamily(
            "tapewatch_trades",
            "Orders by final outcome: filled, rejected (by the broker), denied (by the risk gate),"
            " cancelled.",
            labels=["outcome"],
        )
        for outcome in OUTCOMES:
            trades.add_metric([outcome], self.trades[outcome])
        yield trades
        yield CounterMetricFamily(
            "tapewatch_bars", "Closed bars the strategy evaluated.", value=self.bars
        )

    def _broker(self) -> Iterable[Metric]:
        provider = self.provider
        now = self.engine.clock.now()
        yield _gauge(
            "tapewatch_rate_limit_used_ratio",
            "Fraction of the broker API's rate-limit budget used in the current window.",
            float(telemetry(provider, "rate_limit_used_ratio", 0.0)),
        )
        errors = CounterMetricFamily(
            "tapewatch_api_errors",
            "Broker API errors by HTTP status ('network' for no response).",
            labels=["status"],
        )
        counts = dict.fromkeys(SEEDED_STATUSES, 0)
        for status, count in dict(telemetry(provider, "api_error_counts", {})).items():
            key = redact(str(status))
            counts[key] = counts.get(key, 0) + int(count)
        for status, count in sorted(counts.items()):
            errors.add_metric([status], count)
        yield errors
        yield CounterMetricFamily(
            "tapewatch_api_requests",
            "Broker API requests sent.",
            value=int(telemetry(provider, "api_request_count", 0)),
        )
        expected = isinstance(provider, BrokerTelemetry)
        yield _gauge(
            "tapewatch_websocket_expected",
            "1 when the session streams from the broker over a websocket (paper/live), else 0.",
            1.0 if expected else 0.0,
        )
        yield _gauge(
            "tapewatch_websocket_connected",
            "1 while the broker's websocket is connected.",
            1.0 if telemetry(provider, "websocket_connected", False) else 0.0,
        )
        yield _gauge(
            "tapewatch_websocket_last_message_age_seconds",
            "Seconds since the last websocket message arrived.",
            float(telemetry(provider, "websocket_last_message_age", 0.0, now)),
        )
        streams = GaugeMetricFamily(
            "tapewatch_stream_state",
            "1 for each stream's current state (ok, connecting, reconnecting, down, stopped).",
            labels=["stream", "state"],
        )
        for name, health in sorted(self.engine.connection_health().items()):
            for state in STREAM_STATES:
                streams.add_metric([name, state], 1.0 if health.state == state else 0.0)
        yield streams

    def _latency(self) -> Iterable[Metric]:
        recorder = self.engine.latency
        yield _histogram_family(
            "tapewatch_order_latency_seconds",
            "Order latency by stage: decision to submit, submit to broker acknowledgement,"
            " acknowledgement to fill.",
            recorder,
            ORDER_STAGES,
            "stage",
        )
        yield _histogram_family(
            "tapewatch_indicator_seconds",
            "Time from a closed bar to the strategy's decision (indicators and signal).",
            recorder,
            ("bar_to_decision",),
            None,
        )
        yield _histogram_family(
            "tapewatch_rest_roundtrip_seconds",
            "Round-trip time of REST requests to the broker.",
            recorder,
            ("rest_roundtrip",),
            None,
        )
        yield _histogram_family(
            "tapewatch_stream_lag_seconds",
            "Delay between a streamed message's exchange timestamp and its receipt.",
            recorder,
            ("stream_lag",),
            None,
        )

    def _process(self) -> Iterable[Metric]:
        yield _gauge(
            "tapewatch_process_resident_memory_bytes",
            "Resident memory of the tapewatch process in bytes.",
            resident_memory_bytes(),
        )
        yield CounterMetricFamily(
            "tapewatch_process_cpu_seconds",
            "User and system CPU time used by the tapewatch process, in seconds.",
            value=cpu_seconds(),
        )
        yield _gauge(
            "tapewatch_event_loop_lag_seconds",
            "How late the event loop last ran a timer, in seconds.",
            self.lag.last,
        )
        yield _gauge(
            "tapewatch_event_loop_lag_max_seconds",
            "Worst event-loop lag over the last minute, in seconds.",
            self.lag.max_recent,
        )
        free = disk_free_bytes(self.data_dir) if self.data_dir is not None else None
        yield _gauge(
            "tapewatch_data_dir_free_bytes",
            "Free bytes on the filesystem holding the data directory (journal, logs, audit).",
            float("nan") if free is None else free,
        )

    # -- convenience ---------------------------------------------------------------------------

    def exposition(self) -> bytes:
        """The text a scrape would return (for tests and ``tapewatch doctor``)."""
        return generate_latest(self.registry)

    def server(self, host: str = DEFAULT_HOST, port: int = 0) -> MetricsServer:
        return MetricsServer(host, port, registry=self.registry, sampler=self.lag)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def drawdown_ratio(engine: Engine) -> float:
    """Today's drawdown as a fraction, as the drawdown breaker measures it."""
    return engine.day_drawdown


# -- the HTTP endpoint -------------------------------------------------------------------------


class MetricsServer:
    """Serves a registry at ``http://host:port/metrics`` from a daemon thread.

    ``start()`` also starts the loop-lag sampler when called inside a running event loop;
    otherwise call ``sampler.start()`` from the loop later.
    """

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = 0,
        *,
        registry: CollectorRegistry,
        sampler: LoopLagSampler | None = None,
    ) -> None:
        if not 0 <= port <= 65535:
            raise ConfigError(f"--metrics-port must be 0-65535 (got {port})")
        self.host = host
        self.requested_port = port
        self.registry = registry
        self.sampler = sampler
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (useful when 0 asked the system to pick one)."""
        return self._server.server_port if self._server is not None else self.requested_port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> MetricsServer:
        if self._server is not None:
            return self
        try:
            server = _bind(self.host, self.requested_port, make_wsgi_app(self.registry))
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise ConfigError(
                f"cannot serve metrics on {self.host}:{self.requested_port}: {reason}; "
                "pick another --metrics-port (or --metrics-host)"
            ) from None
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": _POLL},
            name="tapewatch-metrics",
            daemon=True,
        )
        thread.start()
        self._server, self._thread = server, thread
        if self.sampler is not None:
            # Outside a running loop the caller starts the sampler from the loop later.
            with contextlib.suppress(RuntimeError):
                self.sampler.start()
        log.info("serving metrics at %s", self.url)
        return self

    def stop(self) -> None:
        if self.sampler is not None:
            self.sampler.stop()
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5.0)

    def __enter__(self) -> MetricsServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


class _ErrorsToLog(io.TextIOBase):
    """Where wsgiref writes a failing request's traceback: the log file, not the screen."""

    def write(self, text: str) -> int:
        if text.strip():
            log.error("metrics endpoint: %s", text.rstrip())
        return len(text)


class _QuietHandler(WSGIRequestHandler):
    """Nothing on stderr: under the console it would scribble over the screen."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def get_stderr(self) -> io.TextIOBase:
        return _ErrorsToLog()


def _bind(host: str, port: int, app: Any) -> WSGIServer:
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror as exc:
        raise OSError(exc.errno, exc.strerror) from None

    class Server(ThreadingWSGIServer):
        address_family = family

        def handle_error(self, request: Any, client_address: Any) -> None:
            log.warning("metrics request from %s failed", client_address, exc_info=True)

    return make_server(host, port, app, Server, handler_class=_QuietHandler)
