"""The console imports nothing from the engine but its API package (``engine.api``).

Parsed, not imported: every ``import``/``from`` statement anywhere in a module counts, inside
functions and ``TYPE_CHECKING`` blocks too. Every module counts: the screens and panes, and the
host side as well (the CLI commands and the launcher), which say what they want through
``engine.api.sessions``, ``settings``, ``accounts``, ``storage``, ``observability`` and
``backtest`` while the composition root (``engine.root``) builds it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CONSOLE = Path(__file__).resolve().parents[2] / "console"


def console_modules() -> list[Path]:
    return sorted(CONSOLE.rglob("*.py"))


def engine_imports(path: Path) -> list[str]:
    """Every module an import statement in ``path`` names under the engine, outside its API."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
            if node.module in ("tapewatch.engine", "tapewatch"):  # from X import module
                names.extend(f"{node.module}.{alias.name}" for alias in node.names)
    return sorted(
        n
        for n in names
        if (n == "tapewatch.engine" or n.startswith("tapewatch.engine."))
        and n != "tapewatch.engine.api"
        and not n.startswith("tapewatch.engine.api.")
    )


def test_every_console_module_is_checked() -> None:
    names = {p.relative_to(CONSOLE).as_posix() for p in console_modules()}
    assert {"app.py", "panes/breakers.py", "screens/reconcile.py", "cli.py", "launch.py"} <= names
    assert {"run_cli.py", "login_cli.py", "backtest_cli.py"} <= names


@pytest.mark.parametrize("path", console_modules(), ids=lambda p: p.relative_to(CONSOLE).as_posix())
def test_a_console_module_imports_only_the_engine_api(path: Path) -> None:
    assert engine_imports(path) == [], f"{path.name} reaches past engine.api"


def test_the_check_sees_every_kind_of_engine_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "import tapewatch.engine.core.state\n"
        "from tapewatch.engine import core\n"
        "from tapewatch.engine.api.types import Mode\n"
        "import tapewatch.engine.api\n"
        "def f():\n"
        "    from tapewatch.engine.core.reconcile import Reconciler\n"
        "if TYPE_CHECKING:\n"
        "    from tapewatch.engine.core.engine import Engine\n"
    )
    assert engine_imports(module) == [
        "tapewatch.engine",
        "tapewatch.engine.core",
        "tapewatch.engine.core.engine",
        "tapewatch.engine.core.reconcile",
        "tapewatch.engine.core.state",
    ]
