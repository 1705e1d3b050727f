"""Open the console: check the terminal, read keys and themes, pick the session, run the app.

Everything that can be wrong before the screen opens (no TTY, a bad [keys] table, an unknown
theme) is one line on stderr and exit status 2. The heavy session (pandas, the market calendar)
is built by the app in a thread after its first frame.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.config import EngineConfig

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
    from engine.logs import setup_logging

    try:
        return setup_logging(data)
    except OSError:
        return None


def launch_console(args: argparse.Namespace, demo: bool, config: EngineConfig | None) -> int:
    """Run the console until the user quits; the exit status is non-zero after a crash."""
    if not has_terminal():
        sys.stderr.write(NO_TTY + "\n")
        return USAGE_ERROR
    from console.accounts import NoAccounts
    from console.keymap import KeymapError, load_keymap
    from console.themes import ThemeError, load_themes, resolve_theme, theme_dirs
    from engine.config import ConfigError, config_dir, data_dir
    from engine.config_file import config_path, load_config_file

    cfg_dir = config_dir()
    cfg_path = config_path(getattr(args, "config", None))
    try:
        file_config = load_config_file(getattr(args, "config", None))
        keymap = load_keymap(cfg_path)
        themes = load_themes(theme_dirs(cfg_dir))
        theme = resolve_theme(getattr(args, "theme", None) or file_config.theme, themes)
    except (KeymapError, ThemeError, ConfigError) as exc:
        sys.stderr.write(f"tapewatch: error: {exc}\n")
        return USAGE_ERROR

    accounts = NoAccounts()
    notice = None
    if not demo and not accounts.paper_available():
        notice = "No Alpaca credentials stored: running the offline demo"
    engine_config = config if config is not None else EngineConfig().validate()
    seed = int(getattr(args, "seed", 7))
    speed = float(getattr(args, "speed", 60.0))
    data = data_dir(getattr(args, "data_dir", None))
    log_path = _file_logging(data)
    from console.instrument import instrument

    def observe(engine: object) -> object:
        return instrument(engine, data, args)  # type: ignore[arg-type]

    def build_session() -> object:
        from engine.wiring import DemoOptions, build_demo  # pandas + calendar: off the UI thread

        return build_demo(engine_config, DemoOptions(seed=seed, speed=speed), data_dir=data)

    from console.app import TapewatchApp

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
    )
    app.run()
    if app.error_message:
        sys.stderr.write(app.error_message + "\n")
    return app.return_code or 0
