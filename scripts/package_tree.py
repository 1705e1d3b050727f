"""Lay out ``.typecheck/tapewatch/`` as the wheel does, with symlinks, for mypy and lint-imports.

The distribution maps the repository's top-level folders (engine/, console/, sandbox/, themes/)
into one import package, ``tapewatch``, with setuptools' package-dir. At run time the editable
install's import hook does the mapping; static tools (mypy, import-linter's graph builder) read
files, not hooks, so they get a real ``tapewatch`` folder whose parts point back at the
repository. Run it before them (``make check`` does); it is idempotent and cheap.

    python scripts/package_tree.py [DEST]      # default: .typecheck
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("engine", "console", "sandbox", "themes")


def build(dest: Path) -> Path:
    package = dest / "tapewatch"
    package.mkdir(parents=True, exist_ok=True)
    for part in PARTS:
        link = package / part
        target = ROOT / part
        if link.is_symlink() and link.resolve() == target:
            continue
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target, target_is_directory=True)
    return package


def main(argv: list[str]) -> int:
    dest = Path(argv[1]) if len(argv) > 1 else ROOT / ".typecheck"
    print(build(dest))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
