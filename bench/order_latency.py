"""Order latency through the real alpaca-py SDK against the local sandbox on loopback.

Measured in one run, on one sandbox, so the ratios mean something on a shared, noisy machine:

* raw HTTP: ``http.client`` on a kept-alive connection, GET /v2/clock and POST /v2/orders
  (the floor: loopback, the sandbox's own handling, HTTP parsing);
* the SDK called directly (requests + pydantic, no adapter) for the same two requests;
* through the adapter: get_clock, and an order submit -> acknowledged
  (``AlpacaBroker.submit_order`` returns) and -> filled (the ``OrderFilled`` from
  trade_updates reaches the listener).
  The three ways take turns request by request, so each sees the same server state;
* the engine's decision latency: bar handed to ``Engine.on_bar`` -> ``submit_order`` called,
  for the bars that traded, and the engine's own bar -> decision histogram for every bar.

Targets (ISSUE 4): decision p99 under 1 ms; order round-trip p99 within 3x the raw round-trip.
Prints figures only; no pass/fail.

The sandbox runs in its own process by default (as Alpaca would: no GIL shared with the
client); ``--in-process`` puts it on a thread of this one instead.

    python bench/order_latency.py [--orders 200] [--reads 300] [--bars 2000] [--in-process]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

KEY, SECRET = "PKBENCHMARK", "bench-secret"
START = datetime(2024, 3, 5, 15, 0, tzinfo=UTC)


SERVER = """
import sys
from datetime import datetime
from tapewatch.sandbox import SandboxConfig, run_sandbox
start = datetime.fromisoformat(sys.argv[1])
sys.exit(run_sandbox(SandboxConfig(start=start, bar_interval=0, rate_limit=1_000_000)))
"""


class SandboxProcess:
    """The sandbox in its own process, as Alpaca would be: no GIL shared with the client."""

    def __init__(self) -> None:
        root = str(Path(__file__).resolve().parents[1])
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVER, START.isoformat()],
            cwd=root,
            env={**os.environ, "PYTHONPATH": root},
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        banner = self.proc.stdout.readline()
        match = re.search(r"listening on (http://[0-9.]+:(\d+))", banner)
        if match is None:
            self.stop()
            raise SystemExit(f"the sandbox did not start: {banner!r}")
        self.url = match.group(1)
        self.port = int(match.group(2))
        ws = "ws" + self.url.removeprefix("http")
        self.data_stream_url, self.trade_stream_url = ws + "/v2/iex", ws + "/stream"

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class SandboxInThread:
    """The sandbox on a thread of this process (``--in-process``): shares the GIL."""

    def __init__(self) -> None:
        from tapewatch.sandbox import SandboxConfig, SandboxThread

        config = SandboxConfig(start=START, bar_interval=0, rate_limit=1_000_000)
        self.thread = SandboxThread(config).start()
        self.url = self.thread.url
        self.port = int(self.url.rsplit(":", 1)[1])
        self.data_stream_url = self.thread.data_stream_url
        self.trade_stream_url = self.thread.trade_stream_url

    def stop(self) -> None:
        self.thread.stop()


Samples = dict[str, list[float]]


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def row(
    name: str, samples: list[float], ref: list[float] | None = None, ref_name: str = "raw GET"
) -> str:
    p50, p99 = pct(samples, 50) * 1e3, pct(samples, 99) * 1e3
    text = f"{name:<44} n={len(samples):>5}  p50 {p50:8.3f} ms  p99 {p99:8.3f} ms"
    if ref:
        r50, r99 = p50 / (pct(ref, 50) * 1e3), p99 / (pct(ref, 99) * 1e3)
        text += f"   x {ref_name}: p50 {r50:5.2f}  p99 {r99:5.2f}"
    return text


class RawHttp:
    """http.client on one kept-alive connection: the floor for a round trip to the server."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        self.headers = {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}

    def _send(self, method: str, path: str, body: str | None = None) -> float:
        t0 = time.perf_counter()
        self.conn.request(method, path, body=body, headers=self.headers)
        self.conn.getresponse().read()
        return time.perf_counter() - t0

    def get_clock(self) -> float:
        return self._send("GET", "/v2/clock")

    def post_order(self, i: int) -> float:
        side = "buy" if i % 2 == 0 else "sell"
        body = {"symbol": "SPY", "qty": 1.0, "side": side, "type": "market"}
        body |= {"time_in_force": "day", "client_order_id": f"raw-{i}"}
        return self._send("POST", "/v2/orders", json.dumps(body))

    def close(self) -> None:
        self.conn.close()


class DirectSdk:
    """The SDK alone in the calling thread: what requests + pydantic cost, without the adapter."""

    def __init__(self, url: str) -> None:
        from alpaca.trading.client import TradingClient

        self.client = TradingClient(KEY, SECRET, url_override=url)

    def get_clock(self) -> float:
        t0 = time.perf_counter()
        self.client.get_clock()
        return time.perf_counter() - t0

    def post_order(self, i: int) -> float:
        from alpaca.trading.enums import OrderSide, TimeInForce
        from alpaca.trading.requests import MarketOrderRequest

        side = OrderSide.BUY if i % 2 == 0 else OrderSide.SELL
        body = MarketOrderRequest(
            symbol="SPY",
            qty=1,
            side=side,
            time_in_force=TimeInForce.DAY,
            client_order_id=f"sdk-{i}",
        )
        t0 = time.perf_counter()
        self.client.submit_order(body)
        return time.perf_counter() - t0


async def round_robin_reads(broker: Any, raw: RawHttp, sdk: DirectSdk, n: int) -> Samples:
    """GET /v2/clock three ways, interleaved so each sees the same server state."""
    out: Samples = {"raw GET": [], "sdk GET": [], "adapter GET": []}
    for _ in range(n):
        out["raw GET"].append(await asyncio.to_thread(raw.get_clock))
        out["sdk GET"].append(await asyncio.to_thread(sdk.get_clock))
        t0 = time.perf_counter()
        await broker.get_clock()
        out["adapter GET"].append(time.perf_counter() - t0)
    return out


async def round_robin_orders(broker: Any, raw: RawHttp, sdk: DirectSdk, n: int) -> Samples:
    """Orders three ways, interleaved (the sandbox slows a little as orders pile up)."""
    from tapewatch.engine.model.events import Event, OrderFilled
    from tapewatch.engine.model.types import Intent, OrderRequest, Side

    filled: dict[str, float] = {}
    waiters: dict[str, asyncio.Future[None]] = {}

    def listener(event: Event) -> None:
        if isinstance(event, OrderFilled):
            cid = event.fill.client_order_id
            filled[cid] = time.perf_counter()
            future = waiters.get(cid)
            if future is not None and not future.done():
                future.set_result(None)

    broker.set_listener(listener)
    loop = asyncio.get_running_loop()
    out: Samples = {"raw POST": [], "sdk POST": [], "ack": [], "fill": []}
    for i in range(n):
        out["raw POST"].append(await asyncio.to_thread(raw.post_order, i))
        out["sdk POST"].append(await asyncio.to_thread(sdk.post_order, i))
        side = Side.BUY if i % 2 == 0 else Side.SELL
        cid = f"bench-{i}"
        waiters[cid] = loop.create_future()
        request = OrderRequest(cid, "SPY", side, 1.0, Intent.ENTRY)
        t0 = time.perf_counter()
        await broker.submit_order(request)
        out["ack"].append(time.perf_counter() - t0)
        await asyncio.wait_for(waiters[cid], 10)
        out["fill"].append(filled[cid] - t0)
    return out


async def decisions(broker: Any, n_bars: int) -> tuple[list[float], Any]:
    from tapewatch.engine.core.clock import SimClock
    from tapewatch.engine.core.engine import Engine
    from tapewatch.engine.model.types import Bar, Mode
    from tapewatch.engine.settings.config import EngineConfig, StrategyConfig

    config = EngineConfig(
        strategy=StrategyConfig(
            symbol="SPY", rsi_period=2, sma_period=3, rsi_oversold=90, rsi_overbought=95
        )
    ).validate()
    step = timedelta(minutes=5)
    clock = SimClock(START)
    engine = Engine(config, clock=clock, broker=broker, mode=Mode.PAPER)
    await engine.start()
    submitted: list[float] = []
    original = broker.submit_order

    async def timed_submit(request: Any) -> Any:
        submitted.append(time.perf_counter())
        return await original(request)

    broker.submit_order = timed_submit
    rng = random.Random(5)
    price = 440.0
    out = []
    ts = START
    for _ in range(n_bars):
        price = max(1.0, price + rng.gauss(0, 0.6))
        bar = Bar("SPY", ts, price, price + 0.2, price - 0.2, price, 1000.0)
        ts += step
        clock.advance_to(ts)
        before = len(submitted)
        t0 = time.perf_counter()
        await engine.on_bar(bar)
        if len(submitted) > before:
            out.append(submitted[before] - t0)
        await asyncio.sleep(0)  # let the fill from trade_updates in, as the live loop would
    broker.submit_order = original
    await engine.stop()
    return out, engine.latency.summary("bar_to_decision")


async def main(args: argparse.Namespace) -> None:
    from tapewatch.engine.adapters.alpaca.broker import AlpacaBroker
    from tapewatch.engine.adapters.alpaca.endpoints import Endpoints
    from tapewatch.engine.model.types import Mode

    sandbox: SandboxProcess | SandboxInThread = (
        SandboxInThread() if args.in_process else SandboxProcess()
    )
    try:
        endpoints = Endpoints(
            Mode.PAPER, sandbox.url, sandbox.url, sandbox.data_stream_url, sandbox.trade_stream_url
        )
        broker = AlpacaBroker(KEY, SECRET, endpoints, timeout=5.0)
        await broker.start()
        while not broker.websocket_connected():
            await asyncio.sleep(0.01)
        raw, sdk = RawHttp(sandbox.port), DirectSdk(sandbox.url)
        await round_robin_reads(broker, raw, sdk, 20)  # warm threads, sessions, the server
        reads = await round_robin_reads(broker, raw, sdk, args.reads)
        writes = await round_robin_orders(broker, raw, sdk, args.orders)
        decided, summary = await decisions(broker, args.bars)
        raw.close()
        await broker.close()
    finally:
        sandbox.stop()
    where = "a thread of this process" if args.in_process else "its own process"
    print(f"order latency on loopback, python {sys.version.split()[0]}, sandbox in {where}")
    print(row("raw HTTP GET /v2/clock (http.client)", reads["raw GET"]))
    print(row("SDK get_clock, direct (no adapter)", reads["sdk GET"], reads["raw GET"]))
    print(row("SDK get_clock via the adapter", reads["adapter GET"], reads["raw GET"]))
    print(row("raw HTTP POST /v2/orders (http.client)", writes["raw POST"], reads["raw GET"]))
    print(
        row(
            "SDK submit_order, direct (no adapter)",
            writes["sdk POST"],
            writes["raw POST"],
            "raw POST",
        )
    )
    print(row("order submit -> acknowledged", writes["ack"], writes["raw POST"], "raw POST"))
    print(
        row(
            "order submit -> filled (trade_updates)", writes["fill"], writes["raw POST"], "raw POST"
        )
    )
    print(row("order submit -> acknowledged", writes["ack"], reads["raw GET"]))
    print(row("order submit -> filled (trade_updates)", writes["fill"], reads["raw GET"]))
    if decided:
        print(row("decision: bar in -> submit_order called", decided))
    print(
        f"{'engine bar_to_decision histogram':<44} n={summary.count:>5}  "
        f"p50 {summary.p50 * 1e3:8.3f} ms  p99 {summary.p99 * 1e3:8.3f} ms"
    )
    print("targets: decision p99 < 1 ms; order round-trip p99 <= 3x raw p99")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--reads", type=int, default=300)
    parser.add_argument("--bars", type=int, default=2000)
    parser.add_argument(
        "--in-process", action="store_true", help="run the sandbox on a thread of this process"
    )
    asyncio.run(main(parser.parse_args()))
