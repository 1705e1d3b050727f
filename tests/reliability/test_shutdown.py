"""SIGTERM and SIGINT stop ``tapewatch run --headless`` within 10 s whatever the broker does.

The real CLI trades a sandbox Alpaca through alpaca-py until its first fill; then the broker
hangs (every REST call answered a minute late) or throws a 429 storm, the next decision sends an
order into it, and the process is signalled. It must exit with status 0 inside the bound, its
journal ending with the stop (the reason names the signal), and the exit deadline (the last
resort) must not have been needed: the clean stop itself is bounded. Whatever happened to the
order in flight is settled at the next start.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tapewatch.engine.model.events import OrderIntended, SessionStopped
from tapewatch.sandbox import SandboxThread
from tests.reliability.soak_helpers import journal_events, sandbox_config, sandbox_env

ROOT = Path(__file__).resolve().parents[2]
EXIT_BOUND = 10.0  # the bound (systemd's stop timeout is longer)
QUICK = [
    *["--rsi-period", "2", "--sma-period", "3", "--rsi-oversold", "90", "--rsi-overbought", "95"],
    *["--unattended-pause-after", "off"],  # unwatched runs in market time: no dead-man pause
]
CLI = (
    "import sys, argparse\n"
    "from tapewatch.console.cli import _add_strategy_flags\n"
    "from tapewatch.console.run_cli import add_run_command, cmd_run\n"
    "p = argparse.ArgumentParser(prog='tapewatch')\n"
    "add_run_command(p.add_subparsers(dest='command'), _add_strategy_flags)\n"
    "sys.exit(cmd_run(p.parse_args(sys.argv[1:])))\n"
)
HUNG: dict[str, dict[str, Any]] = {
    "hung broker": {"latency_ms": 60_000},
    "429 storm": {"rest_error": {"status": 429, "count": 1000}},
}


@pytest.fixture
def sandbox() -> Iterator[SandboxThread]:
    box = SandboxThread(sandbox_config(seed=5, bar_interval=0.05, fill_delay=0.01)).start()
    yield box
    box.stop()


class Headless:
    """The CLI in a subprocess, its stdout read line by line without blocking."""

    def __init__(self, sandbox: SandboxThread, data_dir: Path) -> None:
        env = {
            **os.environ,
            **sandbox_env(sandbox),
            "TAPEWATCH_DATA_DIR": str(data_dir),
            "XDG_DATA_HOME": str(data_dir / "xdg"),
            "PYTHONPATH": str(ROOT),
        }
        argv = [sys.executable, "-c", CLI, "run", "--headless", *QUICK]
        self.proc = subprocess.Popen(
            argv, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.proc.stdout, selectors.EVENT_READ)
        self.lines: list[str] = []

    def wait_for(self, text: str, *, after: int = 0, seconds: float = 30.0) -> int:
        """Read until a line (index >= ``after``) contains ``text``; returns its index."""
        assert self.proc.stdout is not None
        end = time.monotonic() + seconds
        while True:
            for i in range(after, len(self.lines)):
                if text in self.lines[i]:
                    return i
            assert time.monotonic() < end, f"no {text!r} in time: {self.lines[-10:]}"
            if self._selector.select(timeout=0.2):
                line = self.proc.stdout.readline()
                assert line, f"exited early: {self.lines[-10:]} {self._stderr()}"
                self.lines.append(line)

    def _stderr(self) -> str:
        if self.proc.poll() is None or self.proc.stderr is None:
            return ""
        return self.proc.stderr.read()

    def stop(self, sig: signal.Signals) -> tuple[int | None, str]:
        """Send ``sig``; the exit status within the bound (None: still running) and stderr."""
        self.proc.send_signal(sig)
        try:
            _out, err = self.proc.communicate(timeout=EXIT_BOUND)
        except subprocess.TimeoutExpired:
            return None, ""
        return self.proc.returncode, err

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate(timeout=5)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
@pytest.mark.parametrize("fault", list(HUNG))
def test_a_stop_signal_ends_the_run_within_the_bound_whatever_the_broker_does(
    fault: str, sig: signal.Signals, sandbox: SandboxThread, tmp_path: Path
) -> None:
    run = Headless(sandbox, tmp_path)
    try:
        filled = run.wait_for(" FILL ")  # the session trades: entries and fills go through
        sandbox.apply_faults(**HUNG[fault])
        # The next decision sends an order into the fault: it is in flight when the signal lands.
        run.wait_for("-> SELL", after=filled)
        time.sleep(0.3)
        code, err = run.stop(sig)
    finally:
        run.kill()
    assert code == 0, f"exit status {code} (None: still running after {EXIT_BOUND} s) {err}"
    assert "Traceback" not in err
    events = journal_events(tmp_path)
    stops = [e for e in events if isinstance(e, SessionStopped)]
    assert len(stops) == 1 and f"received {sig.name}" in stops[0].reason
    assert events.index(stops[0]) >= len(events) - 2, [e.kind for e in events[-4:]]
    assert sum(isinstance(e, OrderIntended) for e in events) >= 2  # the exit was intended
    log = (tmp_path / "logs" / "tapewatch.log").read_text()
    assert "did not finish within" not in log, log[-2000:]  # the clean stop was bounded
