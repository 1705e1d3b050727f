"""engine/ must stay headless: no module in it may pull in textual or rich."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

from tapewatch import engine

ENGINE_DIR = Path(engine.__file__).parent


def engine_modules() -> list[str]:
    names = ["tapewatch.engine"]
    for info in pkgutil.walk_packages([str(ENGINE_DIR)], prefix="tapewatch.engine."):
        names.append(info.name)
    return sorted(names)


def test_engine_modules_are_found() -> None:
    modules = engine_modules()
    assert "tapewatch.engine.core.engine" in modules
    assert "tapewatch.engine.strategy.rsi_sma" in modules
    assert len(modules) > 15


def test_no_engine_module_imports_textual_or_rich() -> None:
    code = (
        "import importlib, sys, json\n"
        "bad = {}\n"
        f"for name in {engine_modules()!r}:\n"
        "    before = set(sys.modules)\n"
        "    importlib.import_module(name)\n"
        "    hit = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich'))\n"
        "    if hit: bad[name] = hit[:3]; break\n"
        "print(json.dumps(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "{}", f"engine imports a UI library: {out.stdout}"


def test_the_check_itself_detects_a_ui_import(tmp_path: Path) -> None:
    """Guard against a vacuous check: importing console (which uses textual) must be caught."""
    code = (
        "import sys, importlib\n"
        "importlib.import_module('textual.app')\n"
        "print(any(m.split('.')[0] == 'textual' for m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
