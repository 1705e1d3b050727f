"""``tapewatch run --headless [--live]``: trade paper (or live) through Alpaca without a screen.

Decisions go to stdout (one line each), warnings to stderr, everything to the log file. The
engine's API is served on ``<data dir>/<mode>/engine.sock`` for the whole run. Runs
until SIGINT/SIGTERM/SIGHUP, then stops cleanly: no new orders, the bar in hand finished and
journaled, sockets closed, exit 0. Every failure a user can cause is one line and exit 2: no
keys, keys of the other mode (Alpaca's 401), a bad endpoint setting, an unusable journal.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from collections.abc import Callable
from typing import Any

from tapewatch.engine.api.types import Mode

USAGE_ERROR = 2
FAILURE = 1
PROG = "tapewatch run"


def add_run_command(
    subparsers: Any, add_strategy_flags: Callable[[argparse.ArgumentParser], None]
) -> argparse.ArgumentParser:
    """Register ``run`` on the CLI's subparsers (the caller maps "run" to ``cmd_run``)."""
    run: argparse.ArgumentParser = subparsers.add_parser(
        "run", help="trade the paper account (or --live) through Alpaca"
    )
    run.add_argument("--headless", action="store_true", help="no screen: log decisions to stdout")
    run.add_argument(
        "--live", action="store_true", help="trade the LIVE account (real money) instead of paper"
    )
    add_strategy_flags(run)
    from tapewatch.console.observability_cli import add_metrics_flags

    add_metrics_flags(run)
    run.add_argument(
        "--data-dir",
        help="where the journal and logs live (default: $TAPEWATCH_DATA_DIR or XDG data dir)",
    )
    return run


def _error(message: str, code: int = USAGE_ERROR) -> int:
    sys.stderr.write(f"{PROG}: error: {message}\n")
    return code


def _no_keys(mode: Mode) -> str:
    flag = " --live" if mode is Mode.LIVE else ""
    return (
        f"no {mode.value.lower()} API keys: run 'tapewatch login{flag}', or set "
        "APCA_API_KEY_ID and APCA_API_SECRET_KEY"
    )


def _rejected(mode: Mode, endpoint: str) -> str:
    other = "live" if mode is Mode.PAPER else "paper"
    fix = "run with --live" if mode is Mode.PAPER else "drop --live"
    flag = " --live" if mode is Mode.LIVE else ""
    return (
        f"the {mode.value.lower()} endpoint {endpoint} refused these keys (HTTP 401): these are "
        f"{other} keys used against the {mode.value.lower()} endpoint (or the reverse, or "
        f"revoked keys); store {mode.value.lower()} keys with 'tapewatch login{flag}' or {fix}"
    )


def cmd_run(args: argparse.Namespace) -> int:
    if not args.headless:
        return _error(
            "the console for paper and live trading opens with plain 'tapewatch' once it "
            "lands; for now use 'tapewatch run --headless'"
        )
    # looked up at call time (tests stand in for the keyring)
    import tapewatch.engine.api.accounts as keys
    from tapewatch.engine.api.settings import ConfigError, check_metrics

    mode = Mode.LIVE if args.live else Mode.PAPER
    try:
        from tapewatch.console.cli import (
            settings as cli_settings,  # the same flags as backtest and demo
        )

        settings: Any = cli_settings(args)
        warning = check_metrics(settings.metrics)  # before any broker session starts
    except ConfigError as exc:
        return _error(str(exc))
    if warning:
        sys.stderr.write(f"{PROG}: {warning}\n")
    from tapewatch.engine.api.storage import DataDirBusy, WriterLock, prepare_data_dir

    try:
        folder = prepare_data_dir(settings.data_dir)
        # One writer per journal (engine.root.live.journal_path): held until we return.
        lock = WriterLock.acquire(folder / mode.value.lower(), holder=_holder(mode))
    except (ConfigError, DataDirBusy) as exc:
        return _error(str(exc))
    except OSError as exc:
        return _error(f"cannot lock the data directory {folder}: {exc.strerror or exc}")
    with lock:
        try:
            credentials = keys.load_credentials(mode)
        except keys.CredentialError as exc:
            return _error(str(exc))
        if credentials is None:
            return _error(_no_keys(mode))
        if credentials.notice:
            sys.stderr.write(f"{PROG}: {credentials.notice}\n")
        from tapewatch.engine.api.observability import redact, setup_logging

        redact.add(credentials.secret)
        redact.add(credentials.key_id)
        try:
            setup_logging(folder, stderr_level=logging.WARNING)
        except OSError as exc:
            return _error(f"cannot write logs under {folder}: {exc.strerror or exc}")
        from dataclasses import replace

        return asyncio.run(_run(replace(settings, data_dir=folder), mode, credentials))


def _holder(mode: Mode) -> str:
    return "tapewatch run --headless" + (" --live" if mode is Mode.LIVE else "")


async def _run(settings: Any, mode: Mode, credentials: Any) -> int:
    """Build the session through the composition root (the config file's [alpaca] endpoints
    and feed, and [metrics], apply as in the console), then trade until a stop signal."""
    from tapewatch.engine.api.errors import BrokerError, JournalError, TapewatchError
    from tapewatch.engine.api.process import STOP_DEADLINE, ExitDeadline
    from tapewatch.engine.api.sessions import Root, install_stop_signals, run_headless
    from tapewatch.engine.api.settings import ConfigError
    from tapewatch.engine.api.wire import socket_path

    root = Root(settings)
    # Armed by the first stop signal: whatever the broker does, the process ends within 10 s.
    deadline = ExitDeadline(STOP_DEADLINE)
    building = asyncio.current_task()
    stopped: list[str] = []

    def stop_start_up(name: str) -> None:
        deadline.arm(f"received {name}")
        stopped.append(name)
        if building is not None:
            building.cancel()

    restore = install_stop_signals(stop_start_up)
    try:
        session = await root.live(mode, credentials)
    except asyncio.CancelledError:
        if not stopped:
            raise
        deadline.leave(0)
        return 0  # asked to stop while connecting: nothing was traded
    except BrokerError as exc:
        if exc.status == 401:
            return _error(_rejected(mode, settings.endpoints(mode).trading))
        if exc.status == 403:  # keys accepted, account refused: waiting would not change it
            return _error(f"{exc}; check the account's status and the keys at Alpaca")
        return _error(f"cannot start the {mode.value.lower()} session: {exc}", FAILURE)
    except (ConfigError, JournalError) as exc:
        return _error(str(exc))
    finally:
        restore()
    engine = session.engine
    instruments = root.observe(engine, headless=True)
    warm = len(session.feed.warmup())
    print(
        f"{mode.value} session: account {engine.state.account} at {session.endpoints.trading}, "
        f"{engine.symbol} {engine.timeframe}, {warm} bars of history; stop with Ctrl+C",
        flush=True,
    )
    for line in session.differences:
        print(f"reconcile: {line}", flush=True)
    code = FAILURE
    try:
        code = await run_headless(
            engine,
            session.feed,
            on_signal=lambda name: deadline.arm(f"received {name}"),
            serve_at=socket_path(settings.data_dir, mode),
            hours=session.hours,
            on_serving=_serving,
        )
    except JournalError as exc:  # a full disk mid-session: one line, nothing recorded is lost
        code = _error(f"{exc}; trading stopped")
    except TapewatchError as exc:  # the socket cannot be served: nothing was traded
        code = _error(str(exc))
    finally:
        instruments.close()
        await _close_session(session)
    # After a signal, threads still in a broker call must not hold the exit (see ``leave``).
    deadline.leave(code)
    return code


def _serving(server: Any) -> None:
    print(
        f"serving the engine API on {server.path} (see 'tapewatch status'); "
        "consoles may come and go, the engine keeps trading",
        flush=True,
    )


CLOSE_BUDGET = 1.5
"""Seconds for closing sockets and streams after the engine stopped (inside the 10 s)."""


async def _close_session(session: Any) -> None:
    """``session.aclose()``, bounded: a hung broker or stream never holds the exit; the journal
    is closed regardless (every record is already committed)."""
    try:
        await asyncio.wait_for(session.aclose(), CLOSE_BUDGET)
    except TimeoutError:
        logging.getLogger("tapewatch.headless").warning(
            "closing the Alpaca connections took longer than %.1f s: leaving them", CLOSE_BUDGET
        )
        with contextlib.suppress(Exception):
            session.journal.close()
