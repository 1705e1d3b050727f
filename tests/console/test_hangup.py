"""A closed terminal ends the console: the real ``tapewatch`` process under a pseudo-terminal.

When a terminal goes away (an SSH drop, ``tmux kill-session``, a closed pty) the kernel sends
SIGHUP and SIGCONT and every later write fails. The console must then stop as for a quit: the
journal ends with ``session_stopped``, the exit status is 0, and the process is gone within
10 s (so the OS releases its data-directory lock). Each test spawns
``python -m tapewatch.console.cli`` on its own pty, waits until the screen shows the running
session, then hangs up.
"""

from __future__ import annotations

import fcntl
import os
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tapewatch.engine.model.events import Event, SessionStopped
from tapewatch.engine.model.types import Mode
from tapewatch.engine.root.live import journal_path
from tapewatch.engine.storage.journal import Journal
from tapewatch.sandbox import SandboxThread
from tests.reliability.soak_helpers import sandbox_config, sandbox_env

ROOT = Path(__file__).resolve().parents[2]
QUICK_STRATEGY = """\
[strategy]
rsi_period = 2
sma_period = 3
rsi_oversold = 90
rsi_overbought = 95
"""
EXIT_BOUND = 10.0  # the bound: a hung-up console is gone within 10 s
DRAWN = b"ACTIVE"  # the header's trading state: on screen once the session runs


@dataclass
class Console:
    proc: subprocess.Popen[bytes]
    master: int | None
    screen: bytearray

    def read(self, seconds: float, until: bytes | None = None) -> None:
        """Drain the pty (a full pty would block the app's writes) for up to ``seconds``."""
        end = time.monotonic() + seconds
        while self.master is not None and time.monotonic() < end:
            if until is not None and until in self.screen:
                return
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:  # EIO: the child closed its side
                    return
                if not chunk:
                    return
                self.screen.extend(chunk)

    def close_terminal(self) -> None:
        assert self.master is not None
        os.close(self.master)
        self.master = None

    def wait_for_exit(self, bound: float) -> int | None:
        """The exit status, or None if still running after ``bound`` seconds (then killed)."""
        end = time.monotonic() + bound
        while time.monotonic() < end:
            code = self.proc.poll()
            if code is not None:
                return code
            self.read(0.1)
        return self.proc.poll()


def _take_terminal() -> None:
    """In the child: its stdin (the pty's slave) becomes its controlling terminal."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _spawn(argv: list[str], env: dict[str, str]) -> Console:
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 36, 120, 0, 0))
    proc = subprocess.Popen(
        argv,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        cwd=ROOT,
        start_new_session=True,  # its own session, so the pty is its controlling terminal
        preexec_fn=_take_terminal,
    )
    os.close(slave)
    return Console(proc, master, bytearray())


@pytest.fixture
def consoles() -> Iterator[list[Console]]:
    started: list[Console] = []
    yield started
    for console in started:
        if console.proc.poll() is None:
            console.proc.kill()
            console.proc.wait(5)
        if console.master is not None:
            os.close(console.master)


def _env(tmp_path: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("APCA_", "TAPEWATCH_", "TEXTUAL"))
    }
    env.update(
        TERM="xterm-256color",
        PYTHONPATH=str(ROOT),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_DATA_HOME=str(tmp_path / "xdg"),
        TAPEWATCH_DATA_DIR=str(tmp_path / "data"),
        PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",  # never the developer's keyring
    )
    env.update(extra or {})
    return env


def _demo(consoles: list[Console], tmp_path: Path, *, shell: bool = False) -> Console:
    argv = [sys.executable, "-m", "tapewatch.console.cli", "demo", "--speed", "600"]
    if shell:  # as in tmux: a shell leads the session, the console runs in its foreground
        argv = ["bash", "-c", " ".join(argv) + "; exit 0"]
    console = _spawn(argv, _env(tmp_path))
    consoles.append(console)
    console.read(60, until=DRAWN)
    assert DRAWN in console.screen, f"the console never drew: {bytes(console.screen[-400:])!r}"
    return console


def _journal(path: Path) -> list[Event]:
    with Journal(path) as journal:
        return [event for _seq, event in journal.events()]


def _demo_journal(tmp_path: Path) -> list[Event]:
    found = sorted((tmp_path / "data" / "demo").glob("journal-*.sqlite3"))
    assert len(found) == 1, found
    return _journal(found[0])


def _assert_not_forced(tmp_path: Path) -> None:
    """The exit deadline (the last resort) did not have to end the process."""
    log = (tmp_path / "data" / "logs" / "tapewatch.log").read_text()
    assert "did not finish within" not in log, log[-2000:]


def _assert_stopped_cleanly(events: list[Event]) -> None:
    """One SessionStopped, and nothing but the audit anchor after it."""
    kinds = [e.kind for e in events]
    assert sum(isinstance(e, SessionStopped) for e in events) == 1, kinds[-5:]
    after = kinds[kinds.index("session_stopped") + 1 :]
    assert set(after) <= {"audit_anchor"}, kinds[-5:]


def test_closing_the_terminal_ends_the_demo_console(
    consoles: list[Console], tmp_path: Path
) -> None:
    console = _demo(consoles, tmp_path)
    console.close_terminal()  # the kernel hangs the pty up: SIGHUP, SIGCONT, EIO on writes
    assert console.wait_for_exit(EXIT_BOUND) == 0
    _assert_stopped_cleanly(_demo_journal(tmp_path))
    _assert_not_forced(tmp_path)


def test_sighup_ends_the_demo_console(consoles: list[Console], tmp_path: Path) -> None:
    console = _demo(consoles, tmp_path)
    console.proc.send_signal(signal.SIGHUP)
    assert console.wait_for_exit(EXIT_BOUND) == 0
    _assert_stopped_cleanly(_demo_journal(tmp_path))
    _assert_not_forced(tmp_path)
    # The terminal is still there: the app left it as it found it (main screen, cursor on).
    assert b"\x1b[?1049l" in console.screen


def test_a_closed_terminal_under_a_shell_ends_the_console(
    consoles: list[Console], tmp_path: Path
) -> None:
    """tmux kill-session: the shell gets the hang-up first; the console, in its foreground
    process group, gets SIGHUP and SIGCONT when the shell exits."""
    console = _demo(consoles, tmp_path, shell=True)
    console.close_terminal()
    console.wait_for_exit(EXIT_BOUND)  # the shell's own status is the kernel's business
    end = time.monotonic() + EXIT_BOUND
    while time.monotonic() < end and _running_consoles(tmp_path):
        time.sleep(0.1)
    assert not _running_consoles(tmp_path), "the console outlived its terminal"
    _assert_stopped_cleanly(_demo_journal(tmp_path))
    _assert_not_forced(tmp_path)


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
    config = tmp_path / "config" / "tapewatch" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(QUICK_STRATEGY)
    env = _env(tmp_path, sandbox_env(sandbox))
    console = _spawn([sys.executable, "-m", "tapewatch.console.cli"], env)
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
    events = _journal(journal)
    _assert_stopped_cleanly(events)
    _assert_not_forced(tmp_path)
