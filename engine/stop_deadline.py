"""The last resort of every stop: the process ends within a bound whatever is still waiting.

A clean stop (bar in hand finished, SessionStopped journaled, sockets closed) is the normal way
out, but a thread blocked in a broker call, a pool joined at interpreter exit or a frozen event
loop must never keep a stopped process alive: systemd would kill it, and its data-directory lock
would block every restart. ``ExitDeadline`` is armed when a stop is asked for (a signal, a lost
terminal) and, if the process is still alive when it expires, logs every thread's stack and
ends the process. It runs in a daemon thread, so it fires even while the main thread waits in
``threading._shutdown``. Unresolved orders are settled from the broker at the next start.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import IO

log = logging.getLogger("tapewatch.stop")

STOP_DEADLINE = 9.0
"""Seconds from a stop signal to the forced end: inside systemd's and the issue's 10 s."""


class ExitDeadline:
    """Ends the process ``seconds`` after ``arm`` unless it exits first (a daemon timer).

    Before it ends the process it writes every thread's stack to the log file (so an overrun
    can be diagnosed) and flushes the log. Arming twice keeps the first deadline.
    """

    def __init__(
        self,
        seconds: float,
        *,
        status: int = 1,
        exit_now: Callable[[int], None] = os._exit,
        log_file: IO[str] | None = None,
    ) -> None:
        self.seconds = seconds
        self.status = status
        self._exit_now = exit_now
        self._log_file = log_file
        self._timer: threading.Timer | None = None
        self.reason = ""

    @property
    def armed(self) -> bool:
        return self._timer is not None

    def arm(self, reason: str) -> None:
        if self._timer is not None:
            return
        self.reason = reason
        timer = threading.Timer(self.seconds, self._expire)
        timer.daemon = True
        timer.name = "tapewatch-exit-deadline"
        self._timer = timer
        timer.start()

    def settle(self, status: int) -> None:
        """The clean stop finished with ``status``: a forced end now only cuts lingering threads
        (a broker call still in flight, a pool joined at exit), so it reports the clean status."""
        self.status = status

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _expire(self) -> None:
        log.error(
            "the stop (%s) did not finish within %g s: ending the process; unresolved orders "
            "are settled from the broker at the next start",
            self.reason,
            self.seconds,
        )
        target = self._log_file or _log_stream()
        if target is not None:
            try:
                faulthandler.dump_traceback(file=target, all_threads=True)
                target.flush()
            except (OSError, ValueError):
                pass
        logging.shutdown()
        self._exit_now(self.status)


def _log_stream() -> IO[str] | None:
    """The first file handler's stream (the rotating log), else None: never the dead tty."""
    for handler in logging.getLogger().handlers:
        stream = getattr(handler, "stream", None)
        if stream is not None and stream not in (sys.stderr, sys.__stderr__):
            return stream
    return None
