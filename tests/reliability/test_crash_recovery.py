"""Crash recovery: SIGKILL at each point of an order's life, then a restart against the same
broker (a sandbox this test owns, so it outlives the killed process); SIGTERM and SIGHUP stop
``tapewatch run --headless`` cleanly; a corrupt journal, an unwritable data directory and a
full disk are one clear line and exit 2, never a crash loop, never a modified journal."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tapewatch.engine.model.events import AccountAdopted, OrderFilled, OrderIntended, OrderUpdated
from tapewatch.engine.model.types import Mode, OrderStatus, TradingState
from tapewatch.engine.root.live import journal_path
from tapewatch.engine.storage.journal import Journal
from tapewatch.sandbox import SandboxThread
from tests.alpaca.adapter_helpers import signal_after_first_fill
from tests.reliability.soak_helpers import (
    audit,
    broker_orders,
    journal_events,
    open_session,
    sandbox_config,
    sandbox_env,
)

ROOT = Path(__file__).resolve().parents[2]
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


@pytest.fixture
def sandbox() -> Iterator[SandboxThread]:
    box = SandboxThread(sandbox_config(seed=5, bar_interval=0.05, fill_delay=0.01)).start()
    yield box
    box.stop()


def _env(sandbox: SandboxThread, data_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        **sandbox_env(sandbox),
        "TAPEWATCH_DATA_DIR": str(data_dir),
        "XDG_DATA_HOME": str(data_dir / "xdg"),
        "PYTHONPATH": str(ROOT),
    }


def _killed_at(sandbox: SandboxThread, data_dir: Path, point: str) -> str:
    argv = [sys.executable, "-m", "tests.reliability.crash_driver", str(data_dir), point]
    proc = subprocess.run(
        argv, env=_env(sandbox, data_dir), cwd=ROOT, capture_output=True, text=True, timeout=40
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    return proc.stdout


async def _restart(sandbox: SandboxThread, data_dir: Path) -> TradingState:
    """Start again on the same journal and broker (no bars traded), then stop."""
    session = await open_session(sandbox, data_dir, warmup_bars=5)
    state = session.engine.gate.state
    await session.engine.stop("checked")
    await session.aclose()
    return state


def _intents(data_dir: Path) -> list[str]:
    events = journal_events(data_dir)
    return [e.request.client_order_id for e in events if isinstance(e, OrderIntended)]


@pytest.mark.parametrize("point", ["after_intent", "after_submit", "after_fill"])
async def test_a_kill_at_any_point_of_an_order_then_a_restart_loses_and_repeats_nothing(
    point: str, sandbox: SandboxThread, tmp_path: Path
) -> None:
    _killed_at(sandbox, tmp_path, point)
    last = _intents(tmp_path)[-1]  # the order in hand when the process died
    at_broker_before = [o["client_order_id"] for o in broker_orders(sandbox)]
    await _restart(sandbox, tmp_path)
    orders = broker_orders(sandbox)
    checked = audit(sandbox, tmp_path)
    assert checked.duplicates == 0
    assert [o["client_order_id"] for o in orders] == at_broker_before  # nothing resent
    assert checked.problems == [] and checked.broker == checked.journal
    events = journal_events(tmp_path)
    settled = [e for e in events if isinstance(e, OrderUpdated) and e.order.client_order_id == last]
    if point == "after_intent":
        assert last not in at_broker_before
        assert settled and settled[-1].order.status is OrderStatus.REJECTED
        assert "never reached the broker" in settled[-1].order.reason
    else:
        assert at_broker_before.count(last) == 1
        assert checked.broker  # it filled; the journal now holds the position too
        # The process died before journaling the fill (or even the answer): the restart
        # journals it as a fill, from the broker's order, so no adoption is needed.
        fills = [e for e in events if isinstance(e, OrderFilled) and e.fill.client_order_id == last]
        broker_order = next(o for o in orders if o["client_order_id"] == last)
        assert len(fills) == 1
        assert abs(fills[0].fill.qty - float(broker_order["filled_qty"])) < 1e-9
        assert abs(fills[0].fill.price - float(broker_order["filled_avg_price"])) < 1e-6
        assert [
            e.differences for e in events if isinstance(e, AccountAdopted) and e.differences
        ] == []


async def test_a_breaker_tripped_before_the_kill_is_still_tripped_after_the_restart(
    sandbox: SandboxThread, tmp_path: Path
) -> None:
    _killed_at(sandbox, tmp_path, "after_pause")
    state = await _restart(sandbox, tmp_path)
    assert state is TradingState.REDUCING  # the operator's pause survived the kill
    checked = audit(sandbox, tmp_path)
    assert checked.duplicates == 0 and checked.problems == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
async def test_sigterm_and_sighup_stop_cleanly(
    sig: signal.Signals, sandbox: SandboxThread, tmp_path: Path
) -> None:
    argv = [sys.executable, "-c", CLI, "run", "--headless", *QUICK]
    code, _lines, err = signal_after_first_fill(argv, _env(sandbox, tmp_path), ROOT, sig)
    assert code == 0, err
    assert "Traceback" not in err
    after_exit = len(broker_orders(sandbox))
    time.sleep(0.3)  # the market keeps moving; a stopped session sends nothing more
    assert len(broker_orders(sandbox)) == after_exit
    events = journal_events(tmp_path)
    assert events[-1].kind == "session_stopped"
    assert f"received {sig.name}" in events[-1].reason  # type: ignore[attr-defined]
    intended = set(_intents(tmp_path))
    assert {o["client_order_id"] for o in broker_orders(sandbox)} <= intended
    await _restart(sandbox, tmp_path)  # whatever filled after the stop is settled at start-up
    checked = audit(sandbox, tmp_path)
    assert checked.duplicates == 0 and checked.problems == []


# -- an unusable journal or data directory: one line, exit 2, nothing touched ---------------------


def _cli(
    sandbox: SandboxThread, data_dir: Path, preexec_fn: Callable[[], object] | None = None
) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-c", CLI, "run", "--headless", *QUICK, "--data-dir", str(data_dir)]
    env = _env(sandbox, data_dir)
    return subprocess.run(
        argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=30, preexec_fn=preexec_fn
    )


def _one_line_exit_2(proc: subprocess.CompletedProcess[str]) -> str:
    """The one error line (the key-source notice may precede it)."""
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in lines if line.startswith("tapewatch run: error: ")]
    assert errors == lines[-1:], proc.stderr
    return errors[0]


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
async def test_a_corrupt_journal_is_one_line_and_exit_2_and_left_alone(
    damage: str, sandbox: SandboxThread, tmp_path: Path
) -> None:
    path = journal_path(tmp_path, Mode.PAPER)
    if damage == "garbage":
        path.parent.mkdir(parents=True)
        path.write_bytes(b"\x00\xffnot a journal at all" * 300)
    else:
        _killed_at(sandbox, tmp_path, "after_submit")  # a journal with real history,
        await _restart(sandbox, tmp_path)  # checkpointed into the main file by a clean close
        size = path.stat().st_size
        assert size > 8192
        with path.open("r+b") as handle:
            handle.truncate(size // 2 + 100)  # mid-page
    before = path.read_bytes()
    for _ in range(2):  # and again: the same answer, no crash loop
        err = _one_line_exit_2(_cli(sandbox, tmp_path))
        assert "journal" in err and "corrupt" in err
    assert path.read_bytes() == before


def test_an_unwritable_data_dir_is_one_line_and_exit_2(
    sandbox: SandboxThread, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the data directory should be")
    err = _one_line_exit_2(_cli(sandbox, blocker))
    assert str(blocker) in err
    assert blocker.read_text() == "a file where the data directory should be"


def test_a_full_disk_is_one_line_and_exit_2_and_keeps_what_was_recorded(
    sandbox: SandboxThread, tmp_path: Path
) -> None:
    """Files may not grow past 64 KiB: the journal's write-ahead log fills up mid-session."""

    def no_room() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of death, like ENOSPC
        resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))

    err = _one_line_exit_2(_cli(sandbox, tmp_path, preexec_fn=no_room))
    assert "journal" in err and ("disk is full" in err or "disk I/O error" in err)
    with Journal(journal_path(tmp_path, Mode.PAPER)) as journal:  # still readable: no loss
        records = list(journal.events())
    kinds = [event.kind for _, event in records]
    seqs = [seq for seq, _ in records]
    assert kinds[0] == "session_started" and "bar" in kinds  # what was written is all there
    assert seqs == sorted(set(seqs))
