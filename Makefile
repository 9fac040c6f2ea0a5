# Two commands for a newcomer: `make demo` and `make test`. Each sets up .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEPS := $(VENV)/.locked

# Every package, with the hashes of its files: requirements.lock is what the bot runs on (the Dockerfile installs
# it), requirements-dev.lock adds the tools and tests. `make lock` writes both from pyproject.toml.
LOCK := requirements.lock
DEV_LOCK := requirements-dev.lock

.PHONY: demo test lint typecheck contracts unit run migrate lock audit clean

# The locked packages, each checked against its hash; nothing else is downloaded. --no-deps: the lock already
# lists every package, and pip's resolver, asked to match a dependency with extras (pip-audit's
# `CacheControl[filecache]`) against the lock, can pick a newer release than the locked one and refuse it
# as unpinned (seen here on 2026-12-07); `pip check` below says if the lock is ever incomplete.
$(DEPS): $(DEV_LOCK)
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11 or newer is needed"'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --no-deps --require-hashes -r $(DEV_LOCK)
	touch $(DEPS)

# The project itself, on top, with nothing more: `pip check` says when pyproject.toml asks for a package or a
# version that the lock does not have (then `make lock`).
$(STAMP): $(DEPS) pyproject.toml
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	@$(PY) -m pip check || { echo "pyproject.toml and $(DEV_LOCK) disagree: run \`make lock\`" >&2; exit 1; }
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
# The semantic risk layer is trained once into RISK_CACHE_DIR first (about a minute; seconds once it is there), so
# that the workers and the tests which start the bot in a process of their own find it instead of training it.
TEST_WORKERS ?= 6
unit: $(STAMP)
	$(PY) -m bot risk train
	PYTHONDONTWRITEBYTECODE= $(PY) -m pytest -n $(TEST_WORKERS) --dist worksteal

migrate: $(STAMP)
	$(PY) -m bot db upgrade

run: migrate
	$(PY) -m bot run

# Resolve pyproject.toml's pins and what they need, for every platform and Python >= 3.11, from the package
# index (uv; PyPI unless UV_INDEX_URL says otherwise), keeping the versions already locked where they still fit;
# `make lock UPGRADE=1` moves every indirect package to its newest version too. The runtime lock takes the
# same versions as the development one.
LOCK_WITH := $(VENV)/bin/uv pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes \
	--custom-compile-command "make lock" --quiet
lock: $(DEPS)
	$(LOCK_WITH) --extra dev --extra build $(if $(UPGRADE),--upgrade) --output-file $(DEV_LOCK)
	$(LOCK_WITH) --extra build --constraint $(DEV_LOCK) --output-file $(LOCK)

# Known vulnerabilities in the locked packages (pip-audit). It needs a vulnerability database (PyPI's JSON API
# or OSV): where none answers it says it could NOT check and fails. AUDIT_ARGS=--if-reachable: exit 0 then.
audit: $(STAMP)
	@$(PY) -m devtools.audit $(AUDIT_ARGS) $(DEV_LOCK)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache demo.sqlite3* demo.log
