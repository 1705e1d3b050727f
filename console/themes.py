"""Colour themes as data files (``themes/*.toml``) turned into Textual themes at start-up.

Each file holds Textual's theme fields (primary, background, success, …) plus a
``[variables]`` table; the panes use only theme variables, never hard-coded colours, so a new
theme is a new file. Users may add their own in ``$XDG_CONFIG_HOME/tapewatch/themes/``.
The chart reads ``chart-up``, ``chart-down`` and ``chart-sma`` (defaults below).
"""

from __future__ import annotations

import tomllib
from importlib.resources import files
from pathlib import Path

from textual.color import Color, ColorParseError
from textual.theme import BUILTIN_THEMES, Theme

DEFAULT_THEME = "dark"
BUNDLED_DIR = Path(str(files("tapewatch.themes")))  # the repository's themes/, in the wheel
_COLOUR_FIELDS = (
    "primary",
    "secondary",
    "warning",
    "error",
    "success",
    "accent",
    "foreground",
    "background",
    "surface",
    "panel",
    "boost",
)
_OTHER_FIELDS = {"name", "dark", "luminosity_spread", "text_alpha", "variables", "description"}

VARIABLE_DEFAULTS = {
    "chart-up": "#3fb950",
    "chart-down": "#f85149",
    "chart-sma": "#d29922",
}
"""Theme variables the console adds to Textual's; a theme file may override each."""


class ThemeError(ValueError):
    """A theme file or a theme name is wrong; the message says which and how to fix it."""


def _colour(path: Path, key: str, value: object) -> str:
    if not isinstance(value, str):
        raise ThemeError(f'{path}: {key} must be a colour string such as "#1e88e5"')
    try:
        Color.parse(value)
    except ColorParseError:
        raise ThemeError(f'{path}: {key} = {value!r} is not a colour; use e.g. "#1e88e5"') from None
    return value


def theme_from_file(path: Path) -> Theme:
    """Read one theme file (its name defaults to the file's stem)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ThemeError(f"cannot read theme {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ThemeError(f"theme {path} is not valid TOML: {exc}") from None
    unknown = set(data) - set(_COLOUR_FIELDS) - _OTHER_FIELDS
    if unknown:
        raise ThemeError(f"{path}: unknown field(s) {', '.join(sorted(unknown))}")
    if "primary" not in data:
        raise ThemeError(f'{path}: a theme needs at least primary = "#rrggbb"')
    colours = {k: _colour(path, k, data[k]) for k in _COLOUR_FIELDS if k in data}
    variables = data.get("variables", {})
    if not isinstance(variables, dict):
        raise ThemeError(f"{path}: [variables] must be a table")
    for key, value in variables.items():
        if not isinstance(value, str):
            raise ThemeError(f"{path}: variables.{key} must be a string")
    name = data.get("name", path.stem)
    if not isinstance(name, str) or not name.strip():
        raise ThemeError(f"{path}: name must be a non-empty string")
    return Theme(
        name=name,
        primary=colours["primary"],
        secondary=colours.get("secondary"),
        warning=colours.get("warning"),
        error=colours.get("error"),
        success=colours.get("success"),
        accent=colours.get("accent"),
        foreground=colours.get("foreground"),
        background=colours.get("background"),
        surface=colours.get("surface"),
        panel=colours.get("panel"),
        boost=colours.get("boost"),
        dark=bool(data.get("dark", True)),
        luminosity_spread=float(data.get("luminosity_spread", 0.15)),
        text_alpha=float(data.get("text_alpha", 0.95)),
        variables={str(k): str(v) for k, v in variables.items()},
    )


def theme_dirs(config_dir: Path | None = None) -> list[Path]:
    """The bundled themes, then the user's (a user theme of the same name wins)."""
    dirs = [BUNDLED_DIR]
    if config_dir is not None:
        dirs.append(config_dir / "themes")
    return dirs


def load_themes(dirs: list[Path] | None = None) -> list[Theme]:
    """Every theme file in ``dirs`` in order (bundled first, sorted by name within a folder)."""
    found: dict[str, Theme] = {}
    for folder in dirs if dirs is not None else theme_dirs():
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.toml")):
            theme = theme_from_file(path)
            found[theme.name] = theme
    if not found:
        raise ThemeError(f"no theme files found in {', '.join(str(d) for d in dirs or [])}")
    ordered = sorted(found.values(), key=lambda t: (t.name != DEFAULT_THEME, t.name))
    return ordered


def resolve_theme(name: str | None, themes: list[Theme]) -> str:
    """The theme to start with: ``name`` if known (ours or Textual's), else an error."""
    if name is None:
        names = [t.name for t in themes]
        return DEFAULT_THEME if DEFAULT_THEME in names else names[0]
    ours = {t.name for t in themes}
    if name in ours or name in BUILTIN_THEMES:
        return name
    raise ThemeError(f"unknown theme {name!r}; choose one of: {', '.join(t.name for t in themes)}")
