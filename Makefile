# PainPath: two commands do all set-up on a fresh machine.
#   make run   - create .venv if missing, install, serve on 127.0.0.1:8080
#   make test  - create/update .venv and the profile validator, then ruff, mypy and the whole
#                pytest suite (which also fails if fhir_profiles/ is not what the generator makes)
#   make package - regenerate fhir_profiles/ from the knowledge files
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= $(or $(PAINPATH_HOST),127.0.0.1)
PORT ?= $(or $(PAINPATH_PORT),8080)
# offline FHIR profile validator (@medplum/core, pinned by package-lock.json; node_modules git-ignored)
VALIDATOR := tests/profiles/validator
VALIDATOR_STAMP := $(VALIDATOR)/node_modules/.package-lock.json

.PHONY: run test lint typecheck pytest install clean package validator

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

$(VALIDATOR_STAMP): $(VALIDATOR)/package.json $(VALIDATOR)/package-lock.json
	cd $(VALIDATOR) && npm ci --no-audit --no-fund --loglevel=error
	touch $(VALIDATOR_STAMP)

validator: $(VALIDATOR_STAMP)

package: $(STAMP)
	$(BIN)/python -m service.fhir.profiles build

run: $(STAMP)
	$(BIN)/painpath serve --host $(HOST) --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy service

pytest: $(STAMP) $(VALIDATOR_STAMP)
	$(BIN)/python -m pytest

test: lint typecheck pytest

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache $(VALIDATOR)/node_modules
