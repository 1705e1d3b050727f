"""``tapewatch attach``: the console on an engine that runs without it (``run --headless``).

The same app, panes, keys, modals and themes as plain ``tapewatch``, over a ``SocketHandle``
instead of an engine built here. ``q`` (or the terminal going away) detaches: the engine keeps
trading and nothing is sent. The first console attached controls; a later one is a read-only
viewer unless it takes control (``C`` on screen, or ``--take-control``); ``--read-only``
never controls (the browser view of ``tapewatch serve`` attaches so). No engine serving the
data directory is one line and exit 1; another tapewatch version one line and exit 2.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path
from typing import Any

PROG = "tapewatch attach"
USAGE = 2
NO_ENGINE = 1
MODES = ("paper", "live", "demo")

DESCRIPTION = (
    "Open the console on an engine already running for this data directory (tapewatch run "
    "--headless, tapewatch demo --headless, or a console that outlived its terminal). q "
    "detaches and leaves the engine trading. The first console attached controls it; later "
    "ones are read-only until they take control (C, or --take-control), which both are told."
)


def add_attach_command(subparsers: Any) -> None:
    """Register ``attach`` (the CLI maps "attach" to ``cmd_attach``); cheap: no engine import."""
    attach: argparse.ArgumentParser = subparsers.add_parser(
        "attach",
        help="open the console on a running engine (detach with q)",
        description=DESCRIPTION,
    )
    add_attach_flags(attach)
    who = attach.add_mutually_exclusive_group()
    who.add_argument(
        "--read-only", action="store_true", help="watch only: this console never sends commands"
    )
    who.add_argument(
        "--take-control",
        action="store_true",
        help="take control from the console that has it (journaled; both are told)",
    )
    attach.add_argument("--theme", help="console theme (see themes/)")


def add_attach_flags(parser: argparse.ArgumentParser) -> None:
    """Where the engine is: shared by ``attach`` and ``serve``."""
    parser.add_argument(
        "--data-dir",
        help="the engine's data directory (default: $TAPEWATCH_DATA_DIR or XDG data dir)",
    )
    parser.add_argument(
        "--mode",
        choices=MODES,
        help="which engine, when more than one serves the data directory",
    )


def engine_socket(data_dir: str | None, mode: str | None) -> tuple[Path | None, str, int]:
    """The socket to attach to, or (None, one line saying why not, the exit status): no engine
    here (1), or several and no ``--mode`` (2)."""
    from tapewatch.engine.api.settings import data_dir as default_dir
    from tapewatch.engine.api.socket_client import served_sockets
    from tapewatch.engine.api.types import Mode
    from tapewatch.engine.api.wire import socket_path

    folder = default_dir(data_dir)
    if mode is not None:
        path = socket_path(folder, Mode[mode.upper()])
        if not os.path.lexists(path):
            why = (
                f"no {mode} engine is serving the data directory {folder} (no {path}); start "
                "one with 'tapewatch run --headless' or 'tapewatch demo --headless'"
            )
            return None, why, NO_ENGINE
        return path, "", 0
    found = served_sockets(folder)
    if not found:
        why = (
            f"no engine is serving the data directory {folder}; start one with 'tapewatch run "
            "--headless' or 'tapewatch demo --headless' (see 'tapewatch status')"
        )
        return None, why, NO_ENGINE
    if len(found) > 1:
        modes = ", ".join(p.parent.name for p in found)
        return (
            None,
            f"engines serve several modes in {folder} ({modes}): choose one with --mode",
            USAGE,
        )
    return found[0], "", 0


def _terminal_ok() -> bool:
    """A terminal, or a driver that is not one (textual-serve's web driver, a test's)."""
    from tapewatch.console.launch import has_terminal

    return has_terminal() or bool(os.environ.get("TEXTUAL_DRIVER"))


def cmd_attach(args: argparse.Namespace) -> int:
    from tapewatch.console.launch import NO_TTY

    if not _terminal_ok():
        sys.stderr.write(NO_TTY.replace("'tapewatch demo --headless'", "'tapewatch status'") + "\n")
        return USAGE
    path, why, code = engine_socket(args.data_dir, args.mode)
    if path is None:
        sys.stderr.write(f"{PROG}: error: {why}\n")
        return code
    app = build_app(args, path)
    if app is None:
        return USAGE
    app.run()
    code = app.return_code or 0
    with contextlib.suppress(OSError):  # the terminal hung up: the log has the line
        if app.error_message:
            sys.stderr.write(app.error_message + "\n")
        elif app.detached:
            sys.stdout.write(f"{PROG}: {app.detached}\n")
    return code


def build_app(args: argparse.Namespace, path: Path) -> Any:
    """The console over ``path``'s engine (None after a one-line error on stderr)."""
    from tapewatch.console.app import TapewatchApp
    from tapewatch.console.attach import Attachment
    from tapewatch.console.keymap import KeymapError, load_keymap
    from tapewatch.console.themes import ThemeError, load_themes, resolve_theme, theme_dirs
    from tapewatch.engine.api.observability import setup_logging
    from tapewatch.engine.api.settings import ConfigError, config_dir, config_path
    from tapewatch.engine.api.socket_client import SocketHandle

    cfg_path = config_path(getattr(args, "config", None))
    try:
        keymap = load_keymap(cfg_path)
        themes = load_themes(theme_dirs(config_dir()))
        theme = resolve_theme(getattr(args, "theme", None), themes)
    except (KeymapError, ThemeError, ConfigError) as exc:
        sys.stderr.write(f"{PROG}: error: {exc}\n")
        return None
    log_path = None
    with contextlib.suppress(OSError):
        log_path = setup_logging(path.parent.parent)  # beside the engine's own log
    read_only = bool(getattr(args, "read_only", False))

    async def connect(take_control: bool) -> SocketHandle:
        return await SocketHandle.connect(path, read_only=read_only, take_control=take_control)

    attachment = Attachment(
        connect, take_control=bool(getattr(args, "take_control", False)), where=str(path)
    )
    return TapewatchApp(
        attach=attachment,
        themes=themes,
        theme=theme,
        keymap=keymap,
        log_path=log_path,
        config_path=cfg_path,
        handle_signals=True,
        on_hangup="stop",  # for an attached console a hang-up detaches (nothing is stopped)
    )
