"""``tapewatch serve``: the attach client in a browser, through textual-serve, on 127.0.0.1 only.

For a laptop reaching the server over an SSH tunnel (``ssh -L 8000:127.0.0.1:8000 host``):
each browser tab runs ``tapewatch attach --read-only`` (``--control``: without it, so the tab
may control the engine like any attached console). Nothing listens beyond the loopback
interface: a non-loopback ``--host`` is one line and exit 2, since anyone who reaches the port
gets the console.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any

from tapewatch.console.attach_cli import add_attach_flags

PROG = "tapewatch serve"
USAGE = 2
DEFAULT_PORT = 8000
LOOPBACK = ("127.0.0.1", "localhost", "::1")

DESCRIPTION = (
    "Serve the attach console to a browser on 127.0.0.1 (textual-serve), for an SSH tunnel "
    "from a laptop: ssh -L 8000:127.0.0.1:8000 HOST, then open http://127.0.0.1:8000. "
    "Read-only unless --control."
)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a port is a number, not {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 1-65535, not {port}")
    return port


def add_serve_command(subparsers: Any) -> None:
    """Register ``serve`` (the CLI maps "serve" to ``cmd_serve``); cheap: no textual import."""
    serve: argparse.ArgumentParser = subparsers.add_parser(
        "serve", help="the attach console in a browser, on 127.0.0.1", description=DESCRIPTION
    )
    serve.add_argument("--port", type=_port, default=DEFAULT_PORT, help="default 8000")
    serve.add_argument(
        "--host", default="127.0.0.1", help="loopback only: 127.0.0.1 (default), localhost, ::1"
    )
    serve.add_argument(
        "--control",
        action="store_true",
        help="let the browser's console control the engine (default: read-only)",
    )
    add_attach_flags(serve)


def attach_command(args: argparse.Namespace, python: str = sys.executable) -> str:
    """The command line each browser session runs: this Python's ``tapewatch attach``."""
    words = [python, "-m", "tapewatch.console.cli", "attach"]
    if getattr(args, "data_dir", None):
        words += ["--data-dir", str(args.data_dir)]
    if getattr(args, "mode", None):
        words += ["--mode", str(args.mode)]
    if not args.control:
        words.append("--read-only")
    return shlex.join(words)


def build_server(args: argparse.Namespace) -> Any:
    """textual-serve's ``Server`` for ``args``; ValueError (one line) for a non-loopback host."""
    if args.host not in LOOPBACK:
        raise ValueError(
            f"--host {args.host} is not loopback: tapewatch serve listens on 127.0.0.1 only "
            "(reach it from a laptop through an SSH tunnel)"
        )
    from textual_serve.server import Server

    mode = "controls the engine" if args.control else "read-only"
    return Server(attach_command(args), host=args.host, port=args.port, title=f"tapewatch ({mode})")


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        server = build_server(args)
    except ValueError as exc:
        sys.stderr.write(f"{PROG}: error: {exc}\n")
        return USAGE
    role = "may control the engine" if args.control else "read-only"
    print(
        f"{PROG}: the attach console ({role}) on http://{args.host}:{args.port}; from a "
        f"laptop: ssh -L {args.port}:127.0.0.1:{args.port} <this host>",
        flush=True,
    )
    server.serve()
    return 0
