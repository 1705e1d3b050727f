"""What a console process needs from the engine's host machinery: the bounded exit, the facts.

``ExitDeadline`` ends a stopping process even when a thread hangs (a signal or a lost
terminal); ``runtime_facts`` is the help screen's description of this machine.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tapewatch.engine.root.stop_deadline import STOP_DEADLINE, ExitDeadline

__all__ = ["STOP_DEADLINE", "ExitDeadline", "runtime_facts"]


def runtime_facts(data_dir: Path | None, extra: Iterable[tuple[str, str]] = ()) -> str:
    """Versions, keyring backend, data folder (and ``extra`` rows, e.g. the doctor's file
    checks): slow (the keyring may talk to D-Bus), so the console calls it in a thread."""
    from tapewatch.engine.core.clock import LiveClock
    from tapewatch.engine.observability.runtime import collect_runtime_facts, format_facts

    return format_facts(collect_runtime_facts(LiveClock().now(), data_dir=data_dir), extra)
