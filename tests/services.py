"""OS services some tests need, and the one way a test asks for them.

A test that needs a program the Python install cannot provide (the real Secret Service, promtool)
calls :func:`require`: on a machine without it the test is skipped with a reason naming the
install command, so the README's test command passes on a fresh machine. CI installs the services
and sets ``TAPEWATCH_REQUIRE_SERVICES=1``; tests/conftest.py then turns every skip into a
failure, so a service that silently went missing there cannot hide untested code.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass

import pytest

REQUIRE_SERVICES = "TAPEWATCH_REQUIRE_SERVICES"


@dataclass(frozen=True)
class Service:
    """A service as the tests see it: the programs that must be on PATH and how to get them."""

    name: str
    programs: tuple[str, ...]
    install: str

    def missing(self) -> list[str]:
        return [program for program in self.programs if shutil.which(program) is None]

    def skip_reason(self, missing: list[str]) -> str:
        return f"needs {self.name} ({', '.join(missing)} not on PATH): {self.install}"


SECRET_SERVICE = Service(
    "the Secret Service",
    ("dbus-run-session", "gnome-keyring-daemon"),
    "apt-get install -y dbus gnome-keyring",
)
PROMTOOL = Service("promtool", ("promtool",), "apt-get install -y prometheus")


def require(service: Service) -> dict[str, str]:
    """Each of ``service``'s programs by full path; skips the calling test when one is absent."""
    missing = service.missing()
    if missing:
        _skip(service.skip_reason(missing))
    return {program: str(shutil.which(program)) for program in service.programs}


def require_root() -> None:
    """Root, for a test that must become another user (the engine socket's permissions are
    the kernel's to enforce); skips with how to run it otherwise. CI runs as root."""
    import os

    if os.geteuid() != 0:
        _skip("needs root to become another user: run the suite as root (CI does)")


def _skip(reason: str) -> None:
    """The one skip in the suite (tests/test_services.py holds every other test to it)."""
    pytest.skip(reason)
