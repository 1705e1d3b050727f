"""Sweeps on real Dask clusters: a LocalCluster of two workers, a separately started
``dask scheduler`` + ``dask worker`` on loopback, and a sweep killed mid-way (SIGKILL of a real
``tapewatch sweep`` process) that a rerun finishes computing only the missing cells.

Everything listens on 127.0.0.1 on free ports and is torn down by the fixtures; the workers
are two single-threaded processes and the data small, so the module takes seconds.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from tapewatch.console.cli import main
from tapewatch.engine.api.backtest import generate
from tapewatch.engine.backtest import memo
from tapewatch.engine.research.executor import CellRunner, dask_client
from tapewatch.engine.research.space import parse_grid
from tapewatch.engine.research.store import FILE_NAME, CellStore
from tapewatch.engine.research.sweep import SweepPlan, run_sweep
from tapewatch.engine.settings.config import EngineConfig

BIN = Path(sys.executable).parent
WAIT = 60.0  # seconds a started service may take before the test gives up (never a verdict)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    """``dask scheduler`` and ``dask worker`` (2 processes × 1 thread) started apart, on
    127.0.0.1, as a cluster someone else runs; the address it serves."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    quiet = {**os.environ, "DASK_LOGGING__DISTRIBUTED": "error"}
    procs = [
        subprocess.Popen(
            [
                str(BIN / "dask"),
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-dashboard",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            env=quiet,
        )
    ]
    try:
        procs.append(
            subprocess.Popen(
                [
                    str(BIN / "dask"),
                    "worker",
                    address,
                    "--nworkers",
                    "2",
                    "--nthreads",
                    "1",
                    "--host",
                    "127.0.0.1",
                    "--no-dashboard",
                    "--memory-limit",
                    "1GB",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                env=quiet,
            )
        )
        from dask.distributed import Client

        with Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=WAIT)
        yield address
    finally:
        for process in reversed(procs):
            _stop(process)


def test_a_local_cluster_of_two_workers_runs_the_cells(tmp_path: Path) -> None:
    bars = generate("SPY", seed=3, start=date(2024, 1, 2), n_bars=2_000)
    plan = SweepPlan(axes=(parse_grid("rsi-period=7,14,21"),))
    with dask_client(workers=2) as client:
        workers = client.scheduler_info()["workers"]
        assert len(workers) == 2
        assert all(w["nthreads"] == 1 for w in workers.values())
        runner = CellRunner(client, bars, CellStore(tmp_path))
        result = run_sweep(bars, EngineConfig().validate(), plan, runner)
        ran_on = client.run(lambda: os.getpid())
        remembered = client.run(memo.entries)
        runner.release()
        left = client.run(memo.entries)
        deadline = time.monotonic() + 30  # the scheduler forgets released data asynchronously
        while any(client.has_what().values()) and time.monotonic() < deadline:
            time.sleep(0.05)
        data_left = client.has_what()
    assert result.computed == 3 and len(result.rows) == 3
    assert len(set(ran_on.values())) == 2 and os.getpid() not in ran_on.values()
    assert sum(remembered.values()) >= 1  # the cells' shared work, on the workers
    assert set(left.values()) == {0}  # released: nothing stays on a cluster after the sweep
    assert all(not keys for keys in data_left.values())


def test_a_separately_started_scheduler_gives_the_same_answers_as_a_local_cluster(
    scheduler: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "sweep",
        "--bars",
        "2000",
        "--grid",
        "rsi-period=7,14",
        "--grid",
        "rsi-overbought=65,70",
        "--no-cache",
        "--json",
    ]
    assert main([*argv, "--scheduler", scheduler]) == 0
    remote = json.loads(capsys.readouterr().out)
    assert main([*argv, "--workers", "2"]) == 0
    local = json.loads(capsys.readouterr().out)
    assert remote["computed"] == 4
    assert remote["cells"] == local["cells"]


def test_an_unreachable_scheduler_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    port = _free_port()  # nobody listens here
    code = main(
        [
            "sweep",
            "--bars",
            "500",
            "--grid",
            "rsi-period=7",
            "--no-cache",
            "--scheduler",
            f"tcp://127.0.0.1:{port}",
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert "cannot reach the Dask scheduler" in err and "\n" not in err


def _stored(cache: Path) -> int:
    path = cache / FILE_NAME
    if not path.exists():
        return 0
    with sqlite3.connect(path, timeout=30) as db:
        try:
            return int(db.execute("SELECT COUNT(*) FROM cells").fetchone()[0])
        except sqlite3.OperationalError:  # the table is not made yet
            return 0


def test_a_killed_sweep_resumes_computing_only_the_missing_cells(
    scheduler: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "cache"
    argv = [
        "sweep",
        "--bars",
        "60000",
        "--grid",
        "rsi-period=5,7,9,11,14,17,21,25",
        "--grid",
        "rsi-oversold=20,25,30,35",
        "--scheduler",
        scheduler,
        "--cache-dir",
        str(cache),
    ]
    total = 32
    sweep = subprocess.Popen(
        [sys.executable, "-m", "tapewatch.console.cli", *argv, "--json", "--progress"],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "stderr").open("w"),
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + WAIT
        while _stored(cache) < 3 and sweep.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        shown = (tmp_path / "stderr").read_text()[-2000:]
        assert sweep.poll() is None, f"the sweep ended before it could be killed: {shown}"
        assert _stored(cache) >= 3, f"no cells stored in {WAIT:g} s: {shown}"
        os.killpg(sweep.pid, signal.SIGKILL)
    finally:
        _stop(sweep)
        sweep.wait()
    kept = _stored(cache)
    assert 3 <= kept < total
    assert main([*argv, "--json"]) == 0
    resumed = json.loads(capsys.readouterr().out)
    assert resumed["from_store"] == kept
    assert resumed["computed"] == total - kept
    assert len(resumed["cells"]) == total and _stored(cache) == total


def test_ctrl_c_keeps_the_finished_cells_and_says_how_to_resume(
    scheduler: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "cache"
    argv = [
        "sweep",
        "--bars",
        "60000",
        "--grid",
        "rsi-period=5,7,9,11,14,17,21,25",
        "--grid",
        "sma-period=20,30,40,50",
        "--scheduler",
        scheduler,
        "--cache-dir",
        str(cache),
    ]
    sweep = subprocess.Popen(
        [sys.executable, "-m", "tapewatch.console.cli", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + WAIT
        while _stored(cache) < 2 and sweep.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sweep.poll() is None, "the sweep ended before Ctrl+C"
        sweep.send_signal(signal.SIGINT)
        _, err = sweep.communicate(timeout=WAIT)
    finally:
        _stop(sweep)
    assert sweep.returncode == 130
    line = err.decode().strip().splitlines()[-1]
    assert line == (
        f"tapewatch sweep: interrupted; finished cells are kept in {cache}; rerun the same "
        "command to resume"
    )
    kept = _stored(cache)
    assert main([*argv, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["from_store"] == kept >= 2
