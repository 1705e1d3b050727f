"""systemd: the headless engine speaks sd_notify, and `tapewatch service print` writes a unit
that works as printed.

The notify test is the real thing end to end: a `tapewatch demo --headless` subprocess (the same
``run_headless`` as `run --headless`) is given a NOTIFY_SOCKET the test has bound, as systemd
would, and must say READY, its trading state as STATUS, ping the watchdog at half of
WATCHDOG_USEC, and say STOPPING when it is told to stop.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tapewatch.console.service_cli import unit_text
from tapewatch.engine.observability.sdnotify import (
    SystemdNotifier,
    systemd_session,
    watchdog_interval,
)


def _unit(text: str) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            values.setdefault(key, []).append(value)
    return values


def test_the_printed_unit_starts_this_tapewatch_as_a_notify_service(tmp_path: Path) -> None:
    unit = _unit(unit_text(live=False, data_dir=tmp_path / "data", config=None))
    (exec_start,) = unit["ExecStart"]
    program, *args = exec_start.split()
    assert Path(program).is_absolute() and os.access(program, os.X_OK)
    assert args[:2] in (["run", "--headless"], ["-m", "tapewatch.console.cli"])
    assert f"--data-dir {tmp_path / 'data'}" in exec_start
    assert "--live" not in exec_start
    assert unit["Type"] == ["notify"] and unit["Restart"] == ["on-failure"]
    assert int(unit["WatchdogSec"][0]) >= 10
    assert "DBUS_SESSION_BUS_ADDRESS=unix:path=%t/bus" in unit["Environment"]


def test_a_live_unit_says_so_and_confirms_live_on_its_command_line() -> None:
    text = unit_text(live=True, data_dir=None, config=Path("~/tw.toml"))
    assert "real money" in text
    (exec_start,) = _unit(text)["ExecStart"]
    assert "--live --confirm-live" in exec_start
    assert f"--config {Path('~/tw.toml').expanduser()}" in exec_start


def test_service_print_is_a_command(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tapewatch.console.cli", "service", "print"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0 and "[Service]" in done.stdout and done.stderr == ""
    bad = subprocess.run(
        [sys.executable, "-m", "tapewatch.console.cli", "service", "install"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


def test_watchdog_interval_follows_the_environment() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "60000000"}) == 30.0
    assert watchdog_interval({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "1"}, pid=2) is None
    assert watchdog_interval({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "7"}, pid=7) == 30.0
    assert watchdog_interval({"WATCHDOG_USEC": "soon"}) is None
    assert watchdog_interval({}) is None


def test_outside_systemd_nothing_is_sent() -> None:
    assert systemd_session({}) is None
    assert systemd_session({"NOTIFY_SOCKET": "relative/path"}) is None


def test_an_abstract_socket_address_is_reached() -> None:
    name = f"tapewatch-test-{os.getpid()}"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind("\0" + name)
    try:
        notifier = SystemdNotifier.from_env({"NOTIFY_SOCKET": "@" + name})
        assert notifier is not None and notifier.send("READY=1", "STATUS=x")
        assert server.recv(4096) == b"READY=1\nSTATUS=x"
        notifier.close()
    finally:
        server.close()


def test_headless_run_says_ready_status_watchdog_and_stopping(tmp_path: Path) -> None:
    address = tmp_path / "notify.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(address))
    server.settimeout(30)
    env = {
        **os.environ,
        "NOTIFY_SOCKET": str(address),
        "WATCHDOG_USEC": "200000",  # ping every 0.1 s
        "TAPEWATCH_DATA_DIR": str(tmp_path / "data"),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "tapewatch.console.cli", "demo", "--headless", "--speed", "60"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    messages: list[str] = []
    try:
        while sum(m == "WATCHDOG=1" for m in messages) < 3:
            messages.extend(server.recv(4096).decode().split("\n"))
        process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        while "STOPPING=1" not in messages and time.monotonic() < deadline:
            messages.extend(server.recv(4096).decode().split("\n"))
        assert process.wait(timeout=20) == 0, process.stderr.read() if process.stderr else ""
    finally:
        if process.poll() is None:
            process.kill()
        server.close()
    assert messages[0] == "READY=1"
    assert messages[1] == "STATUS=demo SPY: trading ACTIVE"
    assert "STOPPING=1" in messages
    assert messages.index("STOPPING=1") > messages.index("READY=1")
