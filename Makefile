# The two commands the README opens with. Each sets itself up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint package lock clean

# Both install the same thing: every version and hash of requirements.lock (all the extras,
# so `make run` then `make test` installs once), then this package without dependencies.
# Two machines, or two builds of one commit, get the same versions (tests/deploy/test_lock.py).
LOCK := requirements.lock
PIP := $(BIN)/pip install -q --disable-pip-version-check

$(BIN)/aiprod-run-ready: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(PIP) --require-hashes -r $(LOCK)
	$(PIP) --no-deps -e .
	touch $@

$(BIN)/aiprod-test-ready: $(BIN)/aiprod-run-ready
	touch $@

## make run: the sample batch through the real handlers on the embedded bus and store
run: $(BIN)/aiprod-run-ready
	$(BIN)/aiprod demo

## make test: lint, then every test tier (emulator tests are required when CI=true)
test: $(BIN)/aiprod-test-ready
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

## make package: one deployable folder per function (cloudbuild.yaml deploys them)
PACKAGE_DIR ?= build/functions
package: $(BIN)/aiprod-test-ready
	$(BIN)/aiprod package --out $(PACKAGE_DIR)

## make lock: resolve pyproject.toml again (after changing a dependency), with hashes, for
## Python 3.11+ on every platform (the functions run 3.12 on Linux). uv is not a dependency:
## it is installed here only to write the lock.
lock: $(BIN)/aiprod-run-ready
	$(PIP) uv
	$(BIN)/uv pip compile pyproject.toml --all-extras --generate-hashes --universal \
		--python-version 3.11 --quiet -o $(LOCK)

lint: $(BIN)/aiprod-test-ready
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) build *.egg-info shared/*.egg-info .pytest_cache
