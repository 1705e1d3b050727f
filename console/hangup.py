"""Survive the terminal going away: a closed pty, an SSH drop, ``tmux kill-session``.

When a terminal hangs up the kernel sends SIGHUP *and SIGCONT*. Textual's Linux driver answers
any SIGCONT by starting application mode again: a second output thread whose first write to the
dead tty raises EIO and kills it, so its queue fills and the next write (or the exit path's
``stop()``, which joins it) blocks the event loop forever; SIGTERM then only wakes a loop that
never runs again. ``HangupSafeDriver`` resumes only after a real Ctrl+Z suspend, drops output
once the terminal is gone (the writer thread keeps draining, so nothing blocks), and reports an
input-side EIO as a hang-up instead of a crash.

What the app does then is its ``[console] on_hangup`` policy (console.app): stop, or keep the
engine trading with nothing drawn (``drop_output``) while its socket serves ``tapewatch attach``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import IO, Any

from textual.drivers.linux_driver import LinuxDriver

log = logging.getLogger("tapewatch.console")


class TolerantOutput:
    """The driver's output file: after the first failed write every later write is dropped."""

    def __init__(self, file: IO[str], on_lost: Callable[[], None]) -> None:
        self._file = file
        self._on_lost = on_lost
        self.lost = False

    def _failed(self) -> None:
        if not self.lost:
            self.lost = True
            self._on_lost()

    def write(self, text: str) -> int:
        if self.lost:
            return len(text)
        try:
            return self._file.write(text)
        except (OSError, ValueError):  # EIO/EPIPE from a dead tty; ValueError: closed file
            self._failed()
            return len(text)

    def flush(self) -> None:
        if self.lost:
            return
        try:
            self._file.flush()
        except (OSError, ValueError):
            self._failed()

    def fileno(self) -> int:
        return self._file.fileno()

    def isatty(self) -> bool:
        return not self.lost and self._file.isatty()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)


class HangupSafeDriver(LinuxDriver):
    """Textual's Linux driver, made safe for a terminal that disappears mid-session.

    The app is told once, on its event loop, through ``terminal_lost()`` if it has one.
    """

    def __init__(self, app: Any, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        original: Any = self._file  # sys.__stderr__: the terminal
        self._output = TolerantOutput(original, self._lost)
        self._file = self._output  # type: ignore[assignment]  # file-like: all the writer uses
        self._told = threading.Event()

    @property
    def terminal_lost(self) -> bool:
        return self._told.is_set()

    def _lost(self) -> None:
        """Called from any thread (the writer, the input reader) the first time the tty fails."""
        if self._told.is_set():
            return
        self._told.set()
        self._output.lost = True
        callback = getattr(self._app, "terminal_lost", None)
        loop = getattr(self._app, "_loop", None)
        if callback is None or loop is None:
            return
        with contextlib.suppress(RuntimeError):  # a closed loop: the app is leaving anyway
            loop.call_soon_threadsafe(callback)

    def drop_output(self) -> None:
        """The terminal is gone (a SIGHUP under ``on_hangup`` keep-running or pause): draw
        nothing more, without telling the app again. The writer keeps draining."""
        self._told.set()
        self._output.lost = True

    def _sigcont_application(self, *_: Any) -> None:
        # A hang-up sends SIGCONT too: resume only after our own SIGTSTP suspend.
        if self._must_signal_resume and not self._told.is_set():
            super()._sigcont_application()

    def write(self, data: str) -> None:
        if self._told.is_set():
            return
        super().write(data)

    def _run_input_thread(self) -> None:
        try:
            self.run_input_thread()
        except OSError as exc:  # EIO: the terminal is gone; that is a hang-up, not a crash
            log.info("terminal input failed (%s): treating it as a hang-up", exc)
            self._lost()
        except BaseException:
            import rich.traceback

            self._app.call_later(self._app.panic, rich.traceback.Traceback())
