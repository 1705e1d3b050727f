"""One import package: everything imports ``tapewatch.…``, never the repository's folders.

The tests run with the checkout on ``sys.path``, so ``import engine`` would still work here
while failing in an installed wheel; this scan keeps such an import from slipping in."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("engine", "console", "sandbox", "tests", "bench", "scripts")
FORBIDDEN = ("engine", "console", "sandbox", "themes")


def python_files() -> list[Path]:
    return sorted(
        p
        for folder in FOLDERS
        for p in (ROOT / folder).rglob("*.py")
        if "__pycache__" not in p.parts
    )


def stray_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        found += [n for n in names if n.split(".")[0] in FORBIDDEN]
    return found


def test_the_scan_covers_the_tree() -> None:
    files = {p.relative_to(ROOT).as_posix() for p in python_files()}
    assert {"engine/core/engine.py", "console/app.py", "sandbox/server.py"} <= files


@pytest.mark.parametrize("path", python_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_imports_name_the_tapewatch_package(path: Path) -> None:
    assert stray_imports(path) == [], f"{path.relative_to(ROOT)}: import tapewatch.… instead"


def test_the_scan_sees_a_stray_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import engine.core\nfrom console.app import x\nfrom tapewatch.engine import y\n"
    )
    assert stray_imports(bad) == ["engine.core", "console.app"]
