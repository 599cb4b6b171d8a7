# The two commands a newcomer needs: `make run` (optterm on the simulator) and `make test`.
# Each creates .venv and installs the pinned dependencies from requirements.lock on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run check test test-fast lint format bench bytecode lock clean

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "optterm needs Python >= 3.11")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

# Bytecode for optterm's own modules. With PYTHONDONTWRITEBYTECODE=1 (set on some machines) Python
# never writes .pyc files, only reads them: without these every start compiles all of optterm's
# modules again. compileall writes regardless of that variable and only recompiles what changed,
# so `run` and `bench` refresh it each time. (pip compiles the venv's packages as it installs them;
# the editable install of optterm itself gets none, hence this.)
bytecode: $(STAMP)
	@$(BIN)/python -m compileall -q -j 0 src

run: bytecode
	$(BIN)/optterm $(ARGS)

# Static checks first (seconds), then the whole suite: the part map (import-linter contracts in
# pyproject.toml) and the types (mypy, zero errors) are rules, not advice.
check: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/mypy

test: check
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The quick loop, on every core: all tests but those marked slow (more than ~2 s each), process
# (real processes: the entry point, daemons, kill -9, PostgreSQL) and tmux (the real terminal).
test-fast: check
	$(BIN)/python -m pytest -q -n auto -m "not slow and not process and not tmux" $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

bench: bytecode
	$(BIN)/python -m benchmarks

# Re-pin after editing pyproject.toml dependencies (needs `pip install uv`).
lock:
	uv pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements.lock

clean:
	rm -rf $(VENV) build .pytest_cache .ruff_cache
