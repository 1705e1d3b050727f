# The checks a developer runs before pushing, and CI runs too (.ci/run calls `make lint` and
# `make wheel` after the README's test command, in the same venv). Run them inside the project's venv with the dev extras:
#     pip install -e ".[dev]" && make check
# Make rather than nox: nothing more to install, and it runs in the environment you already
# have (nox would build and fill a venv of its own per session on every run).

PYTHON ?= python

.PHONY: check lint ruff format-check tree mypy imports wheel test

check: lint test  ## everything: the linters, then the tests

lint: ruff format-check mypy imports  ## the static checks only

ruff:
	$(PYTHON) -m ruff check .

format-check:
	$(PYTHON) -m ruff format --check .

tree:  ## the wheel's layout (symlinks) for the static tools
	$(PYTHON) scripts/package_tree.py

mypy: tree
	$(PYTHON) -m mypy

# The import contracts live in pyproject.toml ([tool.importlinter]). Plain `lint-imports` works in
# the dev venv too; this target reads the wheel's layout (.typecheck/), as mypy does.
imports: tree
	PYTHONPATH=.typecheck lint-imports

wheel:  ## build the wheel, check what is in it, install it (not editable) and run it
	$(PYTHON) scripts/check_wheel.py

test:
	$(PYTHON) -m pytest -q
