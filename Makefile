# PainPath: two commands do all set-up on a fresh machine.
#   make run   - create .venv if missing, install, serve on 127.0.0.1:8080
#   make test  - create/update .venv, the profile validator and the browser-test tools (Debian
#                chromium, playwright-core), then ruff, mypy and the whole
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
# browser tests: Debian chromium (apt, needs root) + playwright-core (pinned, npm ci, git-ignored)
WEBDRIVER := tests/web/driver
WEB_STAMP := $(WEBDRIVER)/node_modules/.package-lock.json

.PHONY: run test lint typecheck pytest install clean package validator webdriver
.PHONY: lock audit install-locked load soak
.PHONY: bench test-container

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# the spark extra (pyspark, pandas, pyarrow: ~30 s, ~520 MB) for tests/bulk/test_spark.py; the test
# also needs Java 17+ (`java` on PATH) and fails, not skips, without it
SPARK_STAMP := $(VENV)/.spark-installed
$(SPARK_STAMP): pyproject.toml | $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,spark]'
	touch $(SPARK_STAMP)

$(VALIDATOR_STAMP): $(VALIDATOR)/package.json $(VALIDATOR)/package-lock.json
	cd $(VALIDATOR) && npm ci --no-audit --no-fund --loglevel=error
	touch $(VALIDATOR_STAMP)

validator: $(VALIDATOR_STAMP)

/usr/bin/chromium:
	apt-get install -y --no-install-recommends chromium || \
	  (apt-get update && apt-get install -y --no-install-recommends chromium)

$(WEB_STAMP): $(WEBDRIVER)/package.json $(WEBDRIVER)/package-lock.json | /usr/bin/chromium
	cd $(WEBDRIVER) && npm ci --no-audit --no-fund --loglevel=error
	touch $(WEB_STAMP)

webdriver: $(WEB_STAMP)

package: $(STAMP)
	$(BIN)/python -m tools.conformance_package build

run: $(STAMP)
	$(BIN)/painpath serve --host $(HOST) --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/lint-imports

typecheck: $(STAMP) $(SPARK_STAMP)
	$(BIN)/mypy service tools

# Coverage gate: the whole service must stay at or above COVERAGE_MIN percent (measured 96) and
# the pure domain at or above DOMAIN_COVERAGE_MIN (measured 99; the aim is 100). Lines run only
# in the subprocess servers of the integration tests do not count.
COVERAGE_MIN ?= 96
DOMAIN_COVERAGE_MIN ?= 99
pytest: $(STAMP) $(SPARK_STAMP) $(VALIDATOR_STAMP) $(WEB_STAMP)
	$(BIN)/python -m pytest --cov=service --cov-report=term:skip-covered \
		--cov-fail-under=$(COVERAGE_MIN)
	$(BIN)/coverage report --include='service/domain/*' --skip-covered \
		--fail-under=$(DOMAIN_COVERAGE_MIN)

test: lint typecheck audit pytest test-container

# The image and the compose stack, built and run for real (tests/container, marker `container`;
# make pytest leaves them out). Needs root: installs Debian's docker.io and debootstrap when
# missing; the tests start and stop their own dockerd over a cached data root ($PAINPATH_CACHE,
# default ~/.cache/painpath: the debootstrapped base image and the layer cache). Measurements:
# test-artifacts/container-report.json.
/usr/sbin/dockerd /usr/sbin/debootstrap:
	apt-get install -y --no-install-recommends docker.io debootstrap || \
	  (apt-get update && apt-get install -y --no-install-recommends docker.io debootstrap)

test-container: $(STAMP) /usr/sbin/dockerd /usr/sbin/debootstrap
	$(BIN)/python -m pytest -p no:cacheprovider -m container tests/container
	@cat test-artifacts/container-report.json

# Issue 8 benchmarks, not part of make test: in-process, HTTP, scaling and bulk, each printing
# ratios measured in the same run (bench/run_all.py). BENCH_ARGS=--quick for a short run.
bench: $(STAMP)
	cd bench && PYTHONPATH=.. ../$(BIN)/python run_all.py $(BENCH_ARGS)

# requirements.lock: every dependency (and the dev extra) pinned with hashes; regenerate after a
# pyproject.toml dependency change. install-locked installs exactly that set.
LOCK := requirements.lock
lock: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml --extra dev --generate-hashes --python-version 3.11 \
		--universal --quiet -o $(LOCK)

install-locked: | $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# pip-audit on the locked set (PyPI's vulnerability data, so it needs the network): a known
# vulnerability fails the build; a timeout (no network) is reported and skipped.
audit: $(STAMP)
	@timeout 300 $(BIN)/pip-audit -r $(LOCK) --disable-pip --no-deps --require-hashes \
		--progress-spinner off --timeout 20; rc=$$?; \
	if [ $$rc -eq 124 ]; then echo "pip-audit: timed out, not audited"; else exit $$rc; fi

# Load (50 clients, 60 s) and soak (longer, lower rate, memory sampled) against `painpath serve`
# with production settings (2 uvicorn workers); results: README "Operations".
load: $(STAMP)
	$(BIN)/python bench/load.py --clients 50 --seconds 60 --workers 2
soak: $(STAMP)
	$(BIN)/python bench/load.py --clients 5 --seconds 600 --rate 20 --workers 2 --sample-memory

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache $(VALIDATOR)/node_modules \
	  $(WEBDRIVER)/node_modules
