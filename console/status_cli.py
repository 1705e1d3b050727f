"""``tapewatch status [--json] [--data-dir DIR]``: is an engine serving this data directory?

Asks each engine socket in the data directory (``<dir>/paper``, ``live``, ``demo``) without
attaching — connect, hello as a status client, ask, disconnect — and prints its PID, mode,
trading state and attached clients. Exit 0 when at least one engine answered, 1 when none did
(one line saying why: no socket, a socket left by a stopped engine, another version), 2 for
bad flags (argparse). ``--json`` prints one object: ``data_dir``, ``running`` and ``engines``
(each the engine's own answer), plus ``problems`` for sockets that did not answer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

PROG = "tapewatch status"
RUNNING = 0
NOT_RUNNING = 1

DESCRIPTION = (
    "Say whether an engine (tapewatch run --headless) is serving this data directory: its PID, "
    "mode, trading state and attached consoles. Nothing is attached and nothing is sent to the "
    "engine but the question. Exit status 0 when an engine answered, 1 when none did."
)


def add_status_command(subparsers: Any) -> None:
    """Register ``status`` (the CLI maps "status" to ``cmd_status``); cheap: no engine import."""
    status: argparse.ArgumentParser = subparsers.add_parser(
        "status",
        help="is an engine running for this data directory (without attaching)",
        description=DESCRIPTION,
    )
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.add_argument(
        "--data-dir",
        help="the engine's data directory (default: $TAPEWATCH_DATA_DIR or XDG data dir)",
    )


def cmd_status(args: argparse.Namespace) -> int:
    from tapewatch.engine.api.settings import data_dir

    folder = data_dir(args.data_dir)
    answers, problems = asyncio.run(_ask_all(folder))
    if args.json:
        out = {
            "data_dir": str(folder),
            "running": bool(answers),
            "engines": answers,
            "problems": problems,
        }
        print(json.dumps(out, indent=2, sort_keys=True))
    elif answers:
        for answer in answers:
            print(describe(answer))
        for problem in problems:
            sys.stderr.write(f"{PROG}: {problem}\n")
    else:
        why = "; ".join(problems) if problems else "no engine socket"
        print(
            f"{PROG}: no engine is running for the data directory {folder} ({why}); "
            "start one with 'tapewatch run --headless'"
        )
    return RUNNING if answers else NOT_RUNNING


async def _ask_all(folder: Path) -> tuple[list[dict[str, Any]], list[str]]:
    from tapewatch.engine.api.socket_client import ask_status, served_sockets
    from tapewatch.engine.api.wire import EngineUnavailable, ProtocolMismatch

    answers: list[dict[str, Any]] = []
    problems: list[str] = []
    for path in served_sockets(folder):
        try:
            answers.append((await ask_status(path)).details)
        except (EngineUnavailable, ProtocolMismatch) as exc:
            problems.append(str(exc))
    return answers, problems


def describe(status: dict[str, Any]) -> str:
    """A few lines for a person: who runs, what it trades, in which state, who watches."""
    paused = ", new entries paused" if status.get("paused") else ""
    clients = status.get("clients") or []
    lines = [
        f"{status.get('mode')} engine running: PID {status.get('pid')}, "
        f"tapewatch {status.get('version')} (protocol {status.get('protocol')})",
        f"  trading  {status.get('trading_state')}{paused}; {status.get('symbol')} "
        f"{status.get('timeframe')}, account {status.get('account')}, "
        f"equity {float(status.get('equity') or 0.0):,.2f}, "
        f"{status.get('open_positions')} open position(s), {status.get('in_flight')} order(s) "
        "in flight",
        f"  socket   {status.get('socket')}",
        f"  clients  {len(clients)} attached",
    ]
    for client in clients:
        ssh = f", ssh {client['ssh']}" if client.get("ssh") else ""
        role = "controls" if client.get("control") else "watches (read-only)"
        lines.append(
            f"           #{client.get('id')} {client.get('user') or '?'} "
            f"(PID {client.get('pid')}{ssh}) since {client.get('since')}, {role}"
        )
    return "\n".join(lines)
