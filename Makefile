# Two commands for a newcomer: `make demo` and `make test`. Each sets up .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck contracts unit run migrate clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11 or newer is needed"'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m bot demo

test: lint typecheck contracts unit

lint: $(STAMP)
	$(VENV)/bin/ruff check bot tests devtools bench
	$(VENV)/bin/ruff format --check bot tests devtools bench

typecheck: $(STAMP)
	$(VENV)/bin/mypy bot devtools

# import-linter: rules never import telegram, features never import handlers, no import cycles (pyproject.toml)
contracts: $(STAMP)
	$(VENV)/bin/lint-imports

# The suite in TEST_WORKERS processes at once (pytest-xdist; each has a database of its own, see tests/conftest.py):
# an end-to-end test spends much of its time waiting, so more processes than cores. TEST_WORKERS=0: one process.
# Bytecode is cached (__pycache__) even where PYTHONDONTWRITEBYTECODE is set: every worker and every `python -m
# bot` a test starts would compile the project again.
TEST_WORKERS ?= 4
unit: $(STAMP)
	PYTHONDONTWRITEBYTECODE= $(PY) -m pytest -n $(TEST_WORKERS) --dist worksteal

migrate: $(STAMP)
	$(PY) -m bot db upgrade

run: migrate
	$(PY) -m bot run

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache demo.sqlite3* demo.log
