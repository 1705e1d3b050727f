"""The Prometheus endpoint: every metric present and moving during a demo run, histograms read
from the same HdrHistograms as the Latency pane, trade outcomes, broker telemetry."""

from __future__ import annotations

import asyncio
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tapewatch.engine.adapters.sim.broker import SimBroker
from tapewatch.engine.model.events import OrderUpdated
from tapewatch.engine.model.types import Intent, Order, OrderRequest, OrderStatus, Side
from tapewatch.engine.observability.health import StreamHealth
from tapewatch.engine.observability.latency import LatencyRecorder
from tapewatch.engine.observability.metrics import (
    BUCKETS,
    EngineMetrics,
    MetricsServer,
    histogram_snapshot,
)
from tapewatch.engine.observability.sysmetrics import LoopLagSampler, disk_free_bytes
from tapewatch.engine.root.demo import DemoOptions, build_demo
from tapewatch.engine.settings.config import ConfigError, EngineConfig, StrategyConfig
from tests.helpers import T0, bars_from_closes, feed_bars, make_engine

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

REQUIRED = (
    "tapewatch_order_latency_seconds_bucket",
    "tapewatch_order_latency_seconds_sum",
    "tapewatch_order_latency_seconds_count",
    "tapewatch_indicator_seconds_count",
    "tapewatch_api_errors_total",
    "tapewatch_api_requests_total",
    "tapewatch_equity_dollars",
    "tapewatch_position_qty",
    "tapewatch_drawdown_ratio",
    "tapewatch_rate_limit_used_ratio",
    "tapewatch_websocket_connected",
    "tapewatch_websocket_last_message_age_seconds",
    "tapewatch_process_resident_memory_bytes",
    "process_resident_memory_bytes",
    "tapewatch_event_loop_lag_seconds",
    "tapewatch_process_cpu_seconds_total",
    "tapewatch_data_dir_free_bytes",
    "tapewatch_rest_roundtrip_seconds_count",
    "tapewatch_stream_lag_seconds_count",
    "tapewatch_trades_total",
    "tapewatch_trading_state",
)


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.status == 200
        return response.read().decode("utf-8")


async def wait_until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the demo"
        await asyncio.sleep(0.005)


async def test_scrape_during_a_demo_run_shows_every_metric_moving(tmp_path: Path) -> None:
    # Short look-backs and near-50 thresholds make the seeded demo trade every few bars.
    config = EngineConfig(
        strategy=StrategyConfig(
            rsi_period=2, sma_period=3, rsi_oversold=45, rsi_overbought=55, position_pct=0.5
        )
    ).validate()
    session = build_demo(
        config, DemoOptions(seed=3, speed=10_000, warmup_bars=10), data_dir=tmp_path
    )
    engine = session.engine
    metrics = EngineMetrics(engine, data_dir=tmp_path, lag=LoopLagSampler(interval=0.005))
    server = metrics.server("127.0.0.1", 0).start()
    running = asyncio.create_task(engine.run(session.feed))
    try:
        assert server.port > 0 and server.url.startswith("http://127.0.0.1:")
        await wait_until(lambda: metrics.trades["filled"] >= 2 and metrics.bars >= 10)
        first = parse(await asyncio.to_thread(scrape, server.url))
        filled, equity = metrics.trades["filled"], engine.state.equity
        await wait_until(
            lambda: metrics.trades["filled"] >= filled + 2 and engine.state.equity != equity
        )
        second = parse(await asyncio.to_thread(scrape, server.url))
    finally:
        await engine.stop()
        await asyncio.wait_for(running, 10)
        server.stop()
        assert session.journal is not None
        session.journal.close()

    for samples in (first, second):
        names = {name for name, _ in samples}
        missing = [name for name in REQUIRED if name not in names]
        assert not missing, f"not exported: {missing}"

    def moved(name: str, **labels: str) -> tuple[float, float]:
        return value(first, name, **labels), value(second, name, **labels)

    a, b = moved("tapewatch_equity_dollars")
    assert a != b
    for name, labels in (
        ("tapewatch_trades_total", {"outcome": "filled"}),
        ("tapewatch_order_latency_seconds_count", {"stage": "submit_to_ack"}),
        ("tapewatch_order_latency_seconds_count", {"stage": "ack_to_fill"}),
        ("tapewatch_indicator_seconds_count", {}),
        ("tapewatch_bars_total", {}),
    ):
        a, b = moved(name, **labels)
        assert 0 < a < b, (name, a, b)
    a, b = moved("tapewatch_process_cpu_seconds_total")
    assert 0 < a <= b
    assert value(second, "tapewatch_trading_state", state="ACTIVE") == 1.0
    assert value(second, "tapewatch_trading_state", state="HALTED") == 0.0
    assert value(second, "tapewatch_process_resident_memory_bytes") > 10_000_000
    assert value(second, "tapewatch_data_dir_free_bytes") == pytest.approx(
        disk_free_bytes(tmp_path), rel=0.05
    )
    assert value(second, "tapewatch_websocket_expected") == 0.0  # the demo has no websocket
    assert ("tapewatch_position_qty", frozenset({("symbol", "SPY")})) in second
    # The loop-lag sampler started with the server (inside the loop) and stopped with it.
    assert metrics.lag.samples > 0 and not metrics.lag.running
    # The Latency pane's numbers and the scrape come from the same histograms.
    count = value(second, "tapewatch_order_latency_seconds_count", stage="submit_to_ack")
    assert engine.latency.count("submit_to_ack") >= count
    with pytest.raises(OSError):
        scrape(server.url)  # stopped means stopped


def test_histogram_buckets_come_from_the_hdrhistogram() -> None:
    recorder = LatencyRecorder()
    values = [0.00002, 0.0009, 0.0011, 0.15, 0.2, 0.21, 1.0, 120.0]
    for v in values:
        recorder.record("submit_to_ack", v)
    snap = histogram_snapshot(recorder, "submit_to_ack")
    assert snap.count == len(values) == recorder.count("submit_to_ack")
    cumulative = dict(zip(snap.bounds, snap.cumulative, strict=False))
    assert cumulative[0.00001] == 0
    assert cumulative[0.000025] == 1
    assert cumulative[0.001] == 2
    assert cumulative[0.0025] == 3
    assert cumulative[0.2] == 5  # the bound itself is inside its bucket
    assert cumulative[0.25] == 6
    assert cumulative[60.0] == 7  # 120 s lands only in +Inf
    assert list(snap.cumulative) == sorted(snap.cumulative)
    assert snap.sum == pytest.approx(sum(values), rel=1e-3)
    assert len(snap.cumulative) == len(BUCKETS) + 1


def test_histogram_of_an_empty_stage_is_all_zero() -> None:
    snap = histogram_snapshot(LatencyRecorder(), "rest_roundtrip")
    assert snap.count == 0 and snap.sum == 0.0 and set(snap.cumulative) == {0}


class Telemetry:
    """A broker's optional telemetry, as the Alpaca adapter will expose it."""

    def rate_limit_used_ratio(self) -> float:
        return 0.85

    def api_error_counts(self) -> dict[object, int]:
        return {429: 3, "network": 1}

    def api_request_count(self) -> int:
        return 200

    def websocket_connected(self) -> bool:
        return False

    def websocket_last_message_age(self, now: datetime) -> float:
        return 42.5


class Broken:
    def rate_limit_used_ratio(self) -> float:
        raise RuntimeError("adapter bug")


def test_broker_telemetry_is_read_at_scrape_time() -> None:
    engine, _, _ = make_engine()
    samples = parse(EngineMetrics(engine, provider=Telemetry()).exposition().decode())
    assert value(samples, "tapewatch_rate_limit_used_ratio") == 0.85
    assert value(samples, "tapewatch_api_errors_total", status="429") == 3
    assert value(samples, "tapewatch_api_errors_total", status="network") == 1
    assert value(samples, "tapewatch_api_errors_total", status="500") == 0  # seeded at zero
    assert value(samples, "tapewatch_api_requests_total") == 200
    assert value(samples, "tapewatch_websocket_connected") == 0.0
    assert value(samples, "tapewatch_websocket_expected") == 1.0
    assert value(samples, "tapewatch_websocket_last_message_age_seconds") == 42.5


def test_a_failing_telemetry_method_reads_as_its_default() -> None:
    engine, _, _ = make_engine()
    samples = parse(EngineMetrics(engine, provider=Broken()).exposition().decode())
    assert value(samples, "tapewatch_rate_limit_used_ratio") == 0.0


async def test_trades_by_outcome_count_each_order_once() -> None:
    engine, _, clock = make_engine()
    metrics = EngineMetrics(engine, process_collector=False)
    await engine.start()
    # Rises then a three-bar dip: RSI(3) oversold above the SMA -> a buy that fills next bar.
    bars = bars_from_closes([100, 101, 102, 103, 104, 110, 109.5, 109, 108.8, 109.2])
    await feed_bars(engine, clock, bars)
    assert metrics.trades == {"filled": 1, "rejected": 0, "denied": 0, "cancelled": 0}
    await engine.pause()
    request = OrderRequest("cid-denied", "SPY", Side.BUY, 1.0, Intent.ENTRY)
    await engine._route(request, 0.0)
    huge = OrderRequest("cid-huge", "SPY", Side.BUY, 1e9, Intent.ENTRY)
    await engine._submit(huge)  # more than the cash: the simulated broker rejects it
    samples = parse(metrics.exposition().decode())
    assert value(samples, "tapewatch_trades_total", outcome="denied") == 1
    assert value(samples, "tapewatch_trades_total", outcome="rejected") == 1
    assert value(samples, "tapewatch_trades_total", outcome="filled") == 1
    assert value(samples, "tapewatch_trading_state", state="REDUCING") == 1.0
    assert value(samples, "tapewatch_breaker_tripped", breaker="pause") == 1.0
    assert value(samples, "tapewatch_position_qty", symbol="SPY") > 0
    # The same terminal status seen again (a restart's look-up) is not a second trade.
    again = Order("", "cid-huge", "SPY", Side.BUY, 1e9, OrderStatus.REJECTED)
    metrics.on_event(OrderUpdated(ts=clock.now(), order=again))
    assert metrics.trades["rejected"] == 1


def test_a_port_in_use_is_one_clear_error() -> None:
    engine, _, _ = make_engine()
    metrics = EngineMetrics(engine, process_collector=False)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"127.0.0.1:{port}.*--metrics-port"):
            metrics.server("127.0.0.1", port).start()
    with pytest.raises(ConfigError, match="0-65535"):
        MetricsServer("127.0.0.1", 70_000, registry=metrics.registry)


def test_server_started_outside_a_loop_serves_and_leaves_the_sampler_to_the_caller() -> None:
    engine, _, _ = make_engine()
    metrics = EngineMetrics(engine, process_collector=False)
    with metrics.server() as server:
        text = scrape(server.url)
        assert "tapewatch_equity_dollars" in text
        assert not metrics.lag.running


async def test_loop_lag_sampler_sees_a_blocked_loop() -> None:
    sampler = LoopLagSampler(interval=0.005)
    sampler.start()
    await asyncio.sleep(0.02)
    time.sleep(0.06)  # hold the loop, as a slow repaint would
    await asyncio.sleep(0.02)
    sampler.stop()
    assert sampler.max_recent >= 0.04
    assert sampler.samples >= 2


def test_disk_free_of_a_missing_directory_asks_its_parent(tmp_path: Path) -> None:
    free = disk_free_bytes(tmp_path / "not" / "yet")
    assert free is not None and free == pytest.approx(disk_free_bytes(tmp_path), rel=0.05)


def test_a_failing_scrape_goes_to_the_log_not_the_screen(
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    engine, _, _ = make_engine()
    metrics = EngineMetrics(engine, process_collector=False)

    def broken() -> list[object]:
        raise RuntimeError("collector bug")

    metrics._trading = broken  # type: ignore[method-assign]
    with metrics.server() as server, pytest.raises(urllib.error.HTTPError) as failed:
        scrape(server.url)
    assert failed.value.code == 500
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""
    assert "collector bug" in caplog.text


class DownTradeStream(SimBroker):
    """A broker whose trade-update stream was refused (as AlpacaBroker reports it)."""

    def stream_health(self) -> StreamHealth:
        return StreamHealth("down", T0, reason="authentication refused (402 auth failed)", code=402)


def test_stream_state_is_a_gauge_per_stream_and_state() -> None:
    engine, _, clock = make_engine()
    engine.broker = DownTradeStream(100_000.0, engine.config.execution, clock=clock)
    samples = parse(EngineMetrics(engine).exposition().decode())
    assert value(samples, "tapewatch_stream_state", stream="trades", state="down") == 1.0
    assert value(samples, "tapewatch_stream_state", stream="trades", state="ok") == 0.0
    demo = parse(EngineMetrics(make_engine()[0]).exposition().decode())
    assert not [key for key in demo if key[0] == "tapewatch_stream_state"]  # the demo has none
