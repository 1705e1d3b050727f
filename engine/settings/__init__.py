"""The settings model: every setting's names and ranges (``fields``), the errors a user can
cause (``errors``), and the one object a session is built from (``model.Settings``).

Only the light parts are imported here; ``engine.settings.model`` loads the config file.
"""

from tapewatch.engine.settings.errors import ConfigError, TapewatchError, UsageError, Where
from tapewatch.engine.settings.fields import BY_NAME, FIELDS, Field, Range

__all__ = [
    "BY_NAME",
    "FIELDS",
    "ConfigError",
    "Field",
    "Range",
    "TapewatchError",
    "UsageError",
    "Where",
]
