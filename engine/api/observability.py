"""Logs, the audit trail and metrics as a front end reaches them (``engine.observability``).

``setup_logging`` and ``log_path`` place the log under the data directory; ``redact`` is the
one secret filter every line a front end prints goes through; ``verify_audit`` and
``read_anchors`` back ``tapewatch audit``; ``serve_metrics`` starts the Prometheus endpoint.
"""

from tapewatch.engine.observability.audit import default_audit_path
from tapewatch.engine.observability.audit import verify as verify_audit
from tapewatch.engine.observability.audit_anchor import read_anchors
from tapewatch.engine.observability.logs import log_path, redact, setup_logging
from tapewatch.engine.observability.metrics import MetricsServer
from tapewatch.engine.root.observers import serve_metrics

__all__ = [
    "MetricsServer",
    "default_audit_path",
    "log_path",
    "read_anchors",
    "redact",
    "serve_metrics",
    "setup_logging",
    "verify_audit",
]
