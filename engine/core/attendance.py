"""The operator dead-man's switch: nobody watching for too long pauses new entries.

A paper or live engine is meant to be supervised. Once a host a console can attach to arms
it (the embedded console; a served ``run --headless``), when no console has been attached for
``[risk] unattended_pause_after`` (default 15 minutes; "off" disables), the next check during
the regular session pauses new entries with the operator-pause breaker — exits, breakers and
flatten go on — and says why; whoever attaches sees PAUSED and the reason, and one key
(resume) re-arms it. One trip per absence: attaching and leaving again starts a new count.
Time comes from the engine's clock, so tests drive it with an injected one.
"""

from __future__ import annotations

from datetime import datetime

from tapewatch.engine.settings.durations import describe


class Attendance:
    """Counts how long no console has been attached; says when that is too long."""

    def __init__(self, after_seconds: float | None, since: datetime) -> None:
        self.after_seconds = after_seconds
        self.clients = 0
        self._alone_since: datetime | None = since
        self._fired = False

    def arm(self, after_seconds: float | None, now: datetime) -> None:
        """Start watching (None: stay off); an absence counts from ``now`` at the earliest."""
        self.after_seconds = after_seconds
        if self.clients == 0:
            self._alone_since = now
            self._fired = False

    def attached(self, clients: int, now: datetime) -> None:
        """The host reports how many consoles are attached now (0 when the last one left)."""
        self.clients = max(0, clients)
        if self.clients:
            self._alone_since = None
            self._fired = False
        elif self._alone_since is None:
            self._alone_since = now

    def due(self, now: datetime, in_session: bool) -> str | None:
        """The pause's reason when the absence has lasted long enough (once per absence)."""
        since = self._alone_since
        after = self.after_seconds
        if after is None or since is None or self._fired or not in_session:
            return None
        if (now - since).total_seconds() < after:
            return None
        self._fired = True
        return f"unattended: no console attached for {describe(after)} (resume to trade on)"
