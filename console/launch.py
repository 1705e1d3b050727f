"""Open the console: check the terminal, read keys and themes, pick the session, run the app.

Everything that can be wrong before the screen opens (no TTY, a bad [keys] table, an unknown
theme, half a key pair in the environment) is one line on stderr and exit status 2. The heavy
session (numpy, plotext; alpaca-py and pandas for paper/live) is built by the app in a thread
after its first frame.

Which session: plain ``tapewatch`` trades the Alpaca paper account when paper keys exist (the
environment, else the keyring), and the offline demo when none do. Keys are read here, before
the app owns the terminal, so no keyring can prompt over the screen. With keys, a failure to
connect (a 401, Alpaca unreachable) ends the app with one line and exit 2: it never quietly
falls back to the demo. Live is reached only through the ``m`` switch and its typed LIVE.

The session's engine API is served on the data directory's socket while the console runs, and
a hang-up follows ``[console] on_hangup`` (console.app): by default the engine trades on.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tapewatch.engine.api.settings import EngineConfig
from tapewatch.engine.api.types import Mode

if TYPE_CHECKING:
    from tapewatch.engine.api.accounts import AlpacaAccounts
    from tapewatch.engine.api.settings import Settings
NO_TTY = (
    "tapewatch: error: the console needs a terminal; "
    "use 'ssh -t' or run 'tapewatch demo --headless'"
)
USAGE_ERROR = 2


def has_terminal() -> bool:
    try:
        return sys.stdin.isatty() and sys.stdout.isatty()
    except (AttributeError, ValueError):  # closed or replaced streams
        return False


def _file_logging(data: Path) -> Path | None:
    """Send the console's and the engine's log records to a rotating file, never the screen."""
    from tapewatch.engine.api.observability import setup_logging

    try:
        return setup_logging(data)
    except OSError:
        return None


def _read_accounts(settings: Settings) -> AlpacaAccounts:
    """Both modes' keys, read now: no screen is up, so no keyring can scribble over it."""
    from tapewatch.engine.api.accounts import load_accounts
    from tapewatch.engine.api.observability import redact

    accounts = load_accounts(
        endpoints={mode: settings.endpoints(mode) for mode in (Mode.PAPER, Mode.LIVE)},
        rate_limit_per_minute=settings.engine.risk.rate_limit_per_minute,
    )
    for mode in (Mode.PAPER, Mode.LIVE):
        keys = accounts.keys(mode)
        if keys is not None:
            redact.add(keys.secret)
            redact.add(keys.key_id)
    return accounts


def _paper_notice(accounts: AlpacaAccounts) -> str:
    keys = accounts.keys(Mode.PAPER)
    where = accounts.endpoints(Mode.PAPER).trading
    source = f"; {keys.notice}" if keys is not None and keys.notice else ""
    return f"Connecting to the Alpaca paper account at {where}{source}"


NOTICE_CELLS = 100
"""The start-up notice is one line under the header (the app adds the log's path): a keyring's
long complaint is cut to its first sentence here and kept whole in the log."""


def _demo_notice(problem: str | None) -> str:
    if problem:
        first = problem.split(". ")[0].splitlines()[0].strip().rstrip(".")
        short = first if len(first) <= 60 else first[:59] + "…"
        line = f"Could not read stored Alpaca keys ({short}): running the offline demo"
        return line[:NOTICE_CELLS]
    return "No Alpaca credentials stored: running the offline demo"


def launch_console(args: argparse.Namespace, demo: bool, config: EngineConfig | None) -> int:
    """Run the console until the user quits; the exit status is non-zero after a crash."""
    if not has_terminal():
        sys.stderr.write(NO_TTY + "\n")
        return USAGE_ERROR
    from dataclasses import replace

    from tapewatch.console.accounts import AccountDirectory, NoAccounts
    from tapewatch.console.cli import settings as cli_settings
    from tapewatch.console.keymap import KeymapError, load_keymap
    from tapewatch.console.themes import ThemeError, load_themes, resolve_theme, theme_dirs
    from tapewatch.engine.api.sessions import LiveSessionFactory, Root
    from tapewatch.engine.api.settings import (
        ConfigError,
        check_metrics,
        config_dir,
        config_path,
        data_dir,
    )
    from tapewatch.engine.api.storage import DataDirBusy, prepare_data_dir

    cfg_dir = config_dir()
    cfg_path = config_path(getattr(args, "config", None))
    try:
        settings = cli_settings(args)  # the config file, with the flags typed over it
        if config is not None:
            settings = settings.with_engine(config)
        keymap = load_keymap(cfg_path)
        themes = load_themes(theme_dirs(cfg_dir))
        theme = resolve_theme(getattr(args, "theme", None) or settings.theme, themes)
        metrics_warning = check_metrics(settings.metrics)  # before any broker session starts
        data = prepare_data_dir(settings.data_dir or data_dir(None))  # 0700
    except (KeymapError, ThemeError, ConfigError) as exc:
        sys.stderr.write(f"tapewatch: error: {exc}\n")
        return USAGE_ERROR
    if metrics_warning:
        sys.stderr.write(f"tapewatch: {metrics_warning}\n")

    if config is None:  # called without the CLI's engine settings: the defaults
        settings = settings.with_engine(EngineConfig().validate())
    root = Root(replace(settings, data_dir=data))
    engine_config = root.settings.engine
    log_path = _file_logging(data)  # before the keys are read: warnings go to the file
    accounts: AccountDirectory = NoAccounts()
    live_factory: LiveSessionFactory | None = None
    notice = None
    if not demo:
        from tapewatch.engine.api.accounts import CredentialError

        try:
            alpaca = _read_accounts(root.settings)
        except (CredentialError, ConfigError) as exc:
            sys.stderr.write(f"tapewatch: error: {exc}\n")
            return USAGE_ERROR
        if alpaca.paper_available():
            accounts = alpaca
            live_factory = LiveSessionFactory(engine_config, alpaca, data)
            try:  # one writer per journal, held for the process's life
                live_factory.lock_journal()
            except (DataDirBusy, OSError) as exc:
                sys.stderr.write(f"tapewatch: error: {exc}\n")
                return USAGE_ERROR
            notice = _paper_notice(alpaca)
        else:
            notice = _demo_notice(alpaca.problem(Mode.PAPER))

    def observe(session: Any) -> object:
        # Runs once the session is attached (the app hands the built session back, never
        # touching its engine): metrics pull in numpy and prometheus-client, which must not
        # delay the first frame.
        return root.observe(getattr(session, "engine", session), headless=False)

    def build_demo_session() -> object:
        return root.demo()  # numpy + calendar: off the UI thread

    build_session = live_factory if live_factory is not None else build_demo_session

    from tapewatch.console.app import TapewatchApp

    app = TapewatchApp(
        session_factory=build_session,  # type: ignore[arg-type]
        accounts=accounts,
        themes=themes,
        theme=theme,
        keymap=keymap,
        freeze_gc=True,
        log_path=log_path,
        config_path=cfg_path,
        startup_notice=notice,
        handle_signals=True,
        observe=observe,  # type: ignore[arg-type]
        on_hangup=root.settings.on_hangup,  # [console] on_hangup: keep-running by default
        serve_in=data,  # <data dir>/<mode>/engine.sock: tapewatch attach and status reach it
    )
    if live_factory is not None:
        live_factory.bind(app.call_from_thread)
    app.run()
    code = app.return_code or 0
    if app.deadline is not None:  # after a signal or a hang-up: no wait on stuck pool threads
        app.deadline.leave(code)
    if app.error_message:
        with contextlib.suppress(OSError):  # the terminal hung up: the log has the line
            sys.stderr.write(app.error_message + "\n")
    return code
