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

import contextlib
import faulthandler
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import IO

log = logging.getLogger("tapewatch.stop")

STOP_DEADLINE = 9.0
"""Seconds from a stop signal to the forced end: inside systemd's and the issue's 10 s."""
LEAVE_GRACE = 0.5
"""Seconds a clean stop waits for pool threads to finish before it leaves them behind."""


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

    def leave(self, status: int, *, grace: float = LEAVE_GRACE) -> None:
        """After the clean stop a signal asked for: end the process now rather than at the
        interpreter's exit, where ``concurrent.futures`` joins every pool thread and so would
        wait out a broker call still in flight (a minute, under a hung Alpaca).

        Returns (normal exit follows) when nothing armed the deadline or no other non-daemon
        thread is alive within ``grace``; else flushes stdout, stderr and the logs and ends the
        process with ``status``. Everything worth keeping is already written: the journal is
        closed, the audit trail is fsynced per record, and the OS releases the writer lock.
        """
        self.settle(status)
        if not self.armed:
            return
        end = time.monotonic() + grace
        while (lingering := _lingering_threads()) and time.monotonic() < end:
            time.sleep(0.02)
        if not lingering:
            return
        log.info(
            "stopped cleanly; not waiting for %s", ", ".join(sorted(t.name for t in lingering))
        )
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError, AttributeError):
                stream.flush()
        logging.shutdown()
        self._exit_now(status)

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


def _lingering_threads() -> list[threading.Thread]:
    """Threads the interpreter's exit would wait for (not daemon, not this one)."""
    me = threading.current_thread()
    return [t for t in threading.enumerate() if t is not me and not t.daemon and t.is_alive()]


def _log_stream() -> IO[str] | None:
    """The first file handler's stream (the rotating log), else None: never the dead tty."""
    for handler in logging.getLogger().handlers:
        stream = getattr(handler, "stream", None)
        if stream is not None and stream not in (sys.stderr, sys.__stderr__):
            return stream
    return None
