"""npm tools nobody here wrote, run by node from ``tests/thirdparty/node`` (pinned by its
package-lock.json, installed by ``make test`` or here with ``npm ci``; node_modules git-ignored):

- ``fhir-kit-client`` 2.x against a real ``painpath serve``: the CapabilityStatement (read through
  its CapabilityTool), a StructureDefinition, the ``$triage`` OperationDefinition (read and search
  by url) and ``$triage`` itself through ``client.operation``, plus a refused call;
- ``fhir-package-loader`` 2.x (HL7's package loader, the one SUSHI uses) loading ``fhir_profiles/``
  beside FHIR R4 core, offline, and resolving every canonical the package's resources reference.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from node_tools import ensure_npm_ci

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = Path(__file__).parent / "node"
PACKAGE = ROOT / "fhir_profiles"
NODE_TIMEOUT_S = 180

PAIN_TYPE_PROFILE = "https://painpath.dev/fhir/StructureDefinition/painpath-pain-type"
CAREPLAN_PROFILE = "https://painpath.dev/fhir/StructureDefinition/painpath-careplan"
TRIAGE_URL = "https://painpath.dev/fhir/OperationDefinition/triage"


@pytest.fixture(scope="session")
def node_tools() -> Path:
    ensure_npm_ci(NODE_DIR, purpose="the third-party FHIR client tools", timeout=300)
    return NODE_DIR


def _node(folder: Path, script: str, *args: str) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node (20+) is needed for the third-party client tests")
    done = subprocess.run(
        [node, script, *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def test_fhir_kit_client_reads_conformance_and_runs_triage(
    node_tools: Path, painpath_base: str
) -> None:
    report = _node(
        node_tools,
        "fhir_kit_client.mjs",
        f"{painpath_base}/fhir",
        str(ROOT / "samples" / "persistent-sciatica.json"),
    )
    capability = report["capability"]
    assert capability["resourceType"] == "CapabilityStatement"
    assert capability["fhirVersion"] == "4.0.1"
    assert capability["operations"] == [TRIAGE_URL]
    assert {"name": "triage", "definition": TRIAGE_URL} in capability["patientOperations"]
    assert capability["canReadStructureDefinition"] is True
    assert report["profile"] == {
        "url": PAIN_TYPE_PROFILE,
        "type": "Observation",
        "kind": "resource",
        "snapshot": report["profile"]["snapshot"],
    }
    assert report["profile"]["snapshot"] > 10
    assert report["operation"]["url"] == TRIAGE_URL
    assert {"in:bundle", "in:asOf", "in:return", "out:return"} <= set(
        report["operation"]["parameters"]
    )
    assert report["search"] == {"type": "searchset", "ids": ["triage"]}

    result = report["result"]
    assert (result["resourceType"], result["type"]) == ("Bundle", "collection")
    resources = [entry["resource"] for entry in result["entry"]]
    plans = [r for r in resources if r["resourceType"] == "CarePlan"]
    assert len(plans) == 1
    assert plans[0]["meta"]["profile"] == [CAREPLAN_PROFILE]
    assert (plans[0]["status"], plans[0]["intent"]) == ("draft", "proposal")
    pain_types = [
        r["valueCodeableConcept"]["coding"][0]["code"]
        for r in resources
        if PAIN_TYPE_PROFILE in r.get("meta", {}).get("profile", [])
    ]
    assert pain_types == ["neuropathic"]

    refused = report["refused"]
    assert refused["thrown"] is True
    assert 400 <= refused["status"] < 500
    assert refused["body"]["resourceType"] == "OperationOutcome"


def _load(node_tools: Path, package: Path, cache: Path) -> dict[str, Any]:
    return _node(node_tools, "load_package.mjs", str(package), str(cache))


@pytest.fixture(scope="module")
def fpl_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A FHIR package cache folder (``~/.fhir/packages`` layout) for the test's R4 core."""
    return tmp_path_factory.mktemp("fhir-packages")


def test_fhir_package_loader_loads_the_package_and_resolves_every_canonical(
    node_tools: Path, fpl_cache: Path
) -> None:
    report = _load(node_tools, PACKAGE, fpl_cache)
    assert report["package"] == "painpath.fhir#2027.1"
    assert set(report["status"].values()) == {"LOADED"}
    assert set(report["status"]) == {"painpath.fhir#2027.1", "hl7.fhir.r4.core#4.0.1"}
    assert report["errors"] == []
    assert report["resources"] == report["files"] > 200  # every file registered as a resource
    assert report["coreResources"] > 4000
    references = report["references"]
    where = Counter(ref["where"] for ref in references)
    unresolved = [ref for ref in references if ref["where"] == "unresolved"]
    assert unresolved == []
    # the walk saw the package's own canonicals, R4 core's and the external code systems
    assert where["package"] > 200
    assert where["core"] > 500
    assert where["external"] > 50
    assert Counter(ref["kind"] for ref in references)["extension"] > 100


def test_fhir_package_loader_reports_a_canonical_that_resolves_nowhere(
    node_tools: Path, fpl_cache: Path, tmp_path: Path
) -> None:
    """The check itself: a copy of the package with a profile on an unknown base and a
    ValueSet including an unknown code system gets both reported unresolved."""
    broken = tmp_path / "fhir_profiles"
    shutil.copytree(PACKAGE, broken)
    profile_path = broken / "profiles" / "StructureDefinition-painpath-pain-type.json"
    profile = json.loads(profile_path.read_text(encoding="utf-8"))
    profile["baseDefinition"] = "http://example.org/fhir/StructureDefinition/nowhere"
    profile_path.write_text(json.dumps(profile), encoding="utf-8")
    valueset_path = next((broken / "valuesets").glob("ValueSet-*.json"))
    valueset = json.loads(valueset_path.read_text(encoding="utf-8"))
    valueset["compose"]["include"][0]["system"] = "http://example.org/fhir/CodeSystem/nowhere"
    valueset_path.write_text(json.dumps(valueset), encoding="utf-8")
    report = _load(node_tools, broken, fpl_cache)
    unresolved = {
        (ref["resource"], ref["value"])
        for ref in report["references"]
        if ref["where"] == "unresolved"
    }
    assert unresolved == {
        (
            "StructureDefinition/painpath-pain-type",
            "http://example.org/fhir/StructureDefinition/nowhere",
        ),
        (
            f"ValueSet/{valueset['id']}",
            "http://example.org/fhir/CodeSystem/nowhere",
        ),
    }
