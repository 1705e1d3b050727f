"""``tapewatch doctor``, ``tapewatch audit verify`` and the ``--metrics-port`` flags.

The CLI module registers these with ``add_observability_commands(subparsers)`` and dispatches
``doctor`` to ``cmd_doctor`` and ``audit`` to ``cmd_audit``; ``demo``/``run`` call
``add_metrics_flags(parser)`` and, once their engine exists, ``start_metrics(engine, args)``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.config import data_dir

if TYPE_CHECKING:
    from engine.engine import Engine
    from engine.metrics import MetricsServer

# Registering flags must stay cheap (it runs before the console paints): the metrics, audit
# and runtime modules (numpy, prometheus-client) are imported by the commands that use them.
DEFAULT_HOST = "127.0.0.1"

USAGE_ERROR = 2


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


def add_metrics_flags(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("metrics")
    g.add_argument(
        "--metrics-port",
        type=int,
        metavar="N",
        help="serve Prometheus metrics on this port (off unless given; 0 picks a free port)",
    )
    g.add_argument(
        "--metrics-host",
        default=DEFAULT_HOST,
        help=f"address to serve metrics on (default {DEFAULT_HOST}; loopback only)",
    )


def start_metrics(engine: Engine, args: argparse.Namespace) -> MetricsServer | None:
    """Serve ``engine``'s metrics if ``--metrics-port`` was given; the caller stops the server.

    Call it inside the engine's running event loop so the loop-lag sampler starts too
    (otherwise call ``server.sampler.start()`` from the loop). A port in use raises
    ``ConfigError`` with one line saying so.
    """
    port = getattr(args, "metrics_port", None)
    if port is None:
        return None
    from engine.metrics import EngineMetrics

    host = getattr(args, "metrics_host", None) or DEFAULT_HOST
    metrics = EngineMetrics(engine, data_dir=data_dir(getattr(args, "data_dir", None)))
    return metrics.server(host, port).start()


def cmd_doctor(args: argparse.Namespace) -> int:
    from engine.audit import default_audit_path, verify
    from engine.clock import LiveClock
    from engine.logs import log_path
    from engine.runtime import collect_runtime_facts, format_facts

    where = data_dir(getattr(args, "data_dir", None))
    facts = collect_runtime_facts(LiveClock().now(), data_dir=where)
    audit_file = default_audit_path(where)
    if audit_file.exists():
        result = verify(audit_file)
        state = result.message if result.ok else f"BROKEN: {result.message}"
    else:
        state = "none yet"
    extra = [("log file", str(log_path(where))), ("audit trail", f"{audit_file} ({state})")]
    print(format_facts(facts, extra))
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    """0 when the chain holds, 1 when it is broken, 2 when there is no file to check."""
    from engine.audit import default_audit_path, verify

    path: Path = args.file or default_audit_path(data_dir(getattr(args, "data_dir", None)))
    if not path.exists():
        sys.stderr.write(
            f"tapewatch: error: no audit file at {path}; pass --file PATH or --data-dir DIR\n"
        )
        return USAGE_ERROR
    result = verify(path)
    if result.ok:
        print(f"{path}: OK, {result.message}")
        return 0
    print(f"{path}: {result.message}")
    print(f"the {result.records} record(s) before seq {result.first_broken_seq} are intact")
    return 1


def cmd_audit(args: argparse.Namespace) -> int:
    if args.audit_command == "verify":
        return cmd_audit_verify(args)
    raise AssertionError(f"unknown audit action {args.audit_command!r}")  # argparse prevents it


COMMANDS = {"doctor": cmd_doctor, "audit": cmd_audit}
