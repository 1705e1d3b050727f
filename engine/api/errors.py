"""The start-up failures a person can fix, as the console reports them (one line, exit 2).

Re-exported from where they are raised; the console catches them without knowing the modules.
"""

from __future__ import annotations

from tapewatch.engine.core.feed import DataError
from tapewatch.engine.settings.config import ConfigError
from tapewatch.engine.storage.journal import JournalError

__all__ = ["ConfigError", "DataError", "JournalError"]
