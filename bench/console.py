"""The console's costs, each beside a bare Textual app (one Static) measured in the same run.

- first frame: process start → the first painted frame, for the real ``tapewatch demo`` in a
  pseudo-terminal (120×36), found by watching the output for the first pane title; also when
  the session is on screen (the DEMO badge). The bare app is timed the same way.
- resident memory (VmRSS from /proc) after 10 s of the idle demo, and of the bare app.
- CPU (all threads, as a share of one core) and event-loop stalls (lateness of a 10 ms sleep:
  p99, max) while the demo replays at 600×, and while 1,000 engine events a second also arrive
  (``engine.bus.publish`` of a Notice plus a state change, from a task in the app's loop), and
  the engine's bar-close→decision latency p99 meanwhile. Each runs the real ``tapewatch demo
  --speed 600`` code path in a pseudo-terminal with a measuring auto-pilot attached; the bare
  app gets the same event stream and updates its Static per event.

Machines here are shared and noisy: read the ratios. The targets are printed, not judged.

    python bench/console.py [--quick] [--repeat 3] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import os
import platform
import pty
import select
import signal
import statistics
import struct
import sys
import tempfile
import termios
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# Run as a script, this file's folder comes first on sys.path and its name would shadow the
# ``console`` package: put the repository root there instead.
if sys.path and Path(sys.path[0] or ".").resolve() == HERE:
    sys.path[0] = str(ROOT)

SIZE = (120, 36)  # columns, rows
SPEED = 600.0
RATE = 1000  # injected events per second
PROBE = 0.010  # the stall probe's sleep
TAPEWATCH_FRAME = b" Bars "  # a pane title: the layout is painted
TAPEWATCH_READY = b"DEMO"  # the header badge: the session is on screen
BARE_TEXT = "bare textual app ready"
BARE_APP = f"""
from textual.app import App
from textual.widgets import Static

class Bare(App):
    def compose(self):
        yield Static({BARE_TEXT!r})

Bare().run()
"""
TARGETS = {
    "first_frame": "< 0.6 s (bare Textual ~0.4 s)",
    "rss": "demo < 120 MB; paper session < 150 MB (reference bot idled at 192 MB)",
    "cpu": "≤ 50% of one core at 1,000 events/s",
    "stalls": "p99 ≤ 50 ms, max ≤ 100 ms at 1,000 events/s",
    "decision": "p99 < 1 ms during the load",
}


# ---------------------------------------------------------------------------- pseudo-terminal
@dataclass
class PtyRun:
    """A child on a pseudo-terminal; its output is drained and watched for markers."""

    pid: int
    fd: int
    started: float
    seen: dict[bytes, float]
    tail: bytes = b""

    @classmethod
    def spawn(cls, argv: Sequence[str], env: dict[str, str]) -> PtyRun:
        started = time.perf_counter()
        pid, fd = pty.fork()
        if pid == 0:  # the child: become the program
            try:
                os.execvpe(argv[0], list(argv), env)
            finally:
                os._exit(127)
        cols, rows = SIZE
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        return cls(pid, fd, started, {})

    def pump(self, seconds: float, markers: Sequence[bytes] = (), until_all: bool = False) -> bool:
        """Read output for ``seconds`` (or until every marker was seen); False once it exited."""
        end = time.perf_counter() + seconds
        while True:
            left = end - time.perf_counter()
            if left <= 0:
                return True
            if until_all and all(m in self.seen for m in markers):
                return True
            ready, _, _ = select.select([self.fd], [], [], min(left, 0.05))
            if not ready:
                continue
            try:
                data = os.read(self.fd, 1 << 16)
            except OSError:  # the child closed the terminal
                return False
            if not data:
                return False
            now = time.perf_counter()
            window = self.tail + data
            for marker in markers:
                if marker not in self.seen and marker in window:
                    self.seen[marker] = now - self.started
            self.tail = window[-64:]

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
        raise RuntimeError("no VmRSS")

    def finish(self, grace: float = 10.0) -> None:
        """Wait for a clean exit (draining output); SIGTERM, then SIGKILL, if it lingers."""
        for sig in (None, signal.SIGTERM, signal.SIGKILL):
            if sig is not None:
                try:
                    os.kill(self.pid, sig)
                except ProcessLookupError:
                    break
            end = time.perf_counter() + grace
            while time.perf_counter() < end:
                done, _ = os.waitpid(self.pid, os.WNOHANG)
                if done:
                    os.close(self.fd)
                    return
                self.pump(0.05)
        os.waitpid(self.pid, 0)
        os.close(self.fd)


def child_env(home: Path) -> dict[str, str]:
    """A clean terminal and private config/data folders: nothing of the user's leaks in."""
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TEXTUAL_THEME")}
    env.update(
        TERM="xterm-256color",
        COLORTERM="truecolor",
        COLUMNS=str(SIZE[0]),
        LINES=str(SIZE[1]),
        TAPEWATCH_DATA_DIR=str(home / "data"),
        XDG_CONFIG_HOME=str(home / "config"),
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    )
    return env


def tapewatch_argv(*args: str) -> list[str]:
    script = Path(sys.executable).with_name("tapewatch")
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-m", "tapewatch.console.cli", *args]


# ---------------------------------------------------------------------------- first frame, RSS
@dataclass
class StartFigures:
    first_frame: list[float]
    ready: list[float]
    rss_mb: float | None = None


def measure_start(
    argv: list[str],
    frame: bytes,
    ready: bytes | None,
    repeat: int,
    idle: float,
    home: Path,
    extra_env: dict[str, str] | None = None,
) -> StartFigures:
    """``repeat`` launches for the first frame; the first one also idles for the RSS reading."""
    figures = StartFigures([], [])
    markers = [frame] + ([ready] if ready else [])
    env = {**child_env(home), **(extra_env or {})}
    for i in range(repeat):
        run = PtyRun.spawn(argv, env)
        try:
            run.pump(30.0, markers, until_all=True)
            if frame not in run.seen:
                raise RuntimeError(f"{argv[0]}: no frame within 30 s: {run.tail!r}")
            figures.first_frame.append(run.seen[frame])
            if ready is not None and ready in run.seen:
                figures.ready.append(run.seen[ready])
            if i == 0:
                run.pump(max(0.0, idle - (time.perf_counter() - run.started)))
                figures.rss_mb = run.rss_mb()
        finally:
            os.kill(run.pid, signal.SIGTERM)
            run.finish(grace=5.0)
    return figures


# ---------------------------------------------------------------------------- load (child side)
def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))] if ordered else 0.0


async def _probe(lags: list[float]) -> None:
    """Event-loop stalls: how late a short sleep wakes up."""
    while True:
        t = time.perf_counter()
        await asyncio.sleep(PROBE)
        lags.append(max(0.0, time.perf_counter() - t - PROBE))


async def _inject(publish: Callable[[int], None], counter: list[int]) -> None:
    """``RATE`` events a second on average, caught up in small batches when the loop is late."""
    start = time.perf_counter()
    sent = 0
    while True:
        due = int((time.perf_counter() - start) * RATE)
        while sent < due:
            publish(sent)
            sent += 1
        counter[0] = sent
        await asyncio.sleep(0.001)


async def _measure(
    seconds: float, publish: Callable[[int], None] | None, out: Path, extra: Callable[[], dict]
) -> None:
    lags: list[float] = []
    counter = [0]
    probe = asyncio.create_task(_probe(lags))
    injector = asyncio.create_task(_inject(publish, counter)) if publish else None
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    cpu1, wall1 = time.process_time(), time.perf_counter()
    for task in (probe, injector):
        if task is not None:
            task.cancel()
    wall = wall1 - wall0
    result = {
        "cpu": (cpu1 - cpu0) / wall,
        "stall_p99": _percentile(lags, 0.99),
        "stall_max": max(lags, default=0.0),
        "events_per_s": counter[0] / wall,
        "seconds": wall,
        **extra(),
    }
    out.write_text(json.dumps(result))


def child_tapewatch(seconds: float, inject: bool, out: Path) -> int:
    """``tapewatch demo --speed 600`` exactly as a user starts it, plus a measuring auto-pilot."""
    from textual.pilot import Pilot

    from tapewatch.console.app import TapewatchApp
    from tapewatch.console.cli import main
    from tapewatch.engine.model.events import Notice

    async def pilot_run(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, TapewatchApp)
        while app._session is None or not app._session.engine.state.running:  # built in a thread
            await asyncio.sleep(0.05)
        engine = app._session.engine
        await asyncio.sleep(2.0)  # start-up over, the first bars through, gc frozen
        before = engine.state.version

        def publish(n: int) -> None:
            # The bus itself, as before: the load is rendering, not 1,000 journal commits a second
            # (Engine.publish journals a Notice; a real session sees a few an hour).
            engine.bus.publish(Notice(ts=engine.clock.now(), level="info", message=f"tick {n}"))
            engine.state.touch()  # each event moves the state: the worst case for redraws

        def extra() -> dict:
            s = engine.latency.summary("bar_to_decision")
            return {
                "decision_p99": s.p99,
                "decision_max": s.max,
                "decisions": s.count,
                "bars": len(engine.state.bars),
                "versions": engine.state.version - before,
            }

        await _measure(seconds, publish if inject else None, out, extra)
        app.exit()

    run = TapewatchApp.run

    def run_with_pilot(self: TapewatchApp, **kwargs: Any) -> Any:
        return run(self, auto_pilot=pilot_run, **kwargs)

    TapewatchApp.run = run_with_pilot  # type: ignore[method-assign,assignment]
    return main(["demo", "--speed", f"{SPEED:g}"])


def child_bare(seconds: float, inject: bool, out: Path) -> int:
    """The bare app; under load it takes the same event stream and updates its Static per event."""
    from textual.app import App, ComposeResult
    from textual.pilot import Pilot
    from textual.widgets import Static

    from tapewatch.engine.core.bus import EventBus
    from tapewatch.engine.model.events import Notice

    STAMP = datetime(2026, 1, 2, tzinfo=UTC)

    class Bare(App[None]):
        def compose(self) -> ComposeResult:
            yield Static(BARE_TEXT)

    bus = EventBus()

    async def pilot_run(pilot: Pilot[Any]) -> None:
        await asyncio.sleep(2.0)
        static = pilot.app.query_one(Static)
        subscription = bus.subscribe()

        async def consume() -> None:
            count = 0
            async for _event in subscription:
                count += 1
                static.update(f"{BARE_TEXT}: {count} events")

        consumer = asyncio.create_task(consume())

        def publish(n: int) -> None:
            bus.publish(Notice(ts=STAMP, level="info", message=f"tick {n}"))

        await _measure(seconds, publish if inject else None, out, dict)
        consumer.cancel()
        pilot.app.exit()

    Bare().run(auto_pilot=pilot_run)
    return 0


# ---------------------------------------------------------------------------- load (parent side)
def measure_load(kind: str, inject: bool, seconds: float, home: Path) -> dict[str, float]:
    out = home / f"load-{kind}-{int(inject)}.json"
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", kind]
    argv += ["--seconds", str(seconds), "--out", str(out)] + (["--inject"] if inject else [])
    run = PtyRun.spawn(argv, child_env(home))
    try:
        alive = True
        end = time.perf_counter() + seconds + 60.0
        while alive and not out.exists() and time.perf_counter() < end:
            alive = run.pump(0.2)
    finally:
        run.finish(grace=10.0)
    if not out.exists():
        raise RuntimeError(f"the {kind} load run wrote no result; last output {run.tail!r}")
    result: dict[str, float] = json.loads(out.read_text())
    return result


# ---------------------------------------------------------------------------- report
def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}×" if a is not None and b else "—"


def _row(name: str, ours: str, bare: str = "—", ratio: str = "—", target: str = "") -> None:
    print(f"{name:<34} {ours:>12} {bare:>12} {ratio:>8}   {target}".rstrip())


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _load_rows(ours: dict[str, float], ref: dict[str, float], targets: bool) -> None:
    _row(
        "  CPU (one core = 100%)",
        f"{ours['cpu'] * 100:.0f}%",
        f"{ref['cpu'] * 100:.0f}%",
        _ratio(ours["cpu"], ref["cpu"]),
        TARGETS["cpu"] if targets else "",
    )
    _row(
        "  event-loop stall p99",
        _ms(ours["stall_p99"]),
        _ms(ref["stall_p99"]),
        _ratio(ours["stall_p99"], ref["stall_p99"]),
        TARGETS["stalls"] if targets else "",
    )
    _row(
        "  event-loop stall max",
        _ms(ours["stall_max"]),
        _ms(ref["stall_max"]),
        _ratio(ours["stall_max"], ref["stall_max"]),
    )
    _row(
        f"  bar→decision p99 (n={int(ours['decisions'])})",
        _ms(ours["decision_p99"]),
        target=TARGETS["decision"] if targets else "",
    )


def hide_pyarrow(home: Path) -> dict[str, str]:
    """Extra environment that makes ``import pyarrow`` fail, as in an install without extras.

    pyarrow is only in the optional ``parquet``/``test`` extras, but pandas 3 imports it
    whenever it is installed (+30-50 MB), so the dev environment over-states a user's memory.
    """
    folder = home / "no-pyarrow" / "pyarrow"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "__init__.py").write_text('raise ImportError("hidden by bench/console.py")\n')
    path = os.pathsep.join([str(folder.parent), str(ROOT), os.environ.get("PYTHONPATH", "")])
    return {"PYTHONPATH": path.rstrip(os.pathsep)}


def measure_paper(idle: float, home: Path, extra: dict[str, str] | None = None) -> StartFigures:
    """Plain ``tapewatch`` on a paper account: the local sandbox on 127.0.0.1 stands in for
    Alpaca (the real SDK, the real streams), stopped when the measurement ends."""
    from tapewatch.sandbox import SandboxConfig, SandboxThread

    with SandboxThread(SandboxConfig(bar_interval=1.0)) as sandbox:
        env = {
            "TAPEWATCH_ALPACA_TRADING_URL": sandbox.trading_url,
            "TAPEWATCH_ALPACA_DATA_URL": sandbox.data_url,
            "TAPEWATCH_ALPACA_STREAM_URL": sandbox.data_stream_url,
            "TAPEWATCH_ALPACA_TRADE_STREAM_URL": sandbox.trade_stream_url,
            "APCA_API_KEY_ID": "PK" + "BENCHPAPER0000",  # a paper-shaped key for the sandbox
            "APCA_API_SECRET_KEY": "bench-secret",
            **(extra or {}),
        }
        return measure_start(
            tapewatch_argv(), TAPEWATCH_FRAME, b"PAPER", 1, idle, home, extra_env=env
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one launch, 3 s idle and windows")
    parser.add_argument("--repeat", type=int, default=3, help="launches for the first frame")
    parser.add_argument("--seconds", type=float, default=10.0, help="each load window")
    parser.add_argument("--idle", type=float, default=10.0, help="idle seconds before the RSS")
    parser.add_argument("--child", choices=("tapewatch", "bare"), help=argparse.SUPPRESS)
    parser.add_argument("--inject", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child = child_tapewatch if args.child == "tapewatch" else child_bare
        return child(args.seconds, args.inject, args.out)
    if args.quick:
        args.repeat, args.seconds, args.idle = 1, 3.0, 3.0

    import textual

    print(
        f"tapewatch console benchmark · Python {platform.python_version()} · textual "
        f"{textual.__version__} · {os.cpu_count()} CPUs · pty {SIZE[0]}×{SIZE[1]}"
        f"{' · --quick' if args.quick else ''}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="tapewatch-bench-") as tmp:
        home = Path(tmp)
        demo = tapewatch_argv("demo")
        ours = measure_start(demo, TAPEWATCH_FRAME, TAPEWATCH_READY, args.repeat, args.idle, home)
        lean = measure_start(
            demo, TAPEWATCH_FRAME, None, 1, args.idle, home, extra_env=hide_pyarrow(home)
        )
        paper = measure_paper(args.idle, home)
        paper_lean = measure_paper(args.idle, home, hide_pyarrow(home))
        bare_app = [sys.executable, "-c", BARE_APP]
        bare = measure_start(bare_app, BARE_TEXT.encode(), None, args.repeat, args.idle, home)
        print("start-up measured; the four load runs next", flush=True)
        replay = measure_load("tapewatch", False, args.seconds, home)
        bare_idle = measure_load("bare", False, args.seconds, home)
        loaded = measure_load("tapewatch", True, args.seconds, home)
        bare_loaded = measure_load("bare", True, args.seconds, home)

    first, first_bare = statistics.median(ours.first_frame), statistics.median(bare.first_frame)
    print()
    _row("", "tapewatch", "bare Textual", "ratio", "target")
    _row(
        f"first frame (median of {args.repeat})",
        f"{first:.3f} s",
        f"{first_bare:.3f} s",
        _ratio(first, first_bare),
        TARGETS["first_frame"],
    )
    if ours.ready:
        _row("  session on screen (DEMO badge)", f"{statistics.median(ours.ready):.3f} s")
    _row(
        f"demo RSS after {args.idle:g} s idle",
        f"{ours.rss_mb:.0f} MB",
        f"{bare.rss_mb:.0f} MB",
        _ratio(ours.rss_mb, bare.rss_mb),
        TARGETS["rss"],
    )
    _row(
        "  same, pyarrow not installed",
        f"{lean.rss_mb:.0f} MB",
        f"{bare.rss_mb:.0f} MB",
        _ratio(lean.rss_mb, bare.rss_mb),
    )
    _row(
        f"paper session RSS after {args.idle:g} s idle",
        f"{paper.rss_mb:.0f} MB" if paper.rss_mb else "—",
        f"{bare.rss_mb:.0f} MB",
        _ratio(paper.rss_mb, bare.rss_mb),
        "< 150 MB (alpaca-py + pandas loaded)",
    )
    _row(
        "  same, pyarrow not installed",
        f"{paper_lean.rss_mb:.0f} MB" if paper_lean.rss_mb else "—",
        f"{bare.rss_mb:.0f} MB",
        _ratio(paper_lean.rss_mb, bare.rss_mb),
        "(a plain install: pyarrow comes only with [parquet]/[test])",
    )
    print(f"\nreplay at {SPEED:g}× for {replay['seconds']:.0f} s (bare: idle, same probe)")
    _load_rows(replay, bare_idle, targets=False)
    print(
        f"replay at {SPEED:g}× + {loaded['events_per_s']:,.0f} events/s "
        f"(bare: {bare_loaded['events_per_s']:,.0f} events/s, one Static update per event)"
    )
    _load_rows(loaded, bare_loaded, targets=True)
    print(
        "\nstall = how late a 10 ms asyncio sleep wakes; CPU counts every thread of the process;"
        "\nbar→decision covers every bar of the run (from the engine's own latency recorder)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
