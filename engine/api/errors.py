"""The failures a person can fix, as front ends report them (one line, and an exit status).

Re-exported from where they are raised; the console and the CLI catch them without knowing
the modules. Every one is (or is caught as) a ``TapewatchError`` subclass or a broker error.
"""

from __future__ import annotations

from tapewatch.engine.core.broker import BrokerError
from tapewatch.engine.core.feed import DataError
from tapewatch.engine.settings.config import ConfigError
from tapewatch.engine.settings.credentials import CredentialError
from tapewatch.engine.settings.errors import TapewatchError, UsageError
from tapewatch.engine.storage.journal import JournalError
from tapewatch.engine.storage.writer_lock import DataDirBusy

__all__ = [
    "BrokerError",
    "ConfigError",
    "CredentialError",
    "DataDirBusy",
    "DataError",
    "JournalError",
    "TapewatchError",
    "UsageError",
]
