"""Every test runs with its own config and data homes: a developer's real config.toml,
journal or keyring settings must never change what a test sees, and no test writes to ~."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _private_homes(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(Path(home) / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(Path(home) / "data"))
    for name in (
        "TAPEWATCH_CONFIG",
        "TAPEWATCH_DATA_DIR",
        "APCA_API_KEY_ID",
        "APCA_API_SECRET_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
