"""The ``tapewatch`` command line: one entry point, subcommands, one-line errors.

Heavy imports (textual, numpy, alpaca-py) happen inside the subcommand that needs them, so
``tapewatch --help`` answers at once. Every user error is one line on stderr and exit status 2;
an unexpected failure is one line pointing at the log file, never a traceback on the screen.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from tapewatch.engine.api import __version__
from tapewatch.engine.api.settings import ENGINE_FIELDS, Field, TapewatchError, UsageError
from tapewatch.engine.api.settings import (
    clip as _clip,  # small: engine.models and the standard library only
)

if TYPE_CHECKING:
    from tapewatch.engine.api.settings import EngineConfig, Settings
USAGE_ERROR = 2
PROG = "tapewatch"
ENV_CONFIG = "TAPEWATCH_CONFIG"  # engine.config_file.ENV_CONFIG (not imported: --help stays fast)
ENGINE_FLAGS = tuple(f.dest for f in ENGINE_FIELDS)
"""argparse destinations of the strategy flags; None means "not given": the file's value stands."""

__all__ = ["UsageError", "main", "settings"]


SHOWN = 40  # characters of a bad value a message repeats, as engine.config.clip does
LONG_INPUT = 120  # typed values longer than this are cut to SHOWN in every message…
LONGEST_WORD = 200  # …and so is any longer run of non-blanks, whatever its source
MAX_SEED = 2**32 - 1
MAX_SPEED = 10_000.0  # engine.feeds.replay clamps the pace here
MAX_BARS = 2_000_000  # about 20 years of 1-minute bars
FIRST_DAY = date(1900, 1, 1)  # engine.calendar.EARLIEST..LATEST: the sessions it can answer
LAST_DAY = date(2199, 12, 31)
MAX_COMPARE = 20


_typed: list[str] = []
"""What the user typed (set by ``main``): values over LONG_INPUT are cut in every message.

Checks that name a bad value cut it to SHOWN themselves; this catches the rest (argparse's own
messages, paths inside OS errors) while a path of ordinary length is still shown whole."""


def one_line(message: str) -> str:
    """``message`` fit for stderr: one line, no long value echoed whole (what the user typed
    over LONG_INPUT characters is cut, and so is any other run of non-blanks over
    LONGEST_WORD)."""
    for value in sorted({v for t in _typed for v in (t, t.partition("=")[2])}, key=len)[::-1]:
        if len(value) > LONG_INPUT:
            message = message.replace(repr(value), repr(_clip(value)))
            message = message.replace(value, _clip(value))
    message = " ".join(message.splitlines())
    words = message.split(" ")
    return " ".join(_clip(w, SHOWN if len(w) > LONGEST_WORD else len(w)) for w in words)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        sys.stderr.write(
            one_line(f"{self.prog}: error: {message} (see '{self.prog} --help')") + "\n"
        )
        raise SystemExit(USAGE_ERROR)


def _number(
    low: float, high: float, example: str, *, above: bool = False
) -> Callable[[str], float]:
    """An argparse type: a finite number in [low, high] (above ``low`` when ``above``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{_clip(text)!r} is not a number; e.g. {example}"
            ) from None
        low_ok = value > low if above else value >= low
        if not (math.isfinite(value) and low_ok and value <= high):
            first = f"above {low:g}" if above else f"at least {low:g}"
            raise argparse.ArgumentTypeError(
                f"must be {first} and at most {high:g} (got {_clip(text)}); e.g. {example}"
            )
        return value

    return parse


def _finite(text: str) -> float:
    """An argparse type: any finite number (engine.config checks the range)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{_clip(text)!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number (got {_clip(text)})")
    return value


def _whole(low: int | None = None, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number, within [low, high] when given."""

    def parse(text: str) -> int:
        try:
            value = int(text.strip()) if len(text) <= 30 else None
        except ValueError:
            value = None
        if value is None:
            raise argparse.ArgumentTypeError(f"{_clip(text)!r} is not a whole number")
        if (low is not None and value < low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(
                f"must be a whole number from {low} to {high} (got {_clip(text)})"
            )
        return value

    return parse


def _add_strategy_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("strategy (flags given override the config file)")
    g.add_argument(
        "--config",
        type=Path,
        default=argparse.SUPPRESS,  # keeps a --config given before the command
        help=f"config file (default: ${ENV_CONFIG} or $XDG_CONFIG_HOME/tapewatch/config.toml)",
    )
    for field in ENGINE_FIELDS:  # one table names, types and bounds every flag (fields.py)
        if field.flag is not None:
            _add_field_flag(g, field)


def _add_field_flag(group: argparse._ArgumentGroup, field: Field) -> None:
    """``--flag`` for one setting: its type from the field's kind, its default shown from the
    engine's config (the flag itself defaults to None: only a flag given overrides the file)."""
    assert field.flag is not None
    shown = f"{field.help} (default {_default_text(field)})"
    if field.choices:
        group.add_argument(field.flag, choices=field.choices, default=None, help=shown)
    elif field.kind == "int":
        group.add_argument(field.flag, type=_whole(), default=None, help=shown)
    elif field.kind == "number":
        group.add_argument(field.flag, type=_finite, default=None, help=shown)
    else:
        group.add_argument(field.flag, default=None, help=shown)


def _default_text(field: Field) -> str:
    from tapewatch.engine.api.settings import EngineConfig

    config = EngineConfig()
    owner = config if field.table == "account" else getattr(config, field.table)
    value = getattr(owner, "starting_cash" if field.table == "account" else field.key)
    return f"{value:g}" if isinstance(value, float) else str(value)


def _add_data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir",
        help="where the journal and logs live (default: $TAPEWATCH_DATA_DIR or XDG data dir)",
    )


def _date(text: str) -> date:
    try:
        day = date.fromisoformat(text) if len(text) <= 10 else None
    except ValueError:
        day = None
    if day is None:
        raise argparse.ArgumentTypeError(f"{_clip(text)!r} is not a date; use YYYY-MM-DD")
    if not FIRST_DAY <= day <= LAST_DAY:
        raise argparse.ArgumentTypeError(
            f"{day} is outside the market calendar ({FIRST_DAY} to {LAST_DAY})"
        )
    return day


SEED_HELP = f"synthetic market seed, 0-{MAX_SEED} (default 7)"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="A terminal trading console for an RSI/SMA strategy on Alpaca. "
        "With no command it opens the console (the offline demo when no credentials are stored).",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument(
        "--config",
        type=Path,
        help=f"config file (default: ${ENV_CONFIG} or $XDG_CONFIG_HOME/tapewatch/config.toml)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    demo = sub.add_parser(
        "demo", help="the offline demo: synthetic bars against a simulated broker"
    )
    demo.add_argument("--headless", action="store_true", help="no screen: log decisions to stdout")
    demo.add_argument(
        "--speed",
        type=_number(1, MAX_SPEED, "60"),
        default=60.0,
        help=f"replay speed, 1-{MAX_SPEED:g} × real time (default 60: a 5-minute bar every 5 s)",
    )
    demo.add_argument("--seed", type=_whole(0, MAX_SEED), default=7, help=SEED_HELP)
    demo.add_argument("--theme", help="console theme (see themes/)")
    _add_strategy_flags(demo)
    _add_data_dir(demo)

    bt = sub.add_parser("backtest", help="run the strategy over history, no sleeping")
    src = bt.add_mutually_exclusive_group()
    src.add_argument(
        "--data", type=Path, help="CSV or Parquet bars: timestamp,open,high,low,close,volume"
    )
    src.add_argument(
        "--synthetic", action="store_true", help="synthetic bars (the default when no --data)"
    )
    src.add_argument(
        "--alpaca",
        action="store_true",
        help="Alpaca's bars of --symbol from --start to --end (your keys; cached in the data dir)",
    )
    bt.add_argument("--seed", type=_whole(0, MAX_SEED), default=7, help=SEED_HELP)
    bt.add_argument(
        "--start",
        type=_date,
        default=date(2024, 1, 2),
        help="first day, YYYY-MM-DD (synthetic, --alpaca)",
    )
    bt.add_argument(
        "--end",
        type=_date,
        default=date(2024, 12, 31),
        help="last day, YYYY-MM-DD (synthetic, --alpaca)",
    )
    bt.add_argument(
        "--refresh", action="store_true", help="with --alpaca: download again, replace the cache"
    )
    bt.add_argument(
        "--bars",
        type=_whole(1, MAX_BARS),
        help=f"exactly this many synthetic bars from --start, 1-{MAX_BARS} (instead of --end)",
    )
    bt.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    bt.add_argument("--trades", type=Path, help="write every fill to this CSV file")
    bt.add_argument(
        "--compare", help="threshold pairs OVERBOUGHT/OVERSOLD to compare, e.g. 70/30,75/25"
    )
    bt.add_argument(
        "--plot",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="draw equity and drawdown under the table (default: when stdout is a terminal)",
    )
    bt.add_argument(
        "--html", type=Path, help="write a self-contained HTML report (charts, trades, months)"
    )
    bt.add_argument(
        "--engine-loop",
        action="store_true",
        help="run every bar through the engine loop instead of the vectorised path (same results)",
    )
    _add_strategy_flags(bt)
    _add_data_dir(bt)

    sandbox = sub.add_parser(
        "sandbox", help="a local Alpaca-compatible server on 127.0.0.1 for practice and tests"
    )
    sandbox.add_argument(
        "--port",
        type=_whole(0, 65535),
        default=8765,
        help="port on 127.0.0.1 (default 8765; 0 picks one)",
    )
    sandbox.add_argument(
        "--seed", type=_whole(0, MAX_SEED), default=7, help=f"market seed, 0-{MAX_SEED} (default 7)"
    )
    sandbox.add_argument(
        "--bar-interval",
        type=_number(0, 3600, "60", above=True),
        default=60.0,
        help="real seconds between 1-minute bars, up to 3600 (default 60)",
    )
    sandbox.add_argument(
        "--rate-limit",
        type=_whole(1, 100_000),
        default=200,
        help="requests per minute per key, 1-100000 (default 200)",
    )
    sandbox.add_argument(
        "--live", action="store_true", help="behave as the live endpoint (paper keys get 401)"
    )

    from tapewatch.console.login_cli import add_credential_commands
    from tapewatch.console.observability_cli import add_metrics_flags, add_observability_commands
    from tapewatch.console.run_cli import add_run_command
    from tapewatch.console.trades_cli import add_trades_command

    run = add_run_command(sub, _add_strategy_flags)
    run.add_argument(
        "--confirm-live",
        action="store_true",
        help="with --headless --live: yes, trade real money (otherwise type LIVE when asked "
        "on a terminal; without either nothing starts)",
    )
    add_trades_command(sub, _date)
    from tapewatch.console.sweep_cli import add_sweep_command

    add_sweep_command(sub, _add_strategy_flags, _add_data_dir, _date, _whole, SEED_HELP, MAX_BARS)
    from tapewatch.console.service_cli import add_service_command

    add_service_command(sub)
    from tapewatch.console.status_cli import add_status_command

    add_status_command(sub)
    from tapewatch.console.attach_cli import add_attach_command
    from tapewatch.console.serve_cli import add_serve_command

    add_attach_command(sub)
    add_serve_command(sub)
    add_credential_commands(sub)
    add_observability_commands(sub)
    add_metrics_flags(demo)
    return parser


def settings(args: argparse.Namespace) -> Settings:
    """Defaults < the config file < the flags the user typed (those not None), as the one
    ``Settings`` the session is built from; worked out once per invocation (``main`` checks it
    before any command starts)."""
    cached: Settings | None = getattr(args, "_settings", None)
    if cached is not None:
        return cached
    from tapewatch.console.observability_cli import metrics_flags
    from tapewatch.engine.api.settings import load_settings

    flags: dict[str, object] = {name: getattr(args, name, None) for name in ENGINE_FLAGS}
    flags.update(metrics_flags(args))
    for name in ("data_dir", "seed", "speed", "theme"):
        flags[name] = getattr(args, name, None)
    chosen = load_settings(config=getattr(args, "config", None), flags=flags)
    args._settings = chosen
    return chosen


def engine_config(args: argparse.Namespace) -> EngineConfig:
    """The engine part of ``settings(args)``."""
    return settings(args).engine


# ---------------------------------------------------------------------------- checks


def _check_args(args: argparse.Namespace) -> None:
    """What argparse types cannot see, checked before any command opens a file, the keyring or
    a socket: paths on disk, flags other modules register, the engine settings (file + flags)
    and the live-trading confirmation."""
    command = args.command
    data = getattr(args, "data_dir", None)
    if data is not None:
        _check_folder("--data-dir", data)
    port = getattr(args, "metrics_port", None)
    if port is not None and not 0 <= port <= 65535:
        raise UsageError(f"--metrics-port must be 0-65535 (got {_clip(port)}); e.g. 9464")
    if command == "audit":
        _check_file("--file", getattr(args, "file", None), must_exist=False)
    if command == "trades":
        _check_file("--journal", args.journal, must_exist=True)
    theme = getattr(args, "theme", None)
    if theme is not None and (
        not 0 < len(theme) <= 64 or not all(c.isalnum() or c in "-_." for c in theme)
    ):
        raise UsageError(f"--theme {_clip(theme)!r} is not a theme name; e.g. --theme dark")
    if command in (None, "demo", "backtest", "run"):
        config = engine_config(args)  # the whole Settings, checked (metrics too)
        if command == "backtest":
            _check_backtest(args, config)
        elif config.strategy.tf.unit == "Day":  # minute bars are aggregated up to hours only
            raise UsageError(
                "--timeframe 1Day is for backtests; the console, demo and run use 1Min-23Hour"
            )
    if command == "run" and args.live and args.headless:
        _confirm_live(args)


def _path(flag: str, value: str | Path) -> Path:
    text = str(value)
    if not text.strip():
        raise UsageError(f"{flag} must not be empty; name a path")
    if "\0" in text:
        raise UsageError(f"{flag} {_clip(text)!r} contains a NUL character; name a real path")
    return Path(text).expanduser()


def _probe(flag: str, path: Path) -> tuple[Path | None, Path]:
    """(the path if it exists, else None; the nearest existing ancestor)."""
    try:
        if path.exists():
            return path, path
        return None, next((p for p in path.absolute().parents if p.exists()), Path("/"))
    except OSError as exc:  # a name too long, a loop of links…
        raise UsageError(f"{flag} {path} cannot be used ({exc.strerror or exc})") from None


def _check_folder(flag: str, value: str | Path) -> None:
    path = _path(flag, value)
    found, ancestor = _probe(flag, path)
    if found is not None and not found.is_dir():
        raise UsageError(f"{flag} {path} is a file, not a folder; choose a folder")
    if found is None and not ancestor.is_dir():
        raise UsageError(f"{flag} {path}: {ancestor} is a file, not a folder; choose a folder")


def _check_file(flag: str, value: str | Path | None, *, must_exist: bool) -> None:
    if value is None:
        return
    path = _path(flag, value)
    found, ancestor = _probe(flag, path)
    if found is not None and found.is_dir():
        raise UsageError(f"{flag} {path} is a folder; name a file in it")
    if found is None and must_exist:
        raise UsageError(f"{flag} {path} does not exist; check the path")
    if found is None and not ancestor.is_dir():
        raise UsageError(f"{flag} {path}: {ancestor} is a file, not a folder")


def _check_writable(flag: str, value: Path | None) -> None:
    """An output file: not a folder, in a folder that exists, writable by this user."""
    import os

    if value is None:
        return
    _check_file(flag, value, must_exist=False)
    path = _path(flag, value)
    folder = path.absolute().parent
    if not folder.is_dir():
        raise UsageError(f"{flag}: folder {folder} does not exist; create it or pick another")
    target = path if path.exists() else folder
    if not os.access(target, os.W_OK):
        raise UsageError(f"{flag}: cannot write {target} (permission denied); pick another path")


def _check_backtest(args: argparse.Namespace, config: EngineConfig) -> None:
    _check_file("--data", args.data, must_exist=True)
    _check_writable("--trades", args.trades)
    _check_writable("--html", args.html)
    if args.refresh and not args.alpaca:
        raise UsageError("--refresh re-downloads Alpaca history: use it with --alpaca")
    if args.alpaca and args.bars is not None:
        raise UsageError("--bars is for synthetic bars; with --alpaca give --start and --end")
    if args.compare is not None and args.compare.count(",") >= MAX_COMPARE:
        raise UsageError(f"--compare takes at most {MAX_COMPARE} pairs; e.g. 70/30,75/25")
    if args.data is not None:
        return
    per_session = -(-23_400 // config.strategy.tf.seconds)  # 6.5 h: bars in a full session
    if args.bars is not None:
        sessions = -(-args.bars // per_session)
        last = args.start.toordinal() + sessions * 7 // 5 + 60
        if last > LAST_DAY.toordinal():
            raise UsageError(
                f"--bars {args.bars} from --start {args.start} runs past {LAST_DAY}, the end of "
                "the market calendar; ask for fewer bars or start earlier"
            )
        return
    days = max(args.end.toordinal() - args.start.toordinal(), 0)
    bars = days * 252 // 365 * per_session
    if bars > MAX_BARS:
        raise UsageError(
            f"--start {args.start} to --end {args.end} holds about {bars:,} bars of "
            f"{config.strategy.timeframe}, more than {MAX_BARS:,}; narrow the range or use --bars"
        )


def _confirm_live(args: argparse.Namespace) -> None:
    """Real money needs a yes: --confirm-live, or LIVE typed on a terminal. Nothing (keyring,
    network, journal) has been touched when this refuses."""
    if args.confirm_live:
        return
    stdin = sys.stdin
    try:
        interactive = stdin is not None and stdin.isatty()
    except ValueError:  # a closed stdin
        interactive = False
    if not interactive:
        raise UsageError(
            "--live trades real money: add --confirm-live to go on (or run it on a terminal "
            "and type LIVE when asked); nothing was started"
        )
    sys.stderr.write("tapewatch run --live trades REAL MONEY on the live account. Type LIVE: ")
    sys.stderr.flush()
    if stdin.readline().strip() != "LIVE":
        raise UsageError("live trading not confirmed (LIVE was not typed); nothing was started")


def _cmd_backtest(args: argparse.Namespace) -> int:
    from tapewatch.console.backtest_cli import run_backtest_command

    return run_backtest_command(args, engine_config(args))


def _cmd_demo(args: argparse.Namespace) -> int:
    config = engine_config(args)
    if not args.speed > 0:
        raise UsageError(f"--speed must be positive (got {args.speed:g}); e.g. 60")
    if args.headless:
        from tapewatch.console.demo_cli import run_demo_headless

        return run_demo_headless(args, settings(args))
    from tapewatch.console.launch import launch_console

    return launch_console(args, demo=True, config=config)


def _cmd_console(args: argparse.Namespace) -> int:
    from tapewatch.console.launch import launch_console

    return launch_console(args, demo=False, config=engine_config(args))


SANDBOX_EXTRA = "the sandbox needs its server packages: pip install 'tapewatch[sandbox]'"


def _cmd_sandbox(args: argparse.Namespace) -> int:
    try:
        from tapewatch.sandbox.server import SandboxConfig, run_sandbox
    except ImportError as exc:  # aiohttp and msgpack come with the [sandbox] extra
        if exc.name not in ("aiohttp", "msgpack"):
            raise
        print(f"{PROG} sandbox: {SANDBOX_EXTRA}", file=sys.stderr)
        return 2

    # --port, --seed, --bar-interval and --rate-limit are range-checked by their argparse types
    return run_sandbox(
        SandboxConfig(
            port=args.port,
            seed=args.seed,
            bar_interval=args.bar_interval,
            rate_limit=args.rate_limit,
            live=args.live,
        )
    )


def _cmd_run(args: argparse.Namespace) -> int:
    from tapewatch.console.run_cli import cmd_run

    return cmd_run(args)


def _cmd_credentials(args: argparse.Namespace) -> int:
    return int(args.credential_command(args))


def _cmd_sweep(args: argparse.Namespace) -> int:
    from tapewatch.console.sweep_cli import cmd_sweep

    return cmd_sweep(args)


def _cmd_trades(args: argparse.Namespace) -> int:
    from tapewatch.console.trades_cli import cmd_trades

    return cmd_trades(args)


def _cmd_observability(args: argparse.Namespace) -> int:
    from tapewatch.console.observability_cli import COMMANDS as OBSERVABILITY

    return OBSERVABILITY[args.command](args)


def _cmd_status(args: argparse.Namespace) -> int:
    from tapewatch.console.status_cli import cmd_status

    return cmd_status(args)


def _cmd_attach(args: argparse.Namespace) -> int:
    from tapewatch.console.attach_cli import cmd_attach

    return cmd_attach(args)


def _cmd_serve(args: argparse.Namespace) -> int:
    from tapewatch.console.serve_cli import cmd_serve

    return cmd_serve(args)


def _cmd_service(args: argparse.Namespace) -> int:
    from tapewatch.console.service_cli import cmd_service

    return cmd_service(args)


COMMANDS = {
    None: _cmd_console,
    "demo": _cmd_demo,
    "backtest": _cmd_backtest,
    "sandbox": _cmd_sandbox,
    "run": _cmd_run,
    "login": _cmd_credentials,
    "logout": _cmd_credentials,
    "whoami": _cmd_credentials,
    "doctor": _cmd_observability,
    "audit": _cmd_observability,
    "trades": _cmd_trades,
    "sweep": _cmd_sweep,
    "service": _cmd_service,
    "status": _cmd_status,
    "attach": _cmd_attach,
    "serve": _cmd_serve,
}


def _log_path() -> Path:
    from tapewatch.engine.api.observability import log_path
    from tapewatch.engine.api.settings import data_dir

    return log_path(data_dir())


def _record_crash() -> str:
    """Write the traceback to the log file; return where, for the one-line message."""
    path = _log_path()
    try:
        from tapewatch.engine.api.storage import private_dir, touch_private

        private_dir(path.parent)
        touch_private(path)  # the log is 0600 in a 0700 folder, whatever the umask
        logger = logging.getLogger("tapewatch.crash")
        handler = logging.FileHandler(path)
        logger.addHandler(handler)
        logger.exception("unexpected error")
        handler.close()
        logger.removeHandler(handler)
        return str(path)
    except OSError:
        return "the log (unwritable)"


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Every ``TapewatchError`` (engine.settings.errors) is one line on stderr
    and its ``exit_code`` (2: usage or configuration, 1: a failure at run time); anything else
    is an internal error: one line pointing at the log, exit 1."""
    _typed[:] = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = COMMANDS[args.command]
    try:
        _check_args(args)
        code = handler(args)
    except TapewatchError as exc:
        sys.stderr.write(one_line(f"{PROG}: error: {exc}") + "\n")
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        where = _record_crash()
        sys.stderr.write(
            one_line(f"{PROG}: internal error: {type(exc).__name__}: {exc} (details in {where})")
            + "\n"
        )
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
