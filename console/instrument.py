"""What watches a running engine from outside: the order log file, the audit trail, metrics.

The same wiring serves the console and the headless modes, so `tapewatch demo --headless`,
`tapewatch run --headless` and the console export the same metrics and keep the same audit.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from engine.audit import AuditTrail, attach_audit, default_audit_path
from engine.engine import Engine
from engine.logs import log_order_event
from engine.metrics import MetricsServer


@dataclass(slots=True)
class Instruments:
    trail: AuditTrail
    metrics: MetricsServer | None

    def close(self) -> None:
        """Write any held audit record and stop serving metrics."""
        self.trail.flush()
        if self.metrics is not None:
            self.metrics.stop()


def instrument(engine: Engine, data_dir: Path, args: argparse.Namespace) -> Instruments:
    """Attach the observers; call it inside the engine's running loop (metrics samples lag)."""
    from console.observability_cli import start_metrics

    engine.bus.add_sink(log_order_event)
    trail = attach_audit(engine, default_audit_path(data_dir))
    return Instruments(trail=trail, metrics=start_metrics(engine, args))
