"""Private by default: the data directory is 0700 and every file tapewatch writes in it 0600.

The journal, logs and audit trail hold account ids, positions and who did what, so nobody else
on the machine may read them, whatever the umask. Folders and files are created with the
private mode and then chmod-ed to it (the umask can only take bits away, never keep them out
of a mode set explicitly), and ones left broader by an older tapewatch are tightened when
opened.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from tapewatch.engine.settings.config import ConfigError

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path, *, tighten_existing: bool = True) -> Path:
    """Create ``path`` (and any missing parents) as 0700 folders; tighten ``path`` itself.

    Parents that already exist are left alone (a user's home is not ours to change); every
    folder this call creates is private, so no new folder on the way is world-readable.
    ``tighten_existing=False`` leaves an existing ``path`` as it is (a journal given by path
    may sit in any folder).
    """
    path = Path(path)
    missing: list[Path] = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing.append(folder)
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile
            folder.mkdir(mode=DIR_MODE)
        os.chmod(folder, DIR_MODE)
    if not missing:
        if not path.is_dir():
            raise FileExistsError(f"{path} exists and is not a folder")
        if tighten_existing:
            tighten(path, DIR_MODE)
    return path


class DataDirError(ConfigError):
    """The data directory cannot be created or used; one line naming it and the fix."""


def prepare_data_dir(path: Path) -> Path:
    """The data directory, created (or tightened to) 0700, or a one-line ``DataDirError``."""
    path = Path(path)
    try:
        return private_dir(path)
    except (FileExistsError, NotADirectoryError):
        blocker = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), path)
        raise DataDirError(
            f"cannot use the data directory {path}: the file {blocker} is in the way; "
            "choose another --data-dir"
        ) from None
    except OSError as exc:
        raise DataDirError(
            f"cannot create the data directory {path} ({exc.strerror or exc}); "
            "choose a writable --data-dir"
        ) from None


def tighten(path: Path, mode: int = FILE_MODE) -> None:
    """Take group and other bits off ``path`` if it exists and is ours (best effort)."""
    with contextlib.suppress(OSError):
        st = os.stat(path)
        if st.st_uid == os.getuid() and st.st_mode & 0o777 & ~mode:
            os.chmod(path, st.st_mode & mode)


def touch_private(path: Path) -> Path:
    """Make sure the file ``path`` exists with mode 0600 (created empty when missing).

    Used before SQLite or a log handler opens a file: SQLite then gives its -wal and -shm
    files the database's own mode, and appends never widen it.
    """
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, FILE_MODE)
    try:
        with contextlib.suppress(PermissionError):  # a file someone else owns: leave its mode
            os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return path


def open_private(path: Path, flags: int = os.O_RDWR | os.O_CREAT | os.O_APPEND) -> int:
    """``os.open`` with mode 0600 whatever the umask; the caller owns the descriptor."""
    fd = os.open(path, flags | os.O_CLOEXEC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    except OSError:
        os.close(fd)
        raise
    return fd
