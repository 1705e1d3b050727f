"""A real ``tapewatch attach`` in a pty on a real ``tapewatch demo --headless``, both processes.

The demo serves ``<data dir>/demo/engine.sock``; the console attaches in a pseudo-terminal
(Textual's own Linux driver), draws, and ``q`` detaches: it exits 0 saying the engine keeps
trading, while the demo process goes on printing bars and ``tapewatch status`` sees nobody
attached. A second console started while one controls is a viewer: its ``p`` sends nothing
(the engine never prints a pause). Finally the console is SIGKILLed mid-session: the engine
trades on and forgets the client.
"""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from tapewatch.engine.api.types import Mode
from tapewatch.engine.api.wire import socket_path

ROOT = Path(__file__).resolve().parents[1]
WAIT = 30.0  # seconds any one condition may take before the test fails


def _env(tmp_path: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "TAPEWATCH_DATA_DIR": str(tmp_path / "data"),
        "XDG_DATA_HOME": str(tmp_path / "xdg"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "PYTHONPATH": str(ROOT),
        "TERM": "xterm-256color",
        "COLUMNS": "120",
        "LINES": "40",
    }
    env.pop("TEXTUAL_DRIVER", None)
    env.pop("SSH_CLIENT", None)
    return env


class Console:
    """``tapewatch attach`` on a pty: what it painted so far, keys in, its exit."""

    def __init__(self, env: dict[str, str], *flags: str) -> None:
        self.fd, child = pty.openpty()
        os.set_blocking(self.fd, False)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tapewatch.console.cli", "attach", *flags],
            stdin=child,
            stdout=child,
            stderr=child,
            env=env,
            cwd=ROOT,
            start_new_session=True,
        )
        os.close(child)
        self.seen = b""

    def read(self) -> None:
        while select.select([self.fd], [], [], 0.05)[0]:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:  # the child closed its side
                return
            if not chunk:
                return
            self.seen += chunk

    def until(self, text: str) -> None:
        end = time.monotonic() + WAIT
        while text.encode() not in self.seen:
            assert time.monotonic() < end, f"no {text!r} on the screen: {self.seen[-400:]!r}"
            assert self.proc.poll() is None, f"exited {self.proc.returncode}: {self.seen[-400:]!r}"
            self.read()

    def press(self, key: str) -> None:
        os.write(self.fd, key.encode())

    def wait(self) -> int:
        end = time.monotonic() + WAIT
        while self.proc.poll() is None:
            assert time.monotonic() < end, f"did not exit: {self.seen[-400:]!r}"
            self.read()
        self.read()
        return self.proc.returncode

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.fd)


def _status(env: dict[str, str]) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-m", "tapewatch.console.cli", "status", "--json"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    (engine,) = json.loads(out.stdout)["engines"]
    assert isinstance(engine, dict)
    return engine


def _lines_until(proc: subprocess.Popen[str], text: str, seen: list[str]) -> str:
    assert proc.stdout is not None
    end = time.monotonic() + WAIT
    while time.monotonic() < end:
        line = proc.stdout.readline()
        assert line, f"the demo exited: {seen[-5:]}"
        seen.append(line)
        if text in line:
            return line
    raise AssertionError(f"no {text!r} from the demo: {seen[-5:]}")


def test_attach_in_a_pty_draws_detaches_and_the_demo_keeps_trading(tmp_path: Path) -> None:
    env = _env(tmp_path)
    demo = subprocess.Popen(
        [sys.executable, "-m", "tapewatch.console.cli", "demo", "--headless", "--speed", "600"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    printed: list[str] = []
    consoles: list[Console] = []
    try:
        line = _lines_until(demo, "serving the demo engine on", printed)
        assert str(socket_path(tmp_path / "data", Mode.DEMO)) in line

        first = Console(env)
        consoles.append(first)
        first.until("you control it")  # the start-up note: the first console controls
        first.until("SPY")
        viewer = Console(env)
        consoles.append(viewer)
        viewer.until("a viewer, ")
        viewer.press("p")
        viewer.until("read-only: ")  # its answer to p; nothing was sent
        clients = _status(env)["clients"]
        assert isinstance(clients, list) and len(clients) == 2
        assert [c["control"] for c in clients] == [True, False]

        first.press("q")
        assert first.wait() == 0
        assert b"detached; the engine keeps trading" in first.seen
        viewer.proc.send_signal(signal.SIGKILL)  # a console killed mid-session
        viewer.wait()
        _lines_until(demo, " close ", printed)  # bars still come
        _lines_until(demo, " close ", printed)
        status = _status(env)
        assert status["running"] is True and status["clients"] == []
        assert not any("operator" in line and "pause" in line for line in printed)
        assert demo.poll() is None
    finally:
        for console in consoles:
            console.close()
        demo.send_signal(signal.SIGTERM)
        try:
            demo.communicate(timeout=WAIT)
        except subprocess.TimeoutExpired:
            demo.kill()
            demo.wait()
    assert demo.returncode == 0
