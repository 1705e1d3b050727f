"""The fresh-machine promise and the CI promise, both proved on the real service tests.

Run with a PATH that has none of the services' programs, the Secret Service and promtool tests
skip, each naming its install command; run the same way with TAPEWATCH_REQUIRE_SERVICES=1 (as
.ci/run does) they fail. And no test anywhere skips for any other reason.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

from tests.services import PROMTOOL, REQUIRE_SERVICES, SECRET_SERVICE

ROOT = Path(__file__).resolve().parents[1]
SERVICE_TESTS = [
    "tests/test_keyring_secret_service.py::test_store_load_delete_through_a_real_secret_service",
    "tests/test_keyring_secret_service.py::test_login_whoami_logout_with_a_real_secret_service",
    "tests/test_keyring_secret_service.py::test_locked_secret_service_is_the_one_message",
    "tests/observability/test_rules.py::test_promtool_checks_and_unit_tests_the_rules",
]


def run_without_services(tmp_path: Path, *, require: bool) -> subprocess.CompletedProcess[str]:
    """pytest on the service tests with a PATH holding no program at all."""
    env = {k: v for k, v in os.environ.items() if k != REQUIRE_SERVICES}
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    env["PATH"] = str(empty)
    if require:
        env[REQUIRE_SERVICES] = "1"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rsfE", "-p", "no:cacheprovider", *SERVICE_TESTS],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )


def test_without_the_services_their_tests_skip_naming_the_install_command(
    tmp_path: Path,
) -> None:
    proc = run_without_services(tmp_path, require=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "4 skipped" in proc.stdout and "failed" not in proc.stdout
    skips = [line for line in proc.stdout.splitlines() if line.startswith("SKIPPED")]
    assert len(skips) == 4, proc.stdout
    keyring = [line for line in skips if SECRET_SERVICE.install in line]
    promtool = [line for line in skips if PROMTOOL.install in line]
    assert len(keyring) == 3 and len(promtool) == 1, skips
    needs = "needs the Secret Service (dbus-run-session, gnome-keyring-daemon not on PATH)"
    assert needs in keyring[0]
    assert "needs promtool (promtool not on PATH): apt-get install -y prometheus" in promtool[0]


def test_with_services_required_the_same_skips_fail_the_run(tmp_path: Path) -> None:
    proc = run_without_services(tmp_path, require=True)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    # the Secret Service is required by a fixture, so its three tests fail at setup (errors)
    assert proc.stdout.splitlines()[-1].startswith("1 failed, 3 errors"), proc.stdout
    failures = [line for line in proc.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
    assert len(failures) == 4, proc.stdout
    said = f"{REQUIRE_SERVICES}=1 and this test was skipped: needs "
    assert proc.stdout.count(said + "the Secret Service") == 3, proc.stdout
    assert proc.stdout.count(said + "promtool") == 1, proc.stdout
    assert proc.stdout.count(SECRET_SERVICE.install) == 3, proc.stdout


SKIP_NAMES = {"skip", "skipif", "importorskip", "skipTest", "SkipTest"}


def skip_lines(source: str) -> list[int]:
    """Lines of ``source`` that skip a test: pytest.skip/importorskip, mark.skip(if), unittest."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in SKIP_NAMES:
            lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom):
            lines += [node.lineno for alias in node.names if alias.name in SKIP_NAMES]
    return lines


def test_no_test_skips_except_through_the_service_helper() -> None:
    """A skip anywhere else would pass CI silently: only tests/services.py may call pytest.skip."""
    offenders = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in sorted((ROOT / "tests").rglob("*.py"))
        if path != ROOT / "tests" / "services.py"
        for line in skip_lines(path.read_text())
    ]
    assert offenders == []


def test_the_skip_scan_is_not_vacuous() -> None:
    source = (
        "import pytest\nfrom pytest import importorskip\n"
        "@pytest.mark.skipif(True, reason='x')\ndef test_a():\n    pytest.skip('y')\n"
        "def test_b():\n    pytest.fail('not a skip')\n"
    )
    assert sorted(skip_lines(source)) == [2, 3, 5]
    assert (ROOT / "tests" / "services.py").read_text().count("pytest.skip(") == 1
