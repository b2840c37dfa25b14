# The two commands the README opens with. Each sets itself up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint package clean

$(BIN)/aiprod-run-ready: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e .
	touch $@

$(BIN)/aiprod-test-ready: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]'
	touch $(BIN)/aiprod-run-ready $@

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

lint: $(BIN)/aiprod-test-ready
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) build *.egg-info shared/*.egg-info .pytest_cache
