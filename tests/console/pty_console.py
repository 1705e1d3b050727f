"""The real ``tapewatch`` console in a pseudo-terminal, for the hang-up tests.

Each console is ``python -m tapewatch.console.cli`` on its own pty (its controlling terminal,
so closing the master side is what an SSH drop or ``tmux kill-session`` does), with its config,
data and XDG folders under the test's ``tmp_path`` and no keyring of the developer's.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tapewatch.engine.model.events import Event, OperatorAction, SessionStopped
from tapewatch.engine.storage.journal import Journal

ROOT = Path(__file__).resolve().parents[2]
EXIT_BOUND = 10.0  # the bound: a stopping console is gone within 10 s
DRAWN = b"ACTIVE"  # the header's trading state: on screen once the session runs
DEMO = [sys.executable, "-m", "tapewatch.console.cli", "demo", "--speed", "600"]


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
        """The exit status, or None if still running after ``bound`` seconds."""
        end = time.monotonic() + bound
        while time.monotonic() < end:
            code = self.proc.poll()
            if code is not None:
                return code
            self.read(0.1)
        return self.proc.poll()

    def wait_until(self, what: str, check: Callable[[], bool], bound: float = 30.0) -> None:
        """Keep draining the pty until ``check()`` holds; fail naming ``what`` after ``bound``."""
        end = time.monotonic() + bound
        while time.monotonic() < end:
            if check():
                return
            assert self.proc.poll() is None, f"the console exited ({self.proc.poll()}): {what}"
            self.read(0.2)
            if self.master is None:
                time.sleep(0.2)
        raise AssertionError(f"timed out after {bound:g} s waiting for {what}")


def _take_terminal() -> None:
    """In the child: its stdin (the pty's slave) becomes its controlling terminal."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def spawn(argv: list[str], env: dict[str, str]) -> Console:
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


def end_all(started: list[Console]) -> None:
    """Kill what a test left running (a failed assertion) and close its terminals."""
    for console in started:
        if console.proc.poll() is None:
            console.proc.kill()
            console.proc.wait(5)
        if console.master is not None:
            os.close(console.master)
            console.master = None


def console_env(tmp_path: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
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


def write_config(tmp_path: Path, text: str) -> Path:
    """The console's config.toml (where ``console_env`` points XDG_CONFIG_HOME)."""
    path = tmp_path / "config" / "tapewatch" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def hangup_policy(tmp_path: Path, policy: str) -> None:
    write_config(tmp_path, f'[console]\non_hangup = "{policy}"\n')


def start_demo(started: list[Console], tmp_path: Path, *, shell: bool = False) -> Console:
    argv = list(DEMO)
    if shell:  # as in tmux: a shell leads the session, the console runs in its foreground
        argv = ["bash", "-c", " ".join(argv) + "; exit 0"]
    console = spawn(argv, console_env(tmp_path))
    started.append(console)
    console.read(60, until=DRAWN)
    assert DRAWN in console.screen, f"the console never drew: {bytes(console.screen[-400:])!r}"
    return console


def journal_events(path: Path) -> list[Event]:
    with Journal(path) as journal:
        return [event for _seq, event in journal.events()]


def demo_journal_path(tmp_path: Path) -> Path:
    found = sorted((tmp_path / "data" / "demo").glob("journal-*.sqlite3"))
    assert len(found) == 1, found
    return found[0]


def demo_journal(tmp_path: Path) -> list[Event]:
    return journal_events(demo_journal_path(tmp_path))


def operator_actions(events: list[Event]) -> list[OperatorAction]:
    return [e for e in events if isinstance(e, OperatorAction)]


def audit_records(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "data" / "audit" / "operator-audit.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def assert_not_forced(tmp_path: Path) -> None:
    """The exit deadline (the last resort) did not have to end the process."""
    log = (tmp_path / "data" / "logs" / "tapewatch.log").read_text()
    assert "did not finish within" not in log, log[-2000:]


def assert_stopped_cleanly(events: list[Event]) -> None:
    """One SessionStopped, and nothing but the audit anchor after it."""
    kinds = [e.kind for e in events]
    assert sum(isinstance(e, SessionStopped) for e in events) == 1, kinds[-5:]
    after = kinds[kinds.index("session_stopped") + 1 :]
    assert set(after) <= {"audit_anchor"}, kinds[-5:]


def status_json(tmp_path: Path) -> tuple[int, dict[str, Any]]:
    """``tapewatch status --json`` for the test's data directory: (exit status, answer)."""
    done = subprocess.run(
        [sys.executable, "-m", "tapewatch.console.cli", "status", "--json"],
        env=console_env(tmp_path),
        cwd=ROOT,
        capture_output=True,
        timeout=60,
        check=False,
    )
    return done.returncode, json.loads(done.stdout or b"{}")
