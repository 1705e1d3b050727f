"""The console's costs, each beside a bare Textual app (one Static) measured in the same run.

Runs are interleaved, tapewatch then bare Textual (A B A B …), ``--repeat`` rounds, and each
figure is printed as the median of its rounds beside bare Textual's, with every round's value.

- first frame: process start → the first painted frame, for the real ``tapewatch demo`` in a
  pseudo-terminal (120×36), found by watching the output for the first pane title; also when
  the session is on screen (the DEMO badge). The bare app is timed the same way.
- idle CPU (all threads, as a share of one core) with nothing arriving: ``tapewatch demo
  --speed 1`` between two bars (the next one is minutes away) and the bare app, with no probe
  running, so the figure is the console's own timers and redraws.
- at the demo's maximum speed (×10000): event-loop stalls seen by an independent probe (a task
  sleeping 10 ms in a loop on the app's loop: how late it wakes, p50/p99/max), and key latency
  (the Pilot presses ``p``; the time until the panes show the paused state, i.e. the command
  went through the engine and the screen drew it; the bare app's ``p`` updates its Static),
  CPU, and the bars per second delivered against the speed shown.
- the same with 1,000 engine events a second also arriving (``engine.bus.publish`` of a Notice
  plus a state change, from a task in the app's loop), and the engine's bar-close→decision
  latency p99 meanwhile; the bare app gets the same event stream, one Static update per event.
- resident memory (VmRSS from /proc) after 10 s of the idle demo (and a paper session on the
  local sandbox), from the first round.

Each tapewatch run is the real ``tapewatch demo`` code path in a pseudo-terminal with a
measuring auto-pilot attached. Machines here are shared and noisy: read the ratios and the
spread of the rounds. The targets are printed, not judged.

    python bench/console.py [--quick] [--repeat 3] [--seconds 10]

The attached console (``tapewatch attach`` over the engine's socket) is measured against the
embedded one, interleaved in the same run, by ``bench/attach.py``: first frame and bar → drawn.
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
from typing import Any, ClassVar

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# Run as a script, this file's folder comes first on sys.path and its name would shadow the
# ``console`` package: put the repository root there instead.
if sys.path and Path(sys.path[0] or ".").resolve() == HERE:
    sys.path[0] = str(ROOT)

SIZE = (120, 36)  # columns, rows
SPEED = 10000.0  # the demo's maximum
IDLE_SPEED = 1.0  # one 5-minute bar every 300 s: nothing arrives during an idle window
RATE = 1000  # injected events per second
PROBE = 0.010  # the stall probe's sleep
KEY_EVERY = 0.5  # seconds between two measured key presses
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
    "first_frame": "≤ 0.6 s (bare Textual ~0.4 s)",
    "idle_cpu": "< 1% of a core (bare Textual ~0.2%)",
    "max_stalls": "p99 ≤ 50 ms at ×10000",
    "key": "≤ 100 ms at ×10000",
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
MODES = ("idle", "max", "inject")  # nothing arriving; the demo's max speed; max + 1,000 events/s


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


async def _keys(pilot: Any, answered: Callable[[int], bool], latencies: list[float]) -> None:
    """Press ``p`` through the Pilot every ``KEY_EVERY`` s; time until ``answered(n)`` holds
    for the n-th press (polled each millisecond, so the figure is at most 1 ms late)."""
    n = 0
    while True:
        await asyncio.sleep(KEY_EVERY)
        n += 1
        started = time.perf_counter()
        press = asyncio.create_task(pilot.press("p"))
        while not answered(n):
            await asyncio.sleep(0.001)
        latencies.append(time.perf_counter() - started)
        await press


async def _measure(
    seconds: float,
    mode: str,
    out: Path,
    *,
    pilot: Any,
    publish: Callable[[int], None],
    answered: Callable[[int], bool],
    extra: Callable[[], dict[str, Any]],
) -> None:
    lags: list[float] = []
    keys: list[float] = []
    counter = [0]
    tasks = []
    if mode != "idle":  # idle: nothing of ours on the loop, only the console's own timers
        tasks.append(asyncio.create_task(_probe(lags)))
        tasks.append(asyncio.create_task(_keys(pilot, answered, keys)))
    if mode == "inject":
        tasks.append(asyncio.create_task(_inject(publish, counter)))
    before = extra()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    cpu1, wall1 = time.process_time(), time.perf_counter()
    after = extra()
    for task in tasks:
        task.cancel()
    wall = wall1 - wall0
    result = {
        "cpu": (cpu1 - cpu0) / wall,
        "stall_p50": _percentile(lags, 0.5),
        "stall_p99": _percentile(lags, 0.99),
        "stall_max": max(lags, default=0.0),
        "key_p50": _percentile(keys, 0.5) if keys else None,  # None: no press answered
        "key_max": max(keys) if keys else None,
        "keys": len(keys),
        "events_per_s": counter[0] / wall,
        "seconds": wall,
        **after,
        "bars_per_s": (after.get("bars_seen", 0) - before.get("bars_seen", 0)) / wall,
    }
    out.write_text(json.dumps(result))


def child_tapewatch(seconds: float, mode: str, out: Path) -> int:
    """``tapewatch demo`` exactly as a user starts it, plus a measuring auto-pilot."""
    from textual.pilot import Pilot

    from tapewatch.console.app import TapewatchApp
    from tapewatch.console.cli import main
    from tapewatch.engine.model.events import BarClosed, Notice

    async def pilot_run(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, TapewatchApp)
        while app._session is None or not app._session.engine.state.running:  # built in a thread
            await asyncio.sleep(0.05)
        engine = app._session.engine
        await asyncio.sleep(2.0)  # start-up over, the first bars through, gc frozen
        before = engine.state.version
        bars = [0]
        subscription = engine.subscribe()

        async def count_bars() -> None:
            async for event in subscription:
                if isinstance(event, BarClosed):
                    bars[0] += 1

        counting = asyncio.create_task(count_bars())
        paused_at_start = engine.state.paused

        def publish(n: int) -> None:
            # The bus itself, as before: the load is rendering, not 1,000 journal commits a second
            # (Engine.publish journals a Notice; a real session sees a few an hour).
            engine.bus.publish(Notice(ts=engine.clock.now(), level="info", message=f"tick {n}"))
            engine.state.touch()  # each event moves the state: the worst case for redraws

        def answered(n: int) -> bool:
            """The n-th ``p`` toggled pause, and the panes drew a snapshot showing it."""
            want = paused_at_start != (n % 2 == 1)
            drawn = app._snapshot  # the snapshot the panes drew last
            return drawn is not None and drawn.paused == want

        def extra() -> dict[str, Any]:
            s = engine.latency.summary("bar_to_decision")
            return {
                "decision_p99": s.p99,
                "decision_max": s.max,
                "decisions": s.count,
                "bars_seen": bars[0],
                "versions": engine.state.version - before,
            }

        await _measure(
            seconds, mode, out, pilot=pilot, publish=publish, answered=answered, extra=extra
        )
        counting.cancel()
        app.exit()

    run = TapewatchApp.run

    def run_with_pilot(self: TapewatchApp, **kwargs: Any) -> Any:
        return run(self, auto_pilot=pilot_run, **kwargs)

    TapewatchApp.run = run_with_pilot  # type: ignore[method-assign,assignment]
    speed = IDLE_SPEED if mode == "idle" else SPEED
    return main(["demo", "--speed", f"{speed:g}"])


def child_bare(seconds: float, mode: str, out: Path) -> int:
    """The bare app; under load it takes the same event stream and updates its Static per event;
    its ``p`` key updates the Static too."""
    from textual.app import App, ComposeResult
    from textual.binding import BindingType
    from textual.pilot import Pilot
    from textual.widgets import Static

    from tapewatch.engine.core.bus import EventBus
    from tapewatch.engine.model.events import Notice

    STAMP = datetime(2026, 1, 2, tzinfo=UTC)

    class Bare(App[None]):
        BINDINGS: ClassVar[list[BindingType]] = [("p", "press", "Press")]
        presses = 0

        def compose(self) -> ComposeResult:
            yield Static(BARE_TEXT)

        def action_press(self) -> None:
            self.presses += 1
            self.query_one(Static).update(f"{BARE_TEXT}: {self.presses} presses")

    bus = EventBus()

    async def pilot_run(pilot: Pilot[Any]) -> None:
        await asyncio.sleep(2.0)
        app = pilot.app
        assert isinstance(app, Bare)
        static = app.query_one(Static)
        subscription = bus.subscribe()

        async def consume() -> None:
            count = 0
            async for _event in subscription:
                count += 1
                static.update(f"{BARE_TEXT}: {count} events")

        consumer = asyncio.create_task(consume())

        def publish(n: int) -> None:
            bus.publish(Notice(ts=STAMP, level="info", message=f"tick {n}"))

        await _measure(
            seconds,
            mode,
            out,
            pilot=pilot,
            publish=publish,
            answered=lambda n: app.presses >= n,
            extra=dict,
        )
        consumer.cancel()
        app.exit()

    Bare().run(auto_pilot=pilot_run)
    return 0


# ---------------------------------------------------------------------------- load (parent side)
def measure_load(kind: str, mode: str, seconds: float, home: Path) -> dict[str, float]:
    out = home / f"load-{kind}-{mode}.json"
    out.unlink(missing_ok=True)
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", kind, "--mode", mode]
    argv += ["--seconds", str(seconds), "--out", str(out)]
    run = PtyRun.spawn(argv, child_env(home))
    try:
        alive = True
        end = time.perf_counter() + seconds + 60.0
        while alive and not out.exists() and time.perf_counter() < end:
            alive = run.pump(0.2)
    finally:
        run.finish(grace=10.0)
    if not out.exists():
        raise RuntimeError(f"the {kind} {mode} run wrote no result; last output {run.tail!r}")
    result: dict[str, float] = json.loads(out.read_text())
    return result


# ---------------------------------------------------------------------------- report
def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else 0.0


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}×" if a is not None and b else "—"


def _row(name: str, ours: str, bare: str = "—", ratio: str = "—", target: str = "") -> None:
    print(f"{name:<36} {ours:>11} {bare:>11} {ratio:>7}   {target}".rstrip())


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _pct(share: float) -> str:
    return f"{share * 100:.2f}%"


def _rounds(values: Sequence[float], fmt: Callable[[float], str]) -> str:
    return "[" + ", ".join(fmt(v) for v in values) + "]"


def _figure(
    name: str,
    ours: Sequence[float],
    ref: Sequence[float] | None,
    fmt: Callable[[float], str],
    target: str = "",
) -> None:
    """One figure: medians, their ratio, the target; then every round's values under it."""
    a = _median(ours) if ours else None
    b = _median(ref) if ref else None
    _row(name, "—" if a is None else fmt(a), "—" if b is None else fmt(b), _ratio(a, b), target)
    rounds = f"tapewatch {_rounds(ours, fmt)}"
    if ref:
        rounds += f"  bare {_rounds(ref, fmt)}"
    print(f"    rounds: {rounds}")


def _column(runs: Sequence[dict[str, float]], key: str) -> list[float]:
    """``key`` of each round that has it (a round where no key press was answered has none)."""
    return [run[key] for run in runs if run.get(key) is not None]


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
    parser.add_argument("--quick", action="store_true", help="one round, 3 s idle and windows")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds (A B A B …)")
    parser.add_argument("--seconds", type=float, default=10.0, help="each measuring window")
    parser.add_argument("--idle", type=float, default=10.0, help="idle seconds before the RSS")
    parser.add_argument("--no-paper", action="store_true", help="skip the paper-session RSS")
    parser.add_argument("--child", choices=("tapewatch", "bare"), help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=MODES, default="max", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child = child_tapewatch if args.child == "tapewatch" else child_bare
        return child(args.seconds, args.mode, args.out)
    if args.quick:
        args.repeat, args.seconds, args.idle = 1, 3.0, 3.0

    import textual

    print(
        f"tapewatch console benchmark · Python {platform.python_version()} · textual "
        f"{textual.__version__} · {os.cpu_count()} CPUs · pty {SIZE[0]}×{SIZE[1]} · "
        f"{args.repeat} interleaved round(s){' · --quick' if args.quick else ''}",
        flush=True,
    )
    demo = tapewatch_argv("demo")
    bare_app = [sys.executable, "-c", BARE_APP]
    ours: list[StartFigures] = []
    bare: list[StartFigures] = []
    loads: dict[tuple[str, str], list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="tapewatch-bench-") as tmp:
        home = Path(tmp)
        for i in range(args.repeat):  # A B A B …: drift on a shared machine hits both alike
            idle = args.idle if i == 0 else 0.0  # the RSS reading: first round only
            ours.append(measure_start(demo, TAPEWATCH_FRAME, TAPEWATCH_READY, 1, idle, home))
            bare.append(measure_start(bare_app, BARE_TEXT.encode(), None, 1, idle, home))
            for mode in MODES:
                for kind in ("tapewatch", "bare"):
                    loads.setdefault((kind, mode), []).append(
                        measure_load(kind, mode, args.seconds, home)
                    )
            print(f"round {i + 1} of {args.repeat} measured", flush=True)
        lean = measure_start(
            demo, TAPEWATCH_FRAME, None, 1, args.idle, home, extra_env=hide_pyarrow(home)
        )
        paper = paper_lean = None
        if not args.no_paper:
            paper = measure_paper(args.idle, home)
            paper_lean = measure_paper(args.idle, home, hide_pyarrow(home))

    def seconds(value: float) -> str:
        return f"{value:.3f} s"

    print()
    _row("", "tapewatch", "bare", "ratio", "target")
    _figure(
        "first frame",
        [f.first_frame[0] for f in ours],
        [f.first_frame[0] for f in bare],
        seconds,
        TARGETS["first_frame"],
    )
    _figure(
        "  session on screen (DEMO badge)", [f.ready[0] for f in ours if f.ready], None, seconds
    )
    idle_ours, idle_bare = loads[("tapewatch", "idle")], loads[("bare", "idle")]
    _figure(
        f"idle CPU, nothing arriving ({args.seconds:g} s)",
        _column(idle_ours, "cpu"),
        _column(idle_bare, "cpu"),
        _pct,
        TARGETS["idle_cpu"],
    )
    top, top_bare = loads[("tapewatch", "max")], loads[("bare", "max")]
    print(
        f"\ndemo at ×{SPEED:g} (bare: idle, same probe and keys): "
        f"{_median(_column(top, 'bars_per_s')):.1f} bars/s delivered "
        f"of the {SPEED / 300:.1f} the speed promises"
    )
    _load_figures(top, top_bare, TARGETS["max_stalls"])
    loaded, loaded_bare = loads[("tapewatch", "inject")], loads[("bare", "inject")]
    print(
        f"\ndemo at ×{SPEED:g} + {_median(_column(loaded, 'events_per_s')):,.0f} events/s "
        f"(bare: {_median(_column(loaded_bare, 'events_per_s')):,.0f} events/s, one Static "
        "update per event)"
    )
    _load_figures(loaded, loaded_bare, TARGETS["stalls"])
    _figure(
        "  bar→decision p99",
        _column(loaded, "decision_p99"),
        None,
        _ms,
        TARGETS["decision"],
    )
    print()
    first = ours[0]
    _row(
        f"demo RSS after {args.idle:g} s idle",
        f"{first.rss_mb:.0f} MB",
        f"{bare[0].rss_mb:.0f} MB",
        _ratio(first.rss_mb, bare[0].rss_mb),
        TARGETS["rss"],
    )
    _row("  same, pyarrow not installed", f"{lean.rss_mb:.0f} MB")
    if paper is not None and paper_lean is not None:
        _row(
            f"paper session RSS after {args.idle:g} s idle",
            f"{paper.rss_mb:.0f} MB" if paper.rss_mb else "—",
            target="< 150 MB (alpaca-py + pandas loaded)",
        )
        _row(
            "  same, pyarrow not installed",
            f"{paper_lean.rss_mb:.0f} MB" if paper_lean.rss_mb else "—",
            target="(a plain install: pyarrow comes only with [parquet]/[test])",
        )
    print(
        "\nmedians of the rounds; stall = how late a 10 ms asyncio sleep wakes (an independent"
        "\nprobe, not the console's own timers); key = Pilot press of p until the panes drew the"
        "\npaused state; CPU counts every thread of the process."
    )
    return 0


def _load_figures(
    ours: Sequence[dict[str, float]], ref: Sequence[dict[str, float]], stall_target: str
) -> None:
    _figure("  event-loop stall p50", _column(ours, "stall_p50"), _column(ref, "stall_p50"), _ms)
    _figure(
        "  event-loop stall p99",
        _column(ours, "stall_p99"),
        _column(ref, "stall_p99"),
        _ms,
        stall_target,
    )
    _figure("  event-loop stall max", _column(ours, "stall_max"), _column(ref, "stall_max"), _ms)
    _figure(
        "  key → screen, median",
        _column(ours, "key_p50"),
        _column(ref, "key_p50"),
        _ms,
        TARGETS["key"],
    )
    _figure("  key → screen, worst", _column(ours, "key_max"), _column(ref, "key_max"), _ms)
    _figure("  CPU (one core = 100%)", _column(ours, "cpu"), _column(ref, "cpu"), _pct)


if __name__ == "__main__":
    sys.exit(main())
