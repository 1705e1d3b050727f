"""One writer per journal folder: an OS lock held for the session's life.

Two engines appending to one journal both trade and both record the same fills, so the second
one must not start. ``WriterLock.acquire(folder)`` takes ``fcntl.flock`` on
``<folder>/tapewatch.lock`` without waiting; the kernel drops the lock when the process dies,
even by SIGKILL, so a crash never leaves a stale lock to clear by hand. The file records the
holder's PID (and what it runs) so the refusal can name it. Paper and live journals each have
their folder (``<data dir>/paper``, ``<data dir>/live``); demo runs write a fresh journal each
and take no lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from types import TracebackType
from typing import Self

from tapewatch.engine.settings.errors import UsageError
from tapewatch.engine.storage.datadir import open_private, private_dir

LOCK_NAME = "tapewatch.lock"


class DataDirBusy(UsageError):
    """Another process holds the folder's lock; the message is one line naming it."""

    def __init__(self, folder: Path, pid: int | None, holder: str) -> None:
        self.folder = folder
        self.pid = pid
        self.holder = holder
        super().__init__(busy_message(folder, pid, holder))


def busy_message(folder: Path, pid: int | None, holder: str = "") -> str:
    who = f"PID {pid}" if pid is not None else "another process (PID not recorded yet)"
    what = holder or "another tapewatch"
    return (
        f"the data directory {folder} is in use by {who} ({what}); "
        "stop it or choose another --data-dir"
    )


def read_holder(text: str) -> tuple[int | None, str]:
    """(PID, description) from a lock file's ``"<pid> <what>"`` line; (None, "") if unreadable."""
    first, _, rest = text.strip().partition(" ")
    try:
        pid = int(first)
    except ValueError:
        return None, ""
    what = "".join(c for c in rest.strip()[:80] if c.isprintable())
    return (pid, what) if pid > 0 else (None, "")


class WriterLock:
    """The held lock; ``release()`` (or the process's end) frees it."""

    def __init__(self, folder: Path, fd: int) -> None:
        self.folder = folder
        self.path = folder / LOCK_NAME
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, folder: Path, *, holder: str = "") -> WriterLock:
        """Take the lock of ``folder`` (created 0700) or raise ``DataDirBusy`` at once."""
        folder = private_dir(Path(folder)).absolute()
        fd = open_private(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                pid, what = read_holder(os.pread(fd, 256, 0).decode("utf-8", "replace"))
            finally:
                os.close(fd)
            raise DataDirBusy(folder, pid, what) from None
        except BaseException:
            os.close(fd)
            raise
        line = f"{os.getpid()} {holder}".strip() + "\n"
        os.ftruncate(fd, 0)
        os.pwrite(fd, line.encode("utf-8"), 0)
        return cls(folder, fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Clear the PID and unlock; a second call does nothing."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # closing the only descriptor drops the flock

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"WriterLock({str(self.folder)!r}, held={self.held})"
