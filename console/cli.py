"""The ``tapewatch`` command line: one entry point, subcommands, one-line errors.

Heavy imports (textual, numpy, alpaca-py) happen inside the subcommand that needs them, so
``tapewatch --help`` answers at once. Every user error is one line on stderr and exit status 2;
an unexpected failure is one line pointing at the log file, never a traceback on the screen.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from engine import __version__

if TYPE_CHECKING:
    from engine.config import EngineConfig
    from engine.config_file import FileConfig

USAGE_ERROR = 2
PROG = "tapewatch"
ENV_CONFIG = "TAPEWATCH_CONFIG"  # engine.config_file.ENV_CONFIG (not imported: --help stays fast)
ENGINE_FLAGS = (
    "symbol",
    "timeframe",
    "cash",
    "rsi_period",
    "sma_period",
    "rsi_oversold",
    "rsi_overbought",
    "rsi_method",
    "position_pct",
    "max_drawdown",
    "slippage_bps",
    "commission",
    "commission_per_share",
)
"""argparse destinations of the strategy flags; None means "not given": the file's value stands."""


class UsageError(Exception):
    """A mistake in what the user asked for: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see '{self.prog} --help')\n")
        raise SystemExit(USAGE_ERROR)


def _add_strategy_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("strategy (flags given override the config file)")
    g.add_argument(
        "--config",
        type=Path,
        default=argparse.SUPPRESS,  # keeps a --config given before the command
        help=f"config file (default: ${ENV_CONFIG} or $XDG_CONFIG_HOME/tapewatch/config.toml)",
    )
    g.add_argument("--symbol", default=None, help="ticker to trade (default SPY)")
    g.add_argument(
        "--timeframe", default=None, help="bar length: 1Min, 5Min, 15Min, 1Hour (default 5Min)"
    )
    g.add_argument(
        "--cash",
        type=float,
        default=None,
        help="starting cash for simulation (default 100000)",
    )
    g.add_argument("--rsi-period", type=int, help="RSI look-back in bars (default 14)")
    g.add_argument("--sma-period", type=int, help="SMA look-back in bars (default 50)")
    g.add_argument(
        "--rsi-oversold", type=float, default=None, help="buy below this RSI (default 30)"
    )
    g.add_argument(
        "--rsi-overbought", type=float, default=None, help="sell above this RSI (default 70)"
    )
    g.add_argument(
        "--rsi-method", choices=("sma", "wilder"), default=None, help="RSI averaging (default sma)"
    )
    g.add_argument(
        "--position-pct",
        type=float,
        default=None,
        help="entry size as a fraction of equity (default 0.02)",
    )
    g.add_argument(
        "--max-drawdown",
        type=float,
        default=None,
        help="halt at this drawdown from the day's start (default 0.05)",
    )
    g.add_argument(
        "--slippage-bps",
        type=float,
        default=None,
        help="simulated slippage in basis points (default 0)",
    )
    g.add_argument(
        "--commission",
        type=float,
        default=None,
        help="simulated commission per order in $ (default 0)",
    )
    g.add_argument(
        "--commission-per-share",
        type=float,
        default=None,
        help="simulated commission per share in $ (default 0)",
    )


def _add_data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir",
        help="where the journal and logs live (default: $TAPEWATCH_DATA_DIR or XDG data dir)",
    )


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date; use YYYY-MM-DD") from None


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
        type=float,
        default=60.0,
        help="replay speed, × real time (default 60: a 5-minute bar every 5 s)",
    )
    demo.add_argument("--seed", type=int, default=7, help="synthetic market seed (default 7)")
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
    bt.add_argument("--seed", type=int, default=7, help="synthetic market seed (default 7)")
    bt.add_argument(
        "--start", type=_date, default=date(2024, 1, 2), help="first day, YYYY-MM-DD (synthetic)"
    )
    bt.add_argument(
        "--end", type=_date, default=date(2024, 12, 31), help="last day, YYYY-MM-DD (synthetic)"
    )
    bt.add_argument(
        "--bars", type=int, help="exactly this many synthetic bars from --start (instead of --end)"
    )
    bt.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    bt.add_argument("--trades", type=Path, help="write every fill to this CSV file")
    bt.add_argument(
        "--compare", help="threshold pairs OVERBOUGHT/OVERSOLD to compare, e.g. 70/30,75/25"
    )
    _add_strategy_flags(bt)

    sandbox = sub.add_parser(
        "sandbox", help="a local Alpaca-compatible server on 127.0.0.1 for practice and tests"
    )
    sandbox.add_argument(
        "--port", type=int, default=8765, help="port on 127.0.0.1 (default 8765; 0 picks one)"
    )
    sandbox.add_argument("--seed", type=int, default=7, help="market seed (default 7)")
    sandbox.add_argument(
        "--bar-interval",
        type=float,
        default=60.0,
        help="real seconds between 1-minute bars (default 60)",
    )
    sandbox.add_argument(
        "--rate-limit", type=int, default=200, help="requests per minute per key (default 200)"
    )
    sandbox.add_argument(
        "--live", action="store_true", help="behave as the live endpoint (paper keys get 401)"
    )

    from console.login_cli import add_credential_commands
    from console.observability_cli import add_metrics_flags, add_observability_commands
    from console.run_cli import add_run_command

    add_run_command(sub, _add_strategy_flags)
    add_credential_commands(sub)
    add_observability_commands(sub)
    add_metrics_flags(demo)
    return parser


def _file_config(args: argparse.Namespace) -> FileConfig:
    from engine.config_file import load_config_file

    return load_config_file(getattr(args, "config", None))


def engine_config(args: argparse.Namespace) -> EngineConfig:
    """Defaults < the config file < the flags the user typed (those not None)."""
    overrides = {name: getattr(args, name, None) for name in ENGINE_FLAGS}
    return _file_config(args).engine_config(overrides)


def _cmd_backtest(args: argparse.Namespace) -> int:
    from console.backtest_cli import run_backtest_command

    return run_backtest_command(args, engine_config(args))


def _cmd_demo(args: argparse.Namespace) -> int:
    config = engine_config(args)
    if not args.speed > 0:
        raise UsageError(f"--speed must be positive (got {args.speed:g}); e.g. 60")
    if args.headless:
        from console.demo_cli import run_demo_headless

        return run_demo_headless(args, config)
    from console.launch import launch_console

    return launch_console(args, demo=True, config=config)


def _cmd_console(args: argparse.Namespace) -> int:
    from console.launch import launch_console

    return launch_console(args, demo=False, config=engine_config(args))


def _cmd_sandbox(args: argparse.Namespace) -> int:
    from engine.sandbox.server import SandboxConfig, run_sandbox

    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be 0-65535 (got {args.port})")
    if not args.bar_interval > 0:
        raise UsageError("--bar-interval must be positive seconds, e.g. 60")
    if args.rate_limit < 1:
        raise UsageError("--rate-limit must be at least 1 request per minute")
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
    from console.run_cli import cmd_run

    return cmd_run(args)


def _cmd_credentials(args: argparse.Namespace) -> int:
    return int(args.credential_command(args))


def _cmd_observability(args: argparse.Namespace) -> int:
    from console.observability_cli import COMMANDS as OBSERVABILITY

    return OBSERVABILITY[args.command](args)


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
}


def _log_path() -> Path:
    from engine.config import data_dir
    from engine.logs import log_path

    return log_path(data_dir())


def _record_crash() -> str:
    """Write the traceback to the log file; return where, for the one-line message."""
    path = _log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
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
    from engine.config import ConfigError
    from engine.feeds.base import DataError

    parser = build_parser()
    args = parser.parse_args(argv)
    handler = COMMANDS[args.command]
    try:
        code = handler(args)
    except (UsageError, ConfigError, DataError) as exc:
        sys.stderr.write(f"{PROG}: error: {exc}\n")
        return USAGE_ERROR
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        known = _known_error(exc)
        if known is not None:
            sys.stderr.write(f"{PROG}: error: {known}\n")
            return USAGE_ERROR
        where = _record_crash()
        sys.stderr.write(
            f"{PROG}: internal error: {type(exc).__name__}: {exc} (details in {where})\n"
        )
        return 1
    return code


def _known_error(exc: Exception) -> str | None:
    """Errors users cause that live in optional modules (journal, credentials…)."""
    from engine.credentials import CredentialError
    from engine.journal import JournalError

    if isinstance(exc, JournalError | CredentialError):
        return str(exc)
    return None


if __name__ == "__main__":
    sys.exit(main())
