"""``tapewatch doctor``, ``tapewatch audit verify`` and the ``--metrics-port`` flags.

The CLI module registers these with ``add_observability_commands(subparsers)`` and dispatches
``doctor`` to ``cmd_doctor`` and ``audit`` to ``cmd_audit``; ``demo``/``run`` call
``add_metrics_flags(parser)`` and, once their engine exists, ``start_metrics(engine, args)``.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.config import ConfigError, data_dir

if TYPE_CHECKING:
    from engine.engine import Engine
    from engine.metrics import MetricsServer

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
        help=f"address to serve metrics on (default {DEFAULT_HOST}; others need "
        "--metrics-allow-remote)",
    )
    g.add_argument(
        "--metrics-allow-remote",
        action="store_true",
        help="allow a --metrics-host other than loopback (metrics show positions and P&L)",
    )


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


def check_metrics_args(args: argparse.Namespace) -> str | None:
    """Check the metrics flags before any session starts; the warning to print, if any.

    Raises ``ConfigError`` (one line) for a port out of range or a host off loopback without
    ``--metrics-allow-remote``: metrics carry positions, orders and P&L.
    """
    port = getattr(args, "metrics_port", None)
    host = getattr(args, "metrics_host", None) or DEFAULT_HOST
    shown = host if len(host) <= SHOWN else host[:SHOWN] + "…"
    if port is None:
        return None
    if not 0 <= port <= 65535:
        raise ConfigError(f"--metrics-port must be 0-65535 (got {port}); e.g. 9464, or 0 for any")
    if _is_loopback(host):
        return None
    if not getattr(args, "metrics_allow_remote", False):
        raise ConfigError(
            f"--metrics-host {shown} is not a loopback address: anyone who can reach it would "
            "see positions, orders and P&L; add --metrics-allow-remote to mean it, or drop "
            "--metrics-host"
        )
    return (
        f"warning: metrics will be served on {shown}, reachable from the network "
        "(--metrics-allow-remote): they show positions, orders and P&L"
    )


def start_metrics(engine: Engine, args: argparse.Namespace) -> MetricsServer | None:
    """Serve ``engine``'s metrics if ``--metrics-port`` was given; the caller stops the server.

    Call it inside the engine's running event loop so the loop-lag sampler starts too
    (otherwise call ``server.sampler.start()`` from the loop). A port in use raises
    ``ConfigError`` with one line saying so. The address served (the port the system chose
    for ``--metrics-port 0``) goes to stdout in headless runs and to a notice in the console.
    """
    port = getattr(args, "metrics_port", None)
    if port is None:
        return None
    check_metrics_args(args)
    from engine.metrics import EngineMetrics

    host = getattr(args, "metrics_host", None) or DEFAULT_HOST
    metrics = EngineMetrics(engine, data_dir=data_dir(getattr(args, "data_dir", None)))
    server = metrics.server(host, port).start()
    line = f"metrics: serving on {server.url}"
    log.info(line)
    if getattr(args, "headless", False):
        print(line, flush=True)
    else:  # the console owns the screen: say it there
        from engine.events import Notice

        engine.bus.publish(Notice(ts=engine.clock.now(), level="info", message=line))
    return server


def cmd_doctor(args: argparse.Namespace) -> int:
    from engine.audit import default_audit_path, verify
    from engine.clock import LiveClock
    from engine.logs import log_path
    from engine.runtime import collect_runtime_facts, format_facts

    where = data_dir(getattr(args, "data_dir", None))
    facts = collect_runtime_facts(LiveClock().now(), data_dir=where)
    audit_file = default_audit_path(where)
    if audit_file.exists():
        from engine.audit_anchor import read_anchors

        result = verify(audit_file, anchors=read_anchors(where))
        state = result.message if result.ok else f"BROKEN: {result.message}"
    else:
        state = "none yet"
    extra = [("log file", str(log_path(where))), ("audit trail", f"{audit_file} ({state})")]
    print(format_facts(facts, extra))
    return 0


def _audit_data_dir(args: argparse.Namespace) -> Path | None:
    """Whose journals anchor the file: --data-dir, the default one, or the folder a
    ``--file <dir>/audit/operator-audit.jsonl`` sits in."""
    from engine.audit import default_audit_path

    given = getattr(args, "data_dir", None)
    if given or args.file is None:
        return data_dir(given)
    folder = Path(args.file).absolute().parent.parent
    return folder if default_audit_path(folder) == Path(args.file).absolute() else None


def cmd_audit_verify(args: argparse.Namespace) -> int:
    """0 when the chain holds, 1 when it is broken or cut short of what the journals anchor,
    2 when there is nothing to check."""
    from engine.audit import default_audit_path, verify
    from engine.audit_anchor import read_anchors

    where = _audit_data_dir(args)
    path: Path = args.file or default_audit_path(data_dir(getattr(args, "data_dir", None)))
    anchors = read_anchors(where) if where is not None else []
    if not path.exists() and not anchors:
        sys.stderr.write(
            f"tapewatch: error: no audit file at {path}; pass --file PATH or --data-dir DIR\n"
        )
        return USAGE_ERROR
    result = verify(path, anchors=anchors)
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
