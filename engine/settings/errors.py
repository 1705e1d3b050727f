"""One error tree for everything a user can cause, each error knowing its exit status.

``TapewatchError`` is the root: the CLI prints its message as one line and exits with its
``exit_code`` (2 for a usage or configuration mistake, 1 for a failure at run time). Internal
exceptions that never reach a person stay outside the tree.

``ConfigError`` carries what is wrong as data — the setting (``field``, e.g.
``strategy.rsi_period``), the ``reason`` and an ``example`` value — and is rendered for the
surface the bad value came from: a command-line flag (``--rsi-period must be …``), the config
file (``config file PATH:7: strategy.rsi_period must be …``) or an environment variable. The
wording is built from the field, never rewritten from one surface's text to another's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

USAGE = 2
RUNTIME = 1

Surface = Literal["flag", "file", "env"]


class TapewatchError(Exception):
    """A failure a user can act on: one line, and the process's exit status."""

    exit_code: int = RUNTIME


class UsageError(TapewatchError):
    """A mistake in what the user asked for: printed as one line, exit status 2."""

    exit_code = USAGE


@dataclass(frozen=True, slots=True)
class Where:
    """Where a setting's bad value was read: the surface, and for the file its path and line."""

    surface: Surface = "flag"
    path: Path | None = None
    line: int | None = None
    notes: tuple[str, ...] = ()  # file settings that took part in a flag's clash


class ConfigError(UsageError, ValueError):
    """A setting is wrong: which one (``field``), why (``reason``) and an ``example`` value.

    ``ConfigError("text")`` is a plain message (a problem that is not about one setting). With
    ``field``, ``reason`` may name ``related`` fields as ``{0}``, ``{1}``…, each rendered in the
    surface's own spelling.
    """

    def __init__(
        self,
        reason: str,
        *,
        field: str | None = None,
        example: object = None,
        related: Sequence[str] = (),
        where: Where | None = None,
    ) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason
        self.example = example
        self.related = tuple(related)
        self.where = where or Where()

    @property
    def fields(self) -> tuple[str, ...]:
        """Every setting this error is about (the first is ``field``)."""
        return ((self.field,) if self.field else ()) + self.related

    def at(self, where: Where) -> ConfigError:
        """The same error, rendered for ``where``."""
        return ConfigError(
            self.reason, field=self.field, example=self.example, related=self.related, where=where
        )

    def in_file(self, path: Path, line: int | None) -> ConfigError:
        return self.at(Where("file", path, line))

    def with_notes(self, notes: Sequence[str]) -> ConfigError:
        return self.at(replace(self.where, notes=tuple(notes)))

    def __str__(self) -> str:
        from tapewatch.engine.settings.render import render

        return render(self)
