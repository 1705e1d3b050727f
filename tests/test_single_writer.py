"""One writer per data directory: a second headless run or console on the same paper journal
exits 2 naming the PID that holds it; SIGKILL frees the lock; demo runs are never blocked.

The end-to-end cases run ``python -m tapewatch.console.cli run --headless`` in real processes
against the sandbox on 127.0.0.1 through the real alpaca-py clients.
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tapewatch.engine.storage.writer_lock import LOCK_NAME, DataDirBusy, WriterLock
from tapewatch.sandbox import SandboxThread
from tests.alpaca.adapter_helpers import sandbox_env
from tests.alpaca.conftest import KEY, SECRET, sandbox_config

ROOT = Path(__file__).resolve().parents[1]
QUICK = [
    *["--rsi-period", "2", "--sma-period", "3", "--rsi-oversold", "90", "--rsi-overbought", "95"],
    *["--unattended-pause-after", "off"],  # unwatched runs in market time: no dead-man pause
]
HOLD = (
    "import sys, time\n"
    "from pathlib import Path\n"
    "from tapewatch.engine.storage.writer_lock import WriterLock\n"
    "lock = WriterLock.acquire(Path(sys.argv[1]), holder='a test holder')\n"
    "print('held', flush=True)\n"
    "time.sleep(120)\n"
)


def _read_line(proc: subprocess.Popen[str], want: str, timeout: float = 60.0) -> list[str]:
    """stdout lines until one contains ``want``; fails if the process ends first."""
    assert proc.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while not any(want in line for line in lines):
        assert time.monotonic() < deadline, f"no {want!r} line in time: {lines}"
        if selector.select(timeout=0.5):
            line = proc.stdout.readline()
            if not line:
                err = proc.stderr.read() if proc.stderr else ""
                raise AssertionError(f"exited before {want!r}: {lines} {err}")
            lines.append(line)
    return lines


def _spawn(argv: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        argv, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _end(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """Another process holding the paper journal's lock of ``tmp_path / "data"``."""
    folder = tmp_path / "data" / "paper"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = _spawn([sys.executable, "-c", HOLD, str(folder)], env)
    try:
        _read_line(proc, "held", timeout=30)
        yield proc, folder
    finally:
        _end(proc)


# ---- the lock itself ---------------------------------------------------------------------------


def test_a_second_lock_is_refused_naming_the_pid_until_released(tmp_path: Path) -> None:
    folder = tmp_path / "data" / "paper"
    with WriterLock.acquire(folder, holder="tapewatch run --headless") as lock:
        assert (folder / LOCK_NAME).read_text() == f"{os.getpid()} tapewatch run --headless\n"
        assert stat.S_IMODE((folder / LOCK_NAME).stat().st_mode) == 0o600
        with pytest.raises(DataDirBusy) as caught:
            WriterLock.acquire(folder)
        assert caught.value.pid == os.getpid()
        assert str(caught.value) == (
            f"the data directory {folder} is in use by PID {os.getpid()} "
            "(tapewatch run --headless); stop it or choose another --data-dir"
        )
        assert lock.held
    assert (folder / LOCK_NAME).read_text() == ""  # released: no stale PID left behind
    WriterLock.acquire(folder).release()  # free again


def test_sigkill_of_the_holder_frees_the_lock(
    holder: tuple[subprocess.Popen[str], Path],
) -> None:
    proc, folder = holder
    with pytest.raises(DataDirBusy) as caught:
        WriterLock.acquire(folder)
    assert caught.value.pid == proc.pid and "a test holder" in str(caught.value)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    with WriterLock.acquire(folder) as lock:  # the kernel dropped it with the process
        assert lock.held


def test_the_console_beside_a_running_writer_exits_2_before_connecting(
    holder: tuple[subprocess.Popen[str], Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    proc, folder = holder
    import tapewatch.console.launch as launch

    monkeypatch.setattr(launch, "has_terminal", lambda: True)
    monkeypatch.setenv("APCA_API_KEY_ID", KEY)
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)
    monkeypatch.setenv("TAPEWATCH_ALPACA_TRADING_URL", "http://127.0.0.1:9")  # never reached
    args = argparse.Namespace(data_dir=str(folder.parent), config=None, theme=None)
    try:
        code = launch.launch_console(args, demo=False, config=None)
    finally:
        from tapewatch.engine.observability.logs import teardown_logging

        teardown_logging()
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and f"is in use by PID {proc.pid}" in err
    assert "--data-dir" in err and "Traceback" not in err


# ---- real processes against the sandbox -------------------------------------------------------


@pytest.fixture
def sandbox() -> Iterator[SandboxThread]:
    box = SandboxThread(sandbox_config(bar_interval=0.05, fill_delay=0.01)).start()
    try:
        yield box
    finally:
        box.stop()


def _env(sandbox: SandboxThread) -> dict[str, str]:
    return {
        **os.environ,
        **sandbox_env(sandbox),
        "APCA_API_KEY_ID": KEY,
        "APCA_API_SECRET_KEY": SECRET,
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
    }


def _run(data: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "tapewatch.console.cli",
        "run",
        "--headless",
        "--data-dir",
        str(data),
    ]


def test_a_second_headless_run_exits_2_and_a_restart_after_sigkill_starts(
    sandbox: SandboxThread, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    env = _env(sandbox)
    first = _spawn([*_run(data), *QUICK], env)
    try:
        _read_line(first, "PAPER session: account")
        second = subprocess.run(
            _run(data), env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
        )
        assert second.returncode == 2, second.stderr
        lines = second.stderr.splitlines()
        assert len(lines) == 1, second.stderr
        assert f"the data directory {data / 'paper'} is in use by PID {first.pid}" in lines[0]
        assert "--data-dir" in lines[0]
        assert second.stdout == ""  # it never connected, so it never traded
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        third = _spawn([*_run(data), *QUICK], env)
        try:
            _read_line(third, "PAPER session: account")  # the lock died with the first
            _read_line(third, " -> ")  # trading: a bar was decided
            third.send_signal(signal.SIGTERM)
            _, err = third.communicate(timeout=30)
            assert third.returncode == 0, err
        finally:
            _end(third)
    finally:
        _end(first)
    # Issue 9 item 12 end to end: what a real run leaves behind is private.
    modes = {
        p.relative_to(data).as_posix(): stat.S_IMODE(p.stat().st_mode)
        for p in [data, *data.rglob("*")]
    }
    assert {name for name, mode in modes.items() if mode not in (0o700, 0o600)} == set()
    for name in ("paper/journal.sqlite3", "logs/tapewatch.log", "audit/operator-audit.jsonl"):
        assert modes[name] == 0o600
    assert modes["."] == modes["paper"] == 0o700
    audit = [json.loads(line) for line in (data / "audit" / "operator-audit.jsonl").open()]
    # The killed run never said stop; the refused one never started; the third stopped cleanly.
    assert [r["action"] for r in audit] == ["session_start", "session_start", "session_stop"]
    assert audit[-1]["detail"] == "received SIGTERM (signal SIGTERM)"
    check = subprocess.run(
        [sys.executable, "-m", "tapewatch.console.cli", "audit", "verify", "--data-dir", str(data)],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert check.returncode == 0 and "journal anchor(s) match" in check.stdout, check


def test_demo_runs_are_not_blocked_by_a_writer(
    holder: tuple[subprocess.Popen[str], Path],
) -> None:
    _, folder = holder
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, "-m", "tapewatch.console.cli", "demo", "--headless", "--speed", "3000"]
    demos = [_spawn([*argv, "--data-dir", str(folder.parent)], env) for _ in range(2)]
    try:
        for demo in demos:
            _read_line(demo, "session started")
        for demo in demos:
            demo.send_signal(signal.SIGTERM)
            _, err = demo.communicate(timeout=30)
            assert demo.returncode == 0, err
    finally:
        for demo in demos:
            _end(demo)
    assert len(list((folder.parent / "demo").glob("journal-*.sqlite3"))) >= 1
