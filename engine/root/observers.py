"""What watches a running engine from outside: the order log, the audit trail, metrics.

Attached the same way to every session kind (demo, paper, live; headless or under the
console), from the session's settings: ``[metrics]`` in the config file or ``--metrics-*``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tapewatch.engine.core.engine import Engine
from tapewatch.engine.model.events import Notice
from tapewatch.engine.observability.audit import AuditTrail, attach_audit, default_audit_path
from tapewatch.engine.observability.logs import log_order_event
from tapewatch.engine.settings.config_file import MetricsSettings

if TYPE_CHECKING:
    from tapewatch.engine.observability.metrics import MetricsServer
log = logging.getLogger("tapewatch.metrics")


@dataclass(slots=True)
class Observers:
    trail: AuditTrail
    metrics: MetricsServer | None

    def close(self) -> None:
        """Write any held audit record and stop serving metrics."""
        self.trail.flush()
        if self.metrics is not None:
            self.metrics.stop()


def serve_metrics(
    engine: Engine, metrics: MetricsSettings, data_dir: Path, *, headless: bool
) -> MetricsServer | None:
    """Serve ``engine``'s metrics when a port is set; the caller stops the server.

    Call it inside the engine's running loop so the loop-lag sampler starts too. A port in use
    raises ``ConfigError``. The address (the port chosen for port 0) goes to stdout headless,
    to a notice under the console.
    """
    if metrics.port is None:
        return None
    from tapewatch.engine.observability.metrics import (
        EngineMetrics,  # numpy, prometheus-client: only when asked
    )

    server = EngineMetrics(engine, data_dir=data_dir).server(metrics.host, metrics.port).start()
    line = f"metrics: serving on {server.url}"
    log.info(line)
    if headless:
        print(line, flush=True)
    else:  # the console owns the screen: say it there
        engine.bus.publish(Notice(ts=engine.clock.now(), level="info", message=line))
    return server


def attach_observers(
    engine: Engine, metrics: MetricsSettings, data_dir: Path, *, headless: bool
) -> Observers:
    """Order log lines, the audit trail and (when configured) metrics for ``engine``."""
    engine.add_sink(log_order_event)
    trail = attach_audit(engine, default_audit_path(data_dir))
    return Observers(
        trail=trail, metrics=serve_metrics(engine, metrics, data_dir, headless=headless)
    )
