"""The settings a front end may read and build: the public face of ``engine.settings``.

The CLI turns what the user typed into a ``Settings`` with ``load_settings`` and hands it to
``engine.api.sessions``; every user-facing failure is a ``TapewatchError`` carrying its exit
status (``ConfigError`` names the flag or the file key it is about).
"""

from tapewatch.engine.settings.config import EngineConfig, clip, config_dir, data_dir
from tapewatch.engine.settings.config_file import (
    FileConfig,
    MetricsSettings,
    config_path,
    load_config_file,
)
from tapewatch.engine.settings.errors import ConfigError, TapewatchError, UsageError
from tapewatch.engine.settings.fields import ENGINE_FIELDS, FIELDS, Field
from tapewatch.engine.settings.model import Settings, check_metrics, load_settings

__all__ = [
    "ENGINE_FIELDS",
    "FIELDS",
    "ConfigError",
    "EngineConfig",
    "Field",
    "FileConfig",
    "MetricsSettings",
    "Settings",
    "TapewatchError",
    "UsageError",
    "check_metrics",
    "clip",
    "config_dir",
    "config_path",
    "data_dir",
    "load_config_file",
    "load_settings",
]
