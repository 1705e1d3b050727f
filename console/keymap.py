"""The console's actions as data: default keys, descriptions, and the user's remapping.

Users remap keys in ``$XDG_CONFIG_HOME/tapewatch/config.toml``::

    [keys]
    pause = "space"
    flatten = "F"
    quit = "q,ctrl+q"

Every mistake (unknown action, a key Textual cannot name, one key on two actions, bad TOML)
is a ``KeymapError`` with one line for the user; the console then refuses to start (exit 2)
rather than run with keys the operator did not expect.
"""

from __future__ import annotations

import tomllib
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from textual.keys import REPLACED_KEYS, Keys


class KeymapError(ValueError):
    """The [keys] table is wrong; the message names the entry and the fix."""


@dataclass(frozen=True, slots=True)
class Action:
    name: str  # the binding id and the name in [keys]
    keys: str  # default key(s), comma separated, Textual key names
    description: str  # footer label
    help: str  # the longer line in the help screen and the command palette
    demo_only: bool = False  # shown (footer, palette) and active only in the offline demo


ACTIONS: tuple[Action, ...] = (
    Action("pause", "p", "Pause", "Pause or resume new entries (exits still allowed)"),
    Action("flatten", "f", "Flatten", "Preview and send orders that close every position"),
    Action("switch", "m", "Paper/Live", "Switch between the paper and the live account"),
    Action("reset", "r", "Reset", "Reset a tripped breaker (journaled)"),
    Action("faster", "plus", "Faster", "Demo: next speed up (1, 5, 15, 60, 300, 1200, max)", True),
    Action("slower", "minus", "Slower", "Demo: next speed down the same ladder", True),
    Action(
        "next_signal", "n", "Next signal", "Demo: fast-forward to just before the next signal", True
    ),
    Action("confirm_mode", "c", "Confirm", "Confirm mode off → entries → all: y send, n skip"),
    Action("theme", "t", "Theme", "Cycle the colour theme"),
    Action("help", "question_mark", "Help", "Show every key"),
    Action("quit", "q", "Quit", "Stop the engine cleanly and quit"),
)
ACTION_NAMES = tuple(a.name for a in ACTIONS)
DEMO_ONLY = frozenset(a.name for a in ACTIONS if a.demo_only)
RESERVED = {
    "ctrl+q": "quit (always)",
    "ctrl+c": "the quit hint",
    "ctrl+p": "the command palette",
    "escape": "closing dialogs",
    "y": "sending an order that waits for confirmation",
    "tab": "moving focus",
    "1": "page 1 (small terminals)",
    "2": "page 2 (small terminals)",
    "3": "page 3 (small terminals)",
    "4": "page 4 (small terminals)",
}
"""Keys the console keeps for itself; a remapping may not take them (quit may use ctrl+q)."""
_MODIFIERS = frozenset({"ctrl", "shift", "alt", "meta", "super", "hyper"})
_KEY_NAMES = frozenset(k.value for k in Keys)


def _valid_key(key: str) -> bool:
    """True for keys Textual can bind: 'p', 'F', 'plus', 'ctrl+q', 'f5', 'question_mark'."""
    if not key or key != key.strip():
        return False
    if len(key) == 1:
        return key.isprintable()
    if key in _KEY_NAMES:
        return True
    *mods, base = key.split("+")
    if any(m not in _MODIFIERS for m in mods) or not base:
        return False
    if len(base) == 1 or base in _KEY_NAMES or f"ctrl+{base}" in _KEY_NAMES:
        return True
    try:
        unicodedata.lookup(REPLACED_KEYS.get(base, base).replace("_", " ").upper())
    except KeyError:
        return False
    return True


def parse_keys(table: object, where: str = "[keys]") -> dict[str, str]:
    """Validate a [keys] table; returns binding id -> key string (only the remapped actions)."""
    if not isinstance(table, dict):
        raise KeymapError(f'{where} must be a table of action = "key" entries')
    keymap: dict[str, str] = {}
    owner: dict[str, str] = {}
    defaults = {a.name: a.keys for a in ACTIONS}
    for action, value in table.items():
        if action not in defaults:
            raise KeymapError(
                f"{where}: unknown action {action!r}; known actions: {', '.join(ACTION_NAMES)}"
            )
        if not isinstance(value, str) or not value.strip():
            raise KeymapError(
                f'{where}: {action} must be a key name in quotes, e.g. {action} = "x"'
            )
        keys = [k.strip() for k in value.split(",")]
        for key in keys:
            if not _valid_key(key):
                raise KeymapError(
                    f"{where}: {action} = {value!r}: {key!r} is not a key name; "
                    'use e.g. "x", "F", "space", "ctrl+x", "f5" or "plus"'
                )
        keymap[action] = ",".join(keys)
    effective = {**defaults, **keymap}
    for action, value in effective.items():
        for key in value.split(","):
            if key in owner and owner[key] != action:
                raise KeymapError(
                    f"{where}: key {key!r} is bound to both {owner[key]} and {action}; "
                    "give each action its own key"
                )
            owner[key] = action
            reserved = RESERVED.get(key)
            if reserved is not None and not (action == "quit" and key == "ctrl+q"):
                raise KeymapError(
                    f"{where}: key {key!r} ({action}) is reserved for {reserved}; pick another key"
                )
    return keymap


def load_keymap(path: Path) -> dict[str, str]:
    """The [keys] table of a config file ({} when the file or the table is absent)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise KeymapError(f"cannot read {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise KeymapError(f"{path} is not valid TOML: {exc}") from None
    if "keys" not in data:
        return {}
    return parse_keys(data["keys"], where=f"{path} [keys]")


def effective_keys(keymap: dict[str, str]) -> dict[str, str]:
    """Every action with the key(s) in force after the user's remapping."""
    return {a.name: keymap.get(a.name, a.keys) for a in ACTIONS}
