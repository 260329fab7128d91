"""Python FHIR client libraries from PyPI against a real ``painpath serve``: SMART on FHIR's
``fhirclient`` (4.x, whose R4 model classes parse strictly) and beda.software's ``fhirpy`` (2.x).

Each reads ``/fhir/metadata``, a StructureDefinition and the ``$triage`` OperationDefinition, and
runs ``$triage`` the way the library runs an operation: fhirpy through ``execute`` (its operation
API); fhirclient has no operation call, so through its server's ``post_json`` with a Parameters
built from its own model classes, the answer parsed back into its ``Bundle`` model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fhirclient import client as smart_client
from fhirclient.models.bundle import Bundle
from fhirclient.models.capabilitystatement import CapabilityStatement
from fhirclient.models.careplan import CarePlan
from fhirclient.models.observation import Observation
from fhirclient.models.operationdefinition import OperationDefinition
from fhirclient.models.parameters import Parameters, ParametersParameter
from fhirclient.models.structuredefinition import StructureDefinition
from fhirpy import SyncFHIRClient

PAIN_TYPE_PROFILE = "https://painpath.dev/fhir/StructureDefinition/painpath-pain-type"
CAREPLAN_PROFILE = "https://painpath.dev/fhir/StructureDefinition/painpath-careplan"
TRIAGE_URL = "https://painpath.dev/fhir/OperationDefinition/triage"
PAIN_TYPE_SYSTEM = "https://painpath.dev/fhir/CodeSystem/pain-type"
Sample = Callable[[str], dict[str, Any]]


def _pain_types(observations: list[dict[str, Any]]) -> list[str]:
    return [
        coding["code"]
        for obs in observations
        if PAIN_TYPE_PROFILE in obs.get("meta", {}).get("profile", [])
        for coding in obs.get("valueCodeableConcept", {}).get("coding", [])
        if coding.get("system") == PAIN_TYPE_SYSTEM
    ]


# --- fhirclient ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smart(painpath_base: str) -> smart_client.FHIRClient:
    return smart_client.FHIRClient(
        settings={"app_id": "painpath-tests", "api_base": f"{painpath_base}/fhir/"}
    )


def test_fhirclient_reads_the_capability_statement(smart: smart_client.FHIRClient) -> None:
    smart.server.get_capability(force=True)
    capability = smart.server.capabilityStatement
    assert isinstance(capability, CapabilityStatement)
    assert capability.fhirVersion == "4.0.1"
    rest = capability.rest[0]
    assert rest.mode == "server"
    assert TRIAGE_URL in {op.definition for op in rest.operation or []}
    patient = next(r for r in rest.resource if r.type == "Patient")
    assert "triage" in {op.name for op in patient.operation or []}


def test_fhirclient_reads_a_profile_and_the_operation(smart: smart_client.FHIRClient) -> None:
    profile = StructureDefinition.read("painpath-pain-type", smart.server)
    assert profile.url == PAIN_TYPE_PROFILE
    assert profile.type == "Observation"
    assert profile.derivation == "constraint"
    assert profile.snapshot is not None
    assert len(profile.snapshot.element) > 10
    operation = OperationDefinition.read("triage", smart.server)
    assert (operation.url, operation.code, operation.system) == (TRIAGE_URL, "triage", True)
    inputs = {p.name for p in operation.parameter if p.use == "in"}
    assert {"bundle", "asOf", "profile", "return"} <= inputs


def test_fhirclient_runs_triage(smart: smart_client.FHIRClient, sample: Sample) -> None:
    """A Parameters made with fhirclient's models, posted to ``$triage``; the answer parses as a
    strict fhirclient R4 Bundle with a draft CarePlan and a neuropathic pain type."""
    part = ParametersParameter({"name": "bundle", "resource": sample("persistent-sciatica")})
    parameters = Parameters({"resourceType": "Parameters"})
    parameters.parameter = [part]
    response = smart.server.post_json("$triage", parameters.as_json())
    result = Bundle(response.json(), strict=True)
    assert result.type == "collection"
    resources = [entry.resource for entry in result.entry]
    plans = [r for r in resources if isinstance(r, CarePlan)]
    assert len(plans) == 1
    assert (plans[0].status, plans[0].intent) == ("draft", "proposal")
    assert plans[0].meta.profile == [CAREPLAN_PROFILE]
    assert plans[0].subject.reference == "Patient/patient-1"
    observations = [r.as_json() for r in resources if isinstance(r, Observation)]
    assert _pain_types(observations) == ["neuropathic"]


# --- fhirpy --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fhirpy_client(painpath_base: str) -> SyncFHIRClient:
    return SyncFHIRClient(f"{painpath_base}/fhir")


def test_fhirpy_reads_metadata_profile_and_operation(fhirpy_client: SyncFHIRClient) -> None:
    capability = fhirpy_client.execute("metadata", method="get")
    assert capability["resourceType"] == "CapabilityStatement"
    assert capability["fhirVersion"] == "4.0.1"
    profile = fhirpy_client.reference("StructureDefinition", "painpath-careplan").to_resource()
    assert profile["url"] == CAREPLAN_PROFILE
    assert profile["type"] == "CarePlan"
    found = fhirpy_client.resources("OperationDefinition").search(url=TRIAGE_URL).fetch_all()
    assert [op["id"] for op in found] == ["triage"]
    assert found[0]["code"] == "triage"


def test_fhirpy_runs_triage_with_options(fhirpy_client: SyncFHIRClient, sample: Sample) -> None:
    """``execute('$triage')`` with a Parameters carrying the bundle and ``return=transaction``:
    the answer is a transaction Bundle whose CarePlan is created under a conditional create."""
    parameters = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "bundle", "resource": sample("cauda-equina")},
            {"name": "return", "valueCode": "transaction"},
        ],
    }
    result = fhirpy_client.execute("$triage", data=parameters)
    assert result["resourceType"] == "Bundle"
    assert result["type"] == "transaction"
    plans = [e for e in result["entry"] if e["resource"]["resourceType"] == "CarePlan"]
    assert len(plans) == 1
    assert plans[0]["request"]["method"] in {"POST", "PUT"}
    issues = [
        e["resource"] for e in result["entry"] if e["resource"]["resourceType"] == "DetectedIssue"
    ]
    assert issues, "cauda equina raises a red-flag DetectedIssue"
    assert {i["severity"] for i in issues} == {"high"}


def test_fhirpy_sees_a_refusal_as_an_operation_outcome(fhirpy_client: SyncFHIRClient) -> None:
    """A Parameters without ``bundle``: fhirpy raises its OperationOutcome error with the
    server's 4xx OperationOutcome."""
    from fhirpy.base.exceptions import OperationOutcome as OutcomeError

    with pytest.raises(OutcomeError) as refused:
        fhirpy_client.execute("$triage", data={"resourceType": "Parameters", "parameter": []})
    outcome = refused.value.resource
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["severity"] in {"error", "fatal"}
