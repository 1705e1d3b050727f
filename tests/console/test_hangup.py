"""A closed terminal under ``[console] on_hangup = "stop"``: the real ``tapewatch`` in a pty.

When a terminal goes away (an SSH drop, ``tmux kill-session``, a closed pty) the kernel sends
SIGHUP and SIGCONT and every later write fails. Under the stop policy the console must then
stop as for a quit: the journal ends with ``session_stopped``, the exit status is 0, and the
process is gone within 10 s (so the OS releases its data-directory lock). Under the default
policy (keep-running, tests/console/test_hangup_policy.py has the rest) a closed terminal leaves
the engine trading. Each test spawns ``python -m tapewatch.console.cli`` on its own pty, waits
until the screen shows the running session, then hangs up.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tapewatch.engine.model.types import Mode
from tapewatch.engine.root.live import journal_path
from tapewatch.sandbox import SandboxThread
from tests.console.pty_console import (
    DRAWN,
    EXIT_BOUND,
    Console,
    assert_not_forced,
    assert_stopped_cleanly,
    console_env,
    demo_journal,
    demo_journal_path,
    end_all,
    hangup_policy,
    journal_events,
    operator_actions,
    spawn,
    start_demo,
    write_config,
)
from tests.reliability.soak_helpers import sandbox_config, sandbox_env

QUICK_STRATEGY = """\
[strategy]
rsi_period = 2
sma_period = 3
rsi_oversold = 90
rsi_overbought = 95
"""


@pytest.fixture
def consoles() -> Iterator[list[Console]]:
    started: list[Console] = []
    yield started
    end_all(started)


def _hangup_journaled_before_the_stop(tmp_path: Path, why: str) -> None:
    events = demo_journal(tmp_path)
    assert_stopped_cleanly(events)
    hangups = [a for a in operator_actions(events) if a.action == "hangup"]
    assert [a.detail for a in hangups] == [f"stop: {why}"]
    kinds = [e.kind for e in events]
    assert events.index(hangups[0]) < kinds.index("session_stopped")


def test_closing_the_terminal_ends_the_demo_console(
    consoles: list[Console], tmp_path: Path
) -> None:
    hangup_policy(tmp_path, "stop")
    console = start_demo(consoles, tmp_path)
    console.close_terminal()  # the kernel hangs the pty up: SIGHUP, SIGCONT, EIO on writes
    assert console.wait_for_exit(EXIT_BOUND) == 0
    assert_stopped_cleanly(demo_journal(tmp_path))
    assert_not_forced(tmp_path)


def test_closing_the_terminal_leaves_the_demo_trading_by_default(
    consoles: list[Console], tmp_path: Path
) -> None:
    """No [console] on_hangup: keep-running. The closed pty (SIGHUP, SIGCONT, then EIO on
    every read and write) neither ends nor wedges the process: bars keep being journaled."""
    console = start_demo(consoles, tmp_path)
    console.close_terminal()
    path = demo_journal_path(tmp_path)
    console.wait_until(
        "the hang-up in the journal",
        lambda: any(a.action == "hangup" for a in operator_actions(journal_events(path))),
    )
    seen = len(journal_events(path))
    console.wait_until("more bars after the hang-up", lambda: len(journal_events(path)) > seen)
    console.proc.send_signal(signal.SIGTERM)
    assert console.wait_for_exit(EXIT_BOUND) == 0
    assert_stopped_cleanly(demo_journal(tmp_path))
    assert_not_forced(tmp_path)


def test_sighup_ends_the_demo_console(consoles: list[Console], tmp_path: Path) -> None:
    hangup_policy(tmp_path, "stop")
    console = start_demo(consoles, tmp_path)
    console.proc.send_signal(signal.SIGHUP)
    assert console.wait_for_exit(EXIT_BOUND) == 0
    _hangup_journaled_before_the_stop(tmp_path, "received SIGHUP")
    assert_not_forced(tmp_path)
    # The terminal is still there: the app left it as it found it (main screen, cursor on).
    assert b"\x1b[?1049l" in console.screen


def test_a_closed_terminal_under_a_shell_ends_the_console(
    consoles: list[Console], tmp_path: Path
) -> None:
    """tmux kill-session: the shell gets the hang-up first; the console, in its foreground
    process group, gets SIGHUP and SIGCONT when the shell exits."""
    hangup_policy(tmp_path, "stop")
    console = start_demo(consoles, tmp_path, shell=True)
    console.close_terminal()
    console.wait_for_exit(EXIT_BOUND)  # the shell's own status is the kernel's business
    end = time.monotonic() + EXIT_BOUND
    while time.monotonic() < end and _running_consoles(tmp_path):
        time.sleep(0.1)
    assert not _running_consoles(tmp_path), "the console outlived its terminal"
    assert_stopped_cleanly(demo_journal(tmp_path))
    assert_not_forced(tmp_path)


def _running_consoles(tmp_path: Path) -> list[int]:
    """PIDs of live processes whose environment names this test's data directory."""
    marker = f"TAPEWATCH_DATA_DIR={tmp_path / 'data'}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if (
            state != "Z"
            and marker in environ.split(b"\0")
            and "tapewatch.console.cli" in _cmdline(entry)
        ):
            found.append(int(entry.name))
    return found


def _cmdline(entry: Path) -> str:
    try:
        return (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


# -- the paper console on a sandbox Alpaca --------------------------------------------------


@pytest.fixture
def sandbox() -> Iterator[SandboxThread]:
    box = SandboxThread(sandbox_config(seed=5, bar_interval=0.05, fill_delay=0.01)).start()
    yield box
    box.stop()


@pytest.mark.parametrize("hang_up", ["close", "sighup"])
def test_a_hung_up_paper_console_stops_within_the_bound_with_the_broker_hung(
    hang_up: str, consoles: list[Console], tmp_path: Path, sandbox: SandboxThread
) -> None:
    """Plain ``tapewatch`` with paper keys and a strategy that trades at once; Alpaca stops
    answering REST, then the terminal goes."""
    write_config(tmp_path, QUICK_STRATEGY + '[console]\non_hangup = "stop"\n')
    env = console_env(tmp_path, sandbox_env(sandbox))
    console = spawn([sys.executable, "-m", "tapewatch.console.cli"], env)
    consoles.append(console)
    console.read(90, until=DRAWN)
    assert DRAWN in console.screen, f"never drew: {bytes(console.screen[-400:])!r}"
    journal = journal_path(tmp_path / "data", Mode.PAPER)
    sandbox.apply_faults(latency_ms=60_000)  # every REST call now hangs for a minute
    console.read(1.0)  # look-ups (clock, orders) are now stuck in the fault
    if hang_up == "close":
        console.close_terminal()
    else:
        console.proc.send_signal(signal.SIGHUP)
    assert console.wait_for_exit(EXIT_BOUND) == 0
    events = journal_events(journal)
    assert_stopped_cleanly(events)
    assert_not_forced(tmp_path)
