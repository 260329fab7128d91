"""Fixtures for the conformance package tests: the package, the R4 JSON Schema, the validator.

The profile validator is a node script (``validator/validate.mjs``) over @medplum/core 4.5.2,
pinned in ``validator/package-lock.json`` and installed with ``npm ci`` into the git-ignored
``validator/node_modules/`` the first time a test needs it (``make test`` does it up front).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from node_tools import ensure_npm_ci
from profiles_testkit import ROOT, Json, load_package

VALIDATOR = Path(__file__).parent / "validator"
ARTIFACTS = ROOT / "test-artifacts"
NPM_TIMEOUT_S = 300
NODE_TIMEOUT_S = 300

Item = dict[str, Any]
Validate = Callable[[list[Item]], dict[str, Json]]


@pytest.fixture(scope="session")
def package() -> dict[str, Json]:
    """The committed package's resources by ``Type/id``."""
    return load_package()


def _ensure_validator() -> None:
    """Install the pinned profile validator (``npm ci``) unless it is up to date."""
    ensure_npm_ci(VALIDATOR, purpose="the profile validator", timeout=NPM_TIMEOUT_S)


@pytest.fixture(scope="session")
def validation_timings() -> Iterator[list[Json]]:
    """Every validator run's timing; written to test-artifacts/ at the end of the session."""
    timings: list[Json] = []
    yield timings
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "profile-validation-timings.json").write_text(json.dumps(timings, indent=2))


@pytest.fixture(scope="session")
def validate(package: dict[str, Json], validation_timings: list[Json]) -> Validate:
    """Validate a batch of items in one node process; results by item key.

    An item is ``{"key", "resource", "profile": "base" | "meta" | <url>}`` (``meta`` = the
    resource's own ``meta.profile``), optionally with ``references`` ({fullUrl: type}).
    """
    _ensure_validator()
    node = shutil.which("node")
    if node is None:
        pytest.fail("node (20 or later) is needed to run the profile validator")
    terminology = [
        r
        for r in package.values()
        if r["resourceType"] in {"StructureDefinition", "ValueSet", "CodeSystem"}
    ]

    def run(items: list[Item]) -> dict[str, Json]:
        payload = json.dumps({"package": terminology, "items": items}).encode()
        started = time.monotonic()
        done = subprocess.run(
            [node, "validate.mjs"],
            cwd=VALIDATOR,
            input=payload,
            capture_output=True,
            check=False,
            timeout=NODE_TIMEOUT_S,
        )
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        answer = json.loads(done.stdout)
        answer["timing"]["wallMs"] = round((time.monotonic() - started) * 1000)
        validation_timings.append(answer["timing"])
        return {result["key"]: result for result in answer["results"]}

    return run


Gate = Callable[[list[Item]], Json]


@pytest.fixture(scope="session")
def conformance_gate() -> Gate:
    """Run ``validator/conformance.mjs`` (fhirpath.js over HL7's R4 definitions) on a batch of
    items ``{"key", "resource", "known"?}``; answers ``{"results": {key: result}, "totals"}``."""
    _ensure_validator()
    node = shutil.which("node")
    if node is None:
        pytest.fail("node (20 or later) is needed to run the conformance gate")

    def run(items: list[Item]) -> Json:
        done = subprocess.run(
            [node, "conformance.mjs"],
            cwd=VALIDATOR,
            input=json.dumps({"items": items}).encode(),
            capture_output=True,
            check=False,
            timeout=NODE_TIMEOUT_S,
        )
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        answer: Json = json.loads(done.stdout)
        answer["results"] = {r["key"]: r for r in answer["results"]}
        return answer

    return run
