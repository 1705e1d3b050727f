"""``run_sandbox``: the blocking entry point behind ``tapewatch sandbox``, in a real process."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = (
    "import sys; from tapewatch.sandbox import SandboxConfig, run_sandbox; "
    "sys.exit(run_sandbox(SandboxConfig(port=0, bar_interval=0, calendar='weekday')))"
)


@pytest.mark.parametrize("stop_with", [signal.SIGINT, signal.SIGTERM], ids=["INT", "TERM"])
def test_run_sandbox_prints_its_urls_and_stops_cleanly(stop_with: signal.Signals) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        found = dict(re.findall(r"(TAPEWATCH_ALPACA_\w+)=(\S+)", banner))
        assert set(found) == {
            "TAPEWATCH_ALPACA_TRADING_URL",
            "TAPEWATCH_ALPACA_DATA_URL",
            "TAPEWATCH_ALPACA_STREAM_URL",
            "TAPEWATCH_ALPACA_TRADE_STREAM_URL",
        }
        base = found["TAPEWATCH_ALPACA_TRADING_URL"]
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", base)
        assert found["TAPEWATCH_ALPACA_STREAM_URL"] == base.replace("http", "ws") + "/v2/iex"
        assert found["TAPEWATCH_ALPACA_TRADE_STREAM_URL"] == base.replace("http", "ws") + "/stream"
        assert requests.get(f"{base}/_sandbox/state", timeout=5).json()["market"]["is_open"]
        process.send_signal(stop_with)
        assert process.wait(timeout=10) == 0
        assert process.stderr is not None and "Traceback" not in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_run_sandbox_reports_a_busy_port_in_one_line() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        script = SCRIPT.replace("port=0", f"port={port}")
        done = subprocess.run(
            [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
        )
    assert done.returncode == 2
    assert done.stderr.strip().startswith("tapewatch sandbox: cannot listen on 127.0.0.1:")
    assert "Traceback" not in done.stderr
