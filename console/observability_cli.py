"""``tapewatch doctor``, ``tapewatch audit verify`` and the ``--metrics-port`` flags.

The CLI module registers these with ``add_observability_commands(subparsers)`` and dispatches
``doctor`` to ``cmd_doctor`` and ``audit`` to ``cmd_audit``; ``demo``/``run`` call
``add_metrics_flags(parser)`` and, once their engine exists, ``start_metrics(engine, args)``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tapewatch.engine.api.settings import data_dir

if TYPE_CHECKING:
    from tapewatch.engine.api.observability import MetricsServer
    from tapewatch.engine.api.sessions import Engine
    from tapewatch.engine.api.settings import MetricsSettings
# Registering flags must stay cheap (it runs before the console paints): the metrics, audit
# and runtime modules (numpy, prometheus-client) are imported by the commands that use them.
DEFAULT_HOST = "127.0.0.1"

USAGE_ERROR = 2
SHOWN = 40  # characters of a bad value a message repeats

log = logging.getLogger("tapewatch.metrics")


def add_observability_commands(subparsers: Any) -> None:
    """Register ``doctor`` and ``audit verify [--file PATH]`` on the CLI's subparsers."""
    doctor = subparsers.add_parser(
        "doctor", help="show the runtime, keyring, data directory, endpoints and market hours"
    )
    doctor.add_argument("--data-dir", help="the data directory to report on")
    audit = subparsers.add_parser("audit", help="the operator audit trail")
    actions = audit.add_subparsers(
        dest="audit_command", metavar="ACTION", required=True, parser_class=type(audit)
    )
    check = actions.add_parser("verify", help="check the audit file's hash chain")
    check.add_argument("--file", type=Path, help="audit file (default: <data dir>/audit/...)")
    check.add_argument("--data-dir", help="data directory holding the audit file")


class _Given(argparse.Action):
    """Stores the value and notes that it was typed: a typed flag beats the config file even
    when it repeats the default."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        setattr(namespace, self.dest, values)
        setattr(namespace, f"_given_{self.dest}", True)


def add_metrics_flags(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("metrics (flags given override the config file's [metrics])")
    g.add_argument(
        "--metrics-port",
        type=int,
        metavar="N",
        help="serve Prometheus metrics on this port (off unless given here or in [metrics] "
        "port; 0 picks a free port)",
    )
    g.add_argument(
        "--metrics-host",
        default=DEFAULT_HOST,
        action=_Given,
        help=f"address to serve metrics on (default {DEFAULT_HOST}; others need "
        "--metrics-allow-remote)",
    )
    g.add_argument(
        "--metrics-allow-remote",
        action="store_true",
        help="allow a --metrics-host other than loopback (metrics show positions and P&L)",
    )


def metrics_flags(args: argparse.Namespace) -> dict[str, object]:
    """The metrics flags the user typed, as engine.settings.model.load_settings takes them."""
    typed_host = getattr(args, "_given_metrics_host", False)
    return {
        "metrics_port": getattr(args, "metrics_port", None),
        "metrics_host": getattr(args, "metrics_host", None) if typed_host else None,
        "metrics_allow_remote": getattr(args, "metrics_allow_remote", False),
    }


def _metrics_of(args: argparse.Namespace) -> MetricsSettings:
    from tapewatch.engine.api.settings import MetricsSettings

    return MetricsSettings(
        port=getattr(args, "metrics_port", None),
        host=getattr(args, "metrics_host", None) or DEFAULT_HOST,
        allow_remote=getattr(args, "metrics_allow_remote", False),
    )


def check_metrics_args(args: argparse.Namespace) -> str | None:
    """The metrics flags alone, checked (engine.settings.model.check_metrics): the warning to
    print, if any; ``ConfigError`` for a bad port or a remote host without the flag."""
    from tapewatch.engine.api.settings import check_metrics

    return check_metrics(_metrics_of(args))


def start_metrics(engine: Engine, args: argparse.Namespace) -> MetricsServer | None:
    """Serve ``engine``'s metrics per the flags alone (the root's observers use the settings:
    flags over [metrics]); the caller stops the server."""
    check_metrics_args(args)
    from tapewatch.engine.api.observability import serve_metrics

    where = data_dir(getattr(args, "data_dir", None))
    headless = bool(getattr(args, "headless", False))
    return serve_metrics(engine, _metrics_of(args), where, headless=headless)


def cmd_doctor(args: argparse.Namespace) -> int:
    from tapewatch.engine.api.observability import default_audit_path, log_path, verify_audit
    from tapewatch.engine.api.process import runtime_facts

    where = data_dir(getattr(args, "data_dir", None))
    audit_file = default_audit_path(where)
    if audit_file.exists():
        from tapewatch.engine.api.observability import read_anchors

        result = verify_audit(audit_file, anchors=read_anchors(where))
        state = result.message if result.ok else f"BROKEN: {result.message}"
    else:
        state = "none yet"
    extra = [("log file", str(log_path(where))), ("audit trail", f"{audit_file} ({state})")]
    print(runtime_facts(where, extra))
    return 0


def _audit_data_dir(args: argparse.Namespace) -> Path | None:
    """Whose journals anchor the file: --data-dir, the default one, or the folder a
    ``--file <dir>/audit/operator-audit.jsonl`` sits in."""
    from tapewatch.engine.api.observability import default_audit_path

    given = getattr(args, "data_dir", None)
    if given or args.file is None:
        return data_dir(given)
    folder = Path(args.file).absolute().parent.parent
    return folder if default_audit_path(folder) == Path(args.file).absolute() else None


def cmd_audit_verify(args: argparse.Namespace) -> int:
    """0 when the chain holds, 1 when it is broken or cut short of what the journals anchor,
    2 when there is nothing to check."""
    from tapewatch.engine.api.observability import default_audit_path, read_anchors, verify_audit

    where = _audit_data_dir(args)
    path: Path = args.file or default_audit_path(data_dir(getattr(args, "data_dir", None)))
    anchors = read_anchors(where) if where is not None else []
    if not path.exists() and not anchors:
        sys.stderr.write(
            f"tapewatch: error: no audit file at {path}; pass --file PATH or --data-dir DIR\n"
        )
        return USAGE_ERROR
    result = verify_audit(path, anchors=anchors)
    if result.ok:
        print(f"{path}: OK, {result.message}")
        return 0
    print(f"{path}: {result.message}")
    if result.first_broken_seq is not None:
        print(f"the {result.records} record(s) before seq {result.first_broken_seq} are intact")
    return 1


def cmd_audit(args: argparse.Namespace) -> int:
    if args.audit_command == "verify":
        return cmd_audit_verify(args)
    raise AssertionError(f"unknown audit action {args.audit_command!r}")  # argparse prevents it


COMMANDS = {"doctor": cmd_doctor, "audit": cmd_audit}
