"""The attach path's costs: the console over the engine's socket against the embedded console.

Both consoles are the real ``TapewatchApp`` in Textual's headless driver, over the offline demo
at ``--speed`` (a 5-minute bar every 300/speed s). Rounds are interleaved, embedded then
attached (A B A B …), each on a fresh demo with the same seed:

- first frame: the app started → its first snapshot drawn (embedded: the session given to the
  app; attached: connect, hello, the first snapshot over the socket, drawn).
- per-event latency: a bar closed in the engine (its bus, same process) → the console's panes
  drew a snapshot holding that bar (polled every 1 ms on the app's loop: the same error for
  both), p50/p99 over the bars of ``--seconds``.

The attached engine is served by ``run_headless(serve_at=...)`` in this process, so both
sides share one event loop and one GIL: the figure is the socket path's own cost (framing,
JSON, the server's 0.1 s snapshot push), not a second core's help. Machines here are shared
and noisy: read the ratio and the spread of the rounds.

    python bench/attach.py [--repeat 3] [--seconds 5] [--speed 600]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if sys.path and Path(sys.path[0] or ".").resolve() == HERE:
    sys.path[0] = str(ROOT)  # this folder's name would shadow the ``console`` package

from tapewatch.console.app import TapewatchApp  # noqa: E402
from tapewatch.console.attach import Attachment  # noqa: E402
from tapewatch.engine.api.socket_client import SocketHandle  # noqa: E402
from tapewatch.engine.api.types import BarClosed, Event, Mode  # noqa: E402
from tapewatch.engine.api.wire import socket_path  # noqa: E402
from tapewatch.engine.root.demo import DemoOptions, DemoSession, build_demo  # noqa: E402
from tapewatch.engine.root.headless import run_headless  # noqa: E402
from tapewatch.engine.settings.config import EngineConfig  # noqa: E402

SIZE = (120, 36)


def _demo(speed: float, seed: int) -> DemoSession:
    config = replace(EngineConfig()).validate()
    return build_demo(config, DemoOptions(seed=seed, speed=speed), data_dir=None)


def _stamp(session: DemoSession, closed: dict[datetime, float]) -> None:
    def sink(event: Event) -> None:
        if isinstance(event, BarClosed):
            closed[event.bar.ts] = time.perf_counter()

    session.engine.bus.add_sink(sink)


async def _follow(
    app: TapewatchApp, closed: dict[datetime, float], seconds: float, started: float
) -> tuple[float, list[float]]:
    """(first frame since ``started``, bar-close → drawn latencies) for a starting app."""
    first = -1.0
    latencies: list[float] = []
    seen: set[datetime] = set()
    end = started + seconds
    while time.perf_counter() < end:
        snap = app._snapshot
        if snap is not None:
            if first < 0:
                first = time.perf_counter() - started
            if snap.bars:
                ts = snap.bars[-1].ts
                at = closed.get(ts)
                if at is not None and ts not in seen:
                    seen.add(ts)
                    latencies.append(time.perf_counter() - at)
        await asyncio.sleep(0.001)
    return first, latencies


async def embedded_round(speed: float, seed: int, seconds: float) -> tuple[float, list[float]]:
    session = _demo(speed, seed)
    closed: dict[datetime, float] = {}
    _stamp(session, closed)
    started = time.perf_counter()
    app = TapewatchApp(session=session, measured=False)  # type: ignore[arg-type]
    async with app.run_test(size=SIZE) as pilot:
        figures = await _follow(app, closed, seconds, started)
        await pilot.press("q")  # the demo has no exposure worth a dialog at most times
        await pilot.pause(0.2)
        if app.is_running:
            app.exit(0)
    return figures


async def attached_round(speed: float, seed: int, seconds: float) -> tuple[float, list[float]]:
    session = _demo(speed, seed)
    closed: dict[datetime, float] = {}
    _stamp(session, closed)
    with tempfile.TemporaryDirectory(prefix="tw-attach-") as folder:
        path = socket_path(Path(folder), Mode.DEMO)
        up: list[Any] = []
        run = asyncio.create_task(
            run_headless(
                session.engine, session.feed, out=io.StringIO(), serve_at=path, on_serving=up.append
            )
        )
        while not up:
            await asyncio.sleep(0.01)

        async def connect(take_control: bool) -> SocketHandle:
            return await SocketHandle.connect(path, take_control=take_control)

        started = time.perf_counter()
        app = TapewatchApp(attach=Attachment(connect), measured=False)
        async with app.run_test(size=SIZE) as pilot:
            figures = await _follow(app, closed, seconds, started)
            await pilot.press("q")
            await pilot.pause(0.2)
        await session.engine.stop("bench over")
        await asyncio.wait_for(run, 10)
    return figures


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:7.1f} ms" if values else "      —"


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--speed", type=float, default=600.0)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    rounds: dict[str, list[tuple[float, list[float]]]] = {"embedded": [], "attached": []}
    kinds: dict[str, Callable[..., Any]] = {
        "embedded": embedded_round,
        "attached": attached_round,
    }
    for _ in range(args.repeat):
        for name, run in kinds.items():  # interleaved: A B A B …
            rounds[name].append(asyncio.run(run(args.speed, args.seed, args.seconds)))
    print(f"attach bench: demo ×{args.speed:g}, {args.seconds:g} s a round, {args.repeat} rounds")
    print(f"{'':12}{'first frame':>14}{'bar→drawn p50':>16}{'p99':>10}{'bars':>7}")
    for name, runs in rounds.items():
        firsts = [f for f, _ in runs if f >= 0]
        every = [x for _, lat in runs for x in lat]
        print(
            f"{name:12}{_ms(firsts):>14}{_ms(every):>16}"
            f"{_p(every, 0.99) * 1000:8.1f} ms{len(every):>7}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
