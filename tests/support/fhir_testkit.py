"""Helpers for the API/FHIR contract tests: golden inputs, reshaped Bundles and result readers.

On the pytest pythonpath (``tests/support``), like ``painpath_testkit``. Nothing here decides
what is right: the tests assert against docs/interface.md.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import orjson
from fastapi.testclient import TestClient
from httpx import Client, Response
from jsonschema import Draft6Validator

from service.app.pipeline import Pipeline, TriageResult

Json = dict[str, Any]

ROOT = Path(__file__).resolve().parents[2]
CASES = ROOT / "tests" / "golden" / "cases"
SCHEMA = ROOT / "service" / "fhir" / "schema" / "fhir.r4.schema.json"
PP = "https://painpath.dev/fhir"
AS_OF = "2026-11-24T10:00:00+01:00"
FHIR_JSON = "application/fhir+json"
UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"

CAUDA = "cauda-equina-saddle-anaesthesia"
# a valid R4 Claim for the cauda-equina case's patient: an entry of a type no rule reads
CLAIM: Json = {
    "resourceType": "Claim", "id": "claim-1", "status": "active",
    "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type",
                         "code": "professional"}]},
    "use": "claim", "patient": {"reference": "Patient/patient-1"},
    "created": "2026-11-20T10:00:00Z", "provider": {"display": "Clinic"},
    "priority": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/processpriority",
                             "code": "normal"}]},
    "insurance": [{"sequence": 1, "focal": True, "coverage": {"display": "Medicare"}}],
}  # fmt: skip
MECHANICAL = "mechanical-low-back-pain-screen-not-documented"
MULTI_FLAG = "multi-flag-infection-malignancy"
OUT_OF_SCOPE = "age-15-out-of-scope"


def cs(name: str) -> str:
    """A PainPath CodeSystem URL."""
    return f"{PP}/CodeSystem/{name}"


def load_case(name: str) -> Json:
    """A golden case file (a fresh copy each call)."""
    case: Json = json.loads((CASES / f"{name}.json").read_text(encoding="utf-8"))
    return case


def case_bundle(name: str) -> Json:
    """The input Bundle of a golden case."""
    bundle: Json = load_case(name)["bundle"]
    return bundle


def walk_references(node: Any) -> Iterator[Json]:
    """Every Reference-shaped object (a dict with a string ``reference``) under ``node``."""
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            yield node
        for value in node.values():
            yield from walk_references(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk_references(value)


def with_prefix(bundle: Json, prefix: str, *, full_urls: bool = True) -> Json:
    """The Bundle with every resource id, fullUrl and reference to them prefixed (a new patient).

    ``full_urls=False`` drops the fullUrls instead (to load the resources into a server by PUT).
    """
    out = copy.deepcopy(bundle)
    renamed: dict[str, str] = {}
    for entry in out["entry"]:
        resource = entry["resource"]
        old = f"{resource['resourceType']}/{resource['id']}"
        resource["id"] = f"{prefix}-{resource['id']}"
        renamed[old] = f"{resource['resourceType']}/{resource['id']}"
        entry["fullUrl"] = f"https://ehr.example.org/fhir/{renamed[old]}"
        if not full_urls:
            del entry["fullUrl"]
    for ref in walk_references(out):
        ref["reference"] = renamed.get(ref["reference"], ref["reference"])
    return out


def with_urn_uuids(
    bundle: Json, *, bundle_type: str = "transaction"
) -> tuple[Json, dict[str, str]]:
    """The Bundle as a transaction whose entries have ``urn:uuid`` fullUrls and POST requests.

    Returns the Bundle and the map ``Type/id`` -> urn (references are rewritten to the urns).
    """
    out = copy.deepcopy(bundle)
    out["type"] = bundle_type
    urns: dict[str, str] = {}
    for index, entry in enumerate(out["entry"]):
        resource = entry["resource"]
        urn = f"urn:uuid:7e57da7a-0000-4000-8000-{index:012d}"
        urns[f"{resource['resourceType']}/{resource['id']}"] = urn
        entry["fullUrl"] = urn
        entry["request"] = {"method": "POST", "url": resource["resourceType"]}
    for ref in walk_references(out):
        ref["reference"] = urns.get(ref["reference"], ref["reference"])
    return out, urns


def post_triage(
    client: TestClient,
    body: Json | bytes,
    *,
    params: dict[str, str] | None = None,
    content_type: str | None = FHIR_JSON,
) -> Response:
    """``POST /fhir/$triage`` with ``asOf`` = AS_OF unless ``params`` say otherwise."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"content-type": content_type} if content_type else {}
    query = {"asOf": AS_OF, **(params or {})}
    answer: Response = client.post("/fhir/$triage", content=data, params=query, headers=headers)
    return answer


def resources(bundle: Json, rtype: str | None = None) -> list[Json]:
    """The resources of a Bundle, optionally of one type."""
    found = [e["resource"] for e in bundle.get("entry", [])]
    return [r for r in found if rtype is None or r["resourceType"] == rtype]


def is_produced(entry: Json) -> bool:
    """A resource PainPath produced (not an input carried along under its urn:uuid fullUrl):
    it carries the result identifier, or is a Provenance/OperationOutcome at its own id."""
    r = entry["resource"]
    system = "https://painpath.dev/fhir/identifier/result"
    if any(i.get("system") == system for i in r.get("identifier", [])):
        return True
    own = entry.get("fullUrl") == f"urn:uuid:{r.get('id')}"
    return own and r["resourceType"] in {"Provenance", "OperationOutcome"}


def produced(bundle: Json) -> list[Json]:
    """The resources PainPath produced in a result Bundle (:func:`is_produced`)."""
    return [e["resource"] for e in bundle.get("entry", []) if is_produced(e)]


def subject_of(resource: Json) -> str | None:
    """``subject.reference`` (``patient.reference`` for a DetectedIssue)."""
    holder = resource.get("subject") or resource.get("patient") or {}
    reference = holder.get("reference")
    return reference if isinstance(reference, str) else None


def codes(concept: Json | None, system: str) -> list[str]:
    """The codes of a CodeableConcept in one system."""
    return [c["code"] for c in (concept or {}).get("coding", []) if c.get("system") == system]


def observation(bundle: Json, code: str, subject: str | None = None) -> Json:
    """The one PainPath Observation with ``code`` (pain-type, treatment-stage-eligibility)."""
    found = [
        r
        for r in resources(bundle, "Observation")
        if codes(r["code"], cs("painpath")) == [code]
        and (subject is None or subject_of(r) == subject)
    ]
    assert len(found) == 1, f"expected one {code} Observation, got {len(found)}"
    return found[0]


def stage_of(bundle: Json, stage: str) -> str:
    """A treatment stage's eligibility (eligible, not-eligible, insufficient-data, deferred) in
    the treatment-stage-eligibility Observation of a one-patient result."""
    found = observation(bundle, "treatment-stage-eligibility")
    [value] = [
        codes(c["valueCodeableConcept"], cs("eligibility"))[0]
        for c in found["component"]
        if codes(c["code"], cs("treatment-stage")) == [stage]
    ]
    return value


def issues(bundle: Json) -> list[Json]:
    """Every issue of every OperationOutcome entry."""
    return [i for oo in resources(bundle, "OperationOutcome") for i in oo["issue"]]


def issues_with(bundle: Json, detail: str) -> list[Json]:
    """The issues whose PainPath outcome code (``issue.details``) is ``detail``."""
    return [i for i in issues(bundle) if detail in codes(i.get("details"), cs("outcome"))]


def triage_resources(pipeline: Pipeline, *found: Json, as_of: str) -> TriageResult:
    """``found`` as one collection Bundle (entries without fullUrl), evaluated in-process."""
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in found],
    }
    now = datetime(2026, 11, 24, tzinfo=UTC)
    return pipeline.run_body(orjson.dumps(bundle), {"asOf": as_of}, now=now)


def issue_codes(bundle: Json) -> list[str]:
    """The PainPath outcome codes (``issue.details``) of the result's OperationOutcomes."""
    return [c for i in issues(bundle) for c in codes(i.get("details"), cs("outcome"))]


@cache
def _schema() -> Json:
    schema: Json = json.loads(SCHEMA.read_text(encoding="utf-8"))
    return schema


@cache
def schema_validator(rtype: str) -> Draft6Validator:
    """A validator for one definition of the vendored R4 JSON Schema, as published."""
    return Draft6Validator(
        {"$ref": f"#/definitions/{rtype}", "definitions": _schema()["definitions"]}
    )


def schema_errors(resource: Json, rtype: str | None = None) -> list[str]:
    """Schema errors of a resource (against its own type unless ``rtype`` is given)."""
    validator = schema_validator(rtype or resource["resourceType"])
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(resource)]


def load_patient(fhir: Client, case: str, prefix: str) -> str:
    """Load a golden case's input for a new patient; returns the patient id."""
    bundle = with_prefix(
        json.loads((CASES / f"{case}.json").read_text())["bundle"], prefix, full_urls=False
    )
    entries = [
        {
            "resource": e["resource"],
            "request": {
                "method": "PUT",
                "url": f"{e['resource']['resourceType']}/{e['resource']['id']}",
            },
        }
        for e in bundle["entry"]
    ]
    answer = fhir.post("", json={"resourceType": "Bundle", "type": "transaction", "entry": entries})
    assert answer.status_code == 200, answer.text
    return next(
        str(e["resource"]["id"])
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Patient"
    )
