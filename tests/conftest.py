"""Every test runs with its own config and data homes: a developer's real config.toml,
journal or keyring settings must never change what a test sees, and no test writes to ~.

With ``TAPEWATCH_REQUIRE_SERVICES=1`` (set by .ci/run, which installs every OS service the tests
use) a skipped test is reported as a failure: on a developer's machine a missing service skips
its tests with the install command (tests/services.py), in CI it breaks the build."""

from __future__ import annotations

import os
from collections.abc import Generator
from pathlib import Path

import pytest

from tests.services import REQUIRE_SERVICES


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


def _skips_are_failures() -> bool:
    return os.environ.get(REQUIRE_SERVICES, "") not in ("", "0")


def _fail_if_skipped(report: pytest.TestReport | pytest.CollectReport) -> None:
    if not report.skipped or hasattr(report, "wasxfail") or not _skips_are_failures():
        return
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    reason = reason.removeprefix("Skipped: ")
    report.outcome = "failed"
    report.longrepr = f"{REQUIRE_SERVICES}=1 and this test was skipped: {reason}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    _fail_if_skipped(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    report = yield
    _fail_if_skipped(report)
    return report
