"""Every third-party package the code imports is declared in pyproject.toml, where its users get it.

A package that arrives only as someone else's dependency (rich through textual, requests through
alpaca-py) disappears the day that dependency drops it. So each top-level import in the source
folders is mapped to its distribution (importlib.metadata) and must be declared in the list the
folder's users install: the shipped code in [project] dependencies (an import guarded by
``except ImportError`` may live in an extra), the tests in [test], benchmarks and scripts in [dev].
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "tapewatch"
SHIPPED = ("engine", "console")
# folder -> the extras its users install on top of [project] dependencies
EXTRAS_FOR: dict[str, tuple[str, ...]] = {
    "engine": (),
    "console": (),
    "sandbox": ("sandbox",),
    "tests": ("test",),
    "bench": ("dev",),
    "scripts": ("dev",),
}
IMPORT_ERRORS = {"ImportError", "ModuleNotFoundError"}


def canonical(name: str) -> str:
    """PEP 503 normalised distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(spec: str) -> tuple[str, list[str]]:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?", spec)
    assert match, f"unreadable requirement {spec!r}"
    extras = [e.strip() for e in (match.group(2) or "").split(",") if e.strip()]
    return canonical(match.group(1)), extras


@dataclass(frozen=True)
class Declared:
    """The project's dependency lists, by extra, with self-references (tapewatch[x]) expanded."""

    base: frozenset[str]
    extras: Mapping[str, frozenset[str]]

    @classmethod
    def from_pyproject(cls, project: Mapping[str, object]) -> Declared:
        raw = project.get("optional-dependencies", {})
        assert isinstance(raw, dict)

        def expand(specs: list[str], seen: frozenset[str]) -> frozenset[str]:
            names: set[str] = set()
            for spec in specs:
                name, extras = requirement_name(spec)
                if name != canonical(PROJECT):
                    names.add(name)
                for extra in set(extras) - seen:
                    names |= expand(raw[extra], seen | {extra})
            return frozenset(names)

        deps = project.get("dependencies", [])
        assert isinstance(deps, list)
        return cls(
            expand(deps, frozenset()),
            {extra: expand(specs, frozenset({extra})) for extra, specs in raw.items()},
        )

    def allowed(self, extras: tuple[str, ...]) -> frozenset[str]:
        names = set(self.base)
        for extra in extras:
            names |= self.extras.get(extra, frozenset())
        return frozenset(names)

    def anywhere(self) -> frozenset[str]:
        return self.allowed(tuple(self.extras))


@dataclass(frozen=True)
class Use:
    module: str  # top-level import name
    path: Path
    line: int
    guarded: bool  # inside ``try: ... except ImportError``


def _guards_import_error(node: ast.Try) -> bool:
    for handler in node.handlers:
        kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        if any(isinstance(k, ast.Name) and k.id in IMPORT_ERRORS for k in kinds):
            return True
    return False


def imports(source: str, path: Path) -> Iterator[Use]:
    """Absolute top-level imports in ``source``, each marked guarded when ImportError is caught."""

    def visit(node: ast.AST, guarded: bool) -> Iterator[Use]:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Use(alias.name.split(".")[0], path, node.lineno, guarded)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield Use(node.module.split(".")[0], path, node.lineno, guarded)
        for field, value in ast.iter_fields(node):
            children = value if isinstance(value, list) else [value]
            inner = guarded or (
                isinstance(node, ast.Try) and field == "body" and _guards_import_error(node)
            )
            for child in children:
                if isinstance(child, ast.AST):
                    yield from visit(child, inner)

    yield from visit(ast.parse(source, str(path)), False)


def first_party(root: Path) -> set[str]:
    names = {PROJECT}
    for entry in root.iterdir():
        if entry.is_dir() and any(entry.glob("*.py")):
            names.add(entry.name)
        elif entry.suffix == ".py":
            names.add(entry.stem)
    return names


def undeclared(
    root: Path,
    declared: Declared,
    distributions: Mapping[str, list[str]],
    folders: Mapping[str, tuple[str, ...]] = EXTRAS_FOR,
) -> list[str]:
    """One line per third-party import not declared where the importing folder's users get it."""
    local = first_party(root)
    problems = []
    for folder, extras in folders.items():
        for path in sorted((root / folder).rglob("*.py")):
            siblings = {p.stem for p in path.parent.glob("*.py")}  # a script's own directory
            for use in imports(path.read_text(), path):
                name = use.module
                if name in sys.stdlib_module_names or name in local or name in siblings:
                    continue
                where = f"{path.relative_to(root)}:{use.line} imports {name}"
                # not installed here (bench's backtesting under [test] only): assume the
                # distribution is named like the import, as it is for the dev-only packages
                dists = {canonical(d) for d in distributions.get(name, [name])}
                wanted = declared.anywhere() if use.guarded else declared.allowed(extras)
                if not dists & wanted:
                    lists = ["[project] dependencies", *(f"[{e}]" for e in extras)]
                    problems.append(
                        f"{where} ({'/'.join(sorted(dists))}): declare it in {' or '.join(lists)}"
                    )
    return problems


def test_every_direct_import_is_declared() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    problems = undeclared(
        ROOT, Declared.from_pyproject(project), importlib.metadata.packages_distributions()
    )
    assert not problems, "\n".join(problems)


def test_the_shipped_code_needs_no_test_or_dev_package() -> None:
    """The shipped folders are checked against [project] dependencies alone."""
    assert all(EXTRAS_FOR[folder] == () for folder in SHIPPED)


def test_an_undeclared_import_is_named_with_its_fix(tmp_path: Path) -> None:
    (tmp_path / "engine").mkdir()
    (tmp_path / "engine" / "app.py").write_text(
        "import os\nimport rich.text\nfrom engine import app\n"
        "try:\n    import pyarrow\nexcept ImportError:\n    pyarrow = None\n"
        "import textual\n"
    )
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text(
        "import yaml\nimport hypothesis\nimport helper\nimport nowhere_to_be_found\n"
        "import backtesting\n"
    )
    (tmp_path / "tests" / "helper.py").write_text("")
    declared = Declared.from_pyproject(
        {
            "dependencies": ["textual==8.2.8"],
            "optional-dependencies": {
                "parquet": ["pyarrow>=15"],
                "test": ["tapewatch[parquet]", "hypothesis>=6", "backtesting==0.6.6"],
            },
        }
    )
    dists = {
        "rich": ["rich"],
        "textual": ["textual"],
        "pyarrow": ["pyarrow"],
        "yaml": ["PyYAML"],
        "hypothesis": ["hypothesis"],
    }
    problems = undeclared(tmp_path, declared, dists, {"engine": (), "tests": ("test",)})
    assert problems == [
        "engine/app.py:2 imports rich (rich): declare it in [project] dependencies",
        "tests/test_x.py:1 imports yaml (pyyaml): declare it in [project] dependencies or [test]",
        "tests/test_x.py:4 imports nowhere_to_be_found (nowhere-to-be-found): declare it in "
        "[project] dependencies or [test]",
    ]
    assert declared.extras["test"] == {"pyarrow", "hypothesis", "backtesting"}
