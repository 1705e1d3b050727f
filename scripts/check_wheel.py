"""Build the wheel, look inside it, install it (not editable) and run tapewatch from it.

An editable install finds everything in the checkout, so it cannot show that the wheel is
complete: themes, the console's stylesheet, the alert rules and the calendar table must be in
it, and it must install exactly one top-level import package, ``tapewatch``. CI runs this
(`make wheel`); so can you.

    python scripts/check_wheel.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NEEDED = (
    "tapewatch/console/app.tcss",
    "tapewatch/themes/dark.toml",
    "tapewatch/engine/observability/rules/tapewatch.rules.yml",
    "tapewatch/engine/market/data/xnys_sessions.npz",
    "tapewatch/engine/core/engine.py",
    "tapewatch/sandbox/server.py",
)


def run(*argv: str | Path, cwd: Path | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in argv], cwd=cwd, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"check_wheel: {' '.join(map(str, argv))} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def inspect(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    packages = {t for t in tops if not t.endswith(".dist-info")}
    if packages != {"tapewatch"}:
        raise SystemExit(f"check_wheel: top-level packages {sorted(packages)}, want ['tapewatch']")
    missing = [n for n in NEEDED if n not in names]
    if missing:
        raise SystemExit(f"check_wheel: the wheel lacks {missing}")
    if any(n.startswith("tapewatch/scripts/") or "showcase" in n for n in names):
        raise SystemExit("check_wheel: screenshot-only code is in the wheel")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="build and install here instead of a temp dir")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        work = args.keep or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        had_build = (ROOT / "build").exists()
        run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", work / "dist", ROOT)
        if not had_build:  # setuptools leaves its build/ in the checkout: not ours to keep
            shutil.rmtree(ROOT / "build", ignore_errors=True)
        (wheel,) = sorted((work / "dist").glob("tapewatch-*.whl"))
        inspect(wheel)
        env_dir = work / "venv"
        venv.create(env_dir, with_pip=True)
        python = env_dir / "bin" / "python"
        run(python, "-m", "pip", "install", "-q", wheel)
        outside = work / "elsewhere"  # not the checkout: nothing may come from the repository
        outside.mkdir(exist_ok=True)
        run(
            python,
            "-c",
            "from tapewatch.console.themes import load_themes, theme_dirs; "
            "assert load_themes(theme_dirs()), 'no themes'",
            cwd=outside,
        )
        report = run(
            env_dir / "bin" / "tapewatch",
            "backtest",
            "--synthetic",
            "--seed",
            "7",
            "--start",
            "2024-01-02",
            "--end",
            "2024-02-29",
            "--json",
            cwd=outside,
        )
        bars = json.loads(report).get("bars")
        print(f"check_wheel: {wheel.name} is complete; installed, it ran a backtest ({bars} bars)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
