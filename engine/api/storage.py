"""The data directory as a front end touches it: made private, locked to one writer, read back.

``prepare_data_dir`` makes the folder (mode 0700) before anything writes; ``WriterLock`` is
the one-writer lock a second tapewatch meets as ``DataDirBusy``; ``journal_for`` and
``read_fills`` are how ``tapewatch trades`` reads a journal without opening it for writing.
"""

from tapewatch.engine.storage.datadir import prepare_data_dir, private_dir, touch_private
from tapewatch.engine.storage.trades import journal_for, read_fills
from tapewatch.engine.storage.writer_lock import DataDirBusy, WriterLock

__all__ = [
    "DataDirBusy",
    "WriterLock",
    "journal_for",
    "prepare_data_dir",
    "private_dir",
    "read_fills",
    "touch_private",
]
