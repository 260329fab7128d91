"""Lenient and strict validation (CONTRACT "400"): an invalid entry of a type PainPath does not
read is a ``warning`` in the result, an invalid entry it reads is a 400, and ``validation=strict``
(query or Parameters part, on ``$triage`` and ``/ui/summary``) refuses both."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fhir_testkit import AS_OF, CAUDA, CLAIM, FHIR_JSON, Json, case_bundle, cs, issues, post_triage

from service.app.pipeline import Pipeline
from service.fhir.errors import InputError
from service.fhir.validate import STRICT_TYPES, validate_bundle


def _with(entry: Json, *, bad: bool) -> Json:
    bundle = case_bundle(CAUDA)
    resource = copy.deepcopy(entry)
    if bad:
        resource["colour"] = "red-secret"  # no such element in R4
    bundle["entry"].append(
        {"fullUrl": f"urn:uuid:{resource['resourceType']}-x", "resource": resource}
    )
    return bundle


def _entry_invalid(bundle: Json) -> list[Json]:
    outcome = cs("outcome")
    return [
        i
        for i in issues(bundle)
        if any(c.get("code") == "entry-invalid" and c["system"] == outcome
               for c in i.get("details", {}).get("coding", []))
    ]  # fmt: skip


def test_valid_unread_entry_gives_no_warning(client: TestClient) -> None:
    answer = post_triage(client, _with(CLAIM, bad=False))
    assert answer.status_code == 200
    assert _entry_invalid(answer.json()) == []


def test_invalid_unread_entry_is_a_warning_with_its_expression(client: TestClient) -> None:
    bundle = _with(CLAIM, bad=True)
    where = f"Bundle.entry[{len(bundle['entry']) - 1}].resource.colour"
    answer = post_triage(client, bundle)
    assert answer.status_code == 200
    [warning] = _entry_invalid(answer.json())
    assert warning["severity"] == "warning"
    assert warning["code"] == "invalid"
    assert warning["expression"] == [where]
    assert "red-secret" not in warning["diagnostics"]  # no input values echoed


@pytest.mark.parametrize("how", ["query", "parameters"])
def test_strict_validation_refuses_the_invalid_unread_entry(client: TestClient, how: str) -> None:
    bundle = _with(CLAIM, bad=True)
    if how == "query":
        answer = post_triage(client, bundle, params={"validation": "strict"})
        where = f"Bundle.entry[{len(bundle['entry']) - 1}].resource.colour"
    else:
        parts = [{"name": "validation", "valueCode": "strict"}]
        body = {
            "resourceType": "Parameters",
            "parameter": [*parts, {"name": "bundle", "resource": bundle}],
        }
        answer = post_triage(client, body)
        where = (
            f"Parameters.parameter[1].resource.entry[{len(bundle['entry']) - 1}].resource.colour"
        )
    assert answer.status_code == 400
    outcome = answer.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert [i["expression"] for i in outcome["issue"]] == [[where]]


def test_parameters_part_overrides_the_query(client: TestClient) -> None:
    bundle = _with(CLAIM, bad=True)
    parts = [{"name": "validation", "valueCode": "lenient"}]
    body = {
        "resourceType": "Parameters",
        "parameter": [*parts, {"name": "bundle", "resource": bundle}],
    }
    answer = post_triage(client, body, params={"validation": "strict"})
    assert answer.status_code == 200
    assert len(_entry_invalid(answer.json())) == 1


def test_strict_validation_of_a_valid_bundle_gives_the_same_result(client: TestClient) -> None:
    bundle = _with(CLAIM, bad=False)
    lenient = post_triage(client, bundle)
    strict = post_triage(client, bundle, params={"validation": "strict"})
    assert strict.status_code == lenient.status_code == 200
    assert strict.json() == lenient.json()


@pytest.mark.parametrize("value", ["STRICT", "off"])
def test_unknown_validation_mode_is_400(client: TestClient, value: str) -> None:
    answer = post_triage(client, case_bundle(CAUDA), params={"validation": value})
    assert answer.status_code == 400
    assert answer.json()["issue"][0]["expression"] == ["validation"]


def test_invalid_entry_of_a_read_type_is_still_400(client: TestClient) -> None:
    bundle = case_bundle(CAUDA)
    observation = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"
    )
    observation["status"] = "paid-in-full"
    answer = post_triage(client, bundle)
    assert answer.status_code == 400


def test_summary_takes_the_validation_option(client: TestClient) -> None:
    bundle = _with(CLAIM, bad=True)
    params = {"asOf": AS_OF}
    headers = {"content-type": FHIR_JSON}
    lenient = client.post("/ui/summary", json=bundle, params=params, headers=headers)
    assert lenient.status_code == 200
    assert len(_entry_invalid(lenient.json()["result"])) == 1
    strict = client.post("/ui/summary", json=bundle, params={**params, "validation": "strict"},
                         headers=headers)  # fmt: skip
    assert strict.status_code == 400


# --- validate_bundle itself ----------------------------------------------------------------------
def _check(bundle: Json, **kwargs: Any) -> Any:
    return validate_bundle(bundle, max_entries=10**5, **kwargs)


def test_every_read_type_is_strict(pipeline: Pipeline) -> None:
    assert {"Patient", "Condition", "Observation", "MedicationRequest"} <= STRICT_TYPES
    assert "Claim" not in STRICT_TYPES
    assert "Encounter" not in STRICT_TYPES


def test_unknown_resource_type_in_an_entry_is_400_even_when_lenient() -> None:
    bundle = case_bundle(CAUDA)
    bundle["entry"].append({"resource": {"resourceType": "Widget"}})
    with pytest.raises(InputError) as refused:
        _check(bundle)
    assert refused.value.kind == "invalid"


def test_warnings_are_bounded_on_a_large_record() -> None:
    bundle = case_bundle(CAUDA)
    bad = copy.deepcopy(CLAIM)
    bad["colour"] = "red"
    bundle["entry"] += [{"resource": bad}] * 500
    check = _check(bundle)
    assert 0 < len(check.warnings) <= 20


# --- contained resources: each checked as its own type ------------------------------------------
def _claim_containing(contained: Json) -> Json:
    claim: Json = copy.deepcopy(CLAIM)
    claim["contained"] = [contained]
    claim["insurance"][0]["coverage"] = {"reference": f"#{contained['id']}"}
    return claim


COVERAGE = {
    "resourceType": "Coverage", "id": "cov", "status": "active",
    "beneficiary": {"reference": "Patient/patient-1"}, "payor": [{"display": "Medicare"}],
}  # fmt: skip


@pytest.mark.parametrize(
    ("contained", "valid"),
    [
        (COVERAGE, True),
        (COVERAGE | {"period": {"start": "20-11-2026"}}, False),  # not a FHIR dateTime
        (COVERAGE | {"colour": "red"}, False),  # no such element
        ({k: v for k, v in COVERAGE.items() if k != "payor"}, False),  # payor is required
        ({"resourceType": "Widget", "id": "cov"}, False),  # no such resource type
    ],
)
def test_a_contained_resource_is_validated_as_its_own_type(contained: Json, valid: bool) -> None:
    """The fast validator's ResourceList only asks for an object (one validator per type, not
    the whole schema in each); every contained resource is still checked against its type."""
    bundle = case_bundle(CAUDA)
    bundle["entry"].append({"resource": _claim_containing(contained)})
    where = f"Bundle.entry[{len(bundle['entry']) - 1}].resource.contained"
    warnings = _check(bundle).warnings
    assert (warnings == ()) is valid
    assert all(w.expression.startswith(where) for w in warnings)
    if not valid:  # strict: refused, as any invalid entry
        with pytest.raises(InputError):
            _check(bundle, strict=True)


def test_an_invalid_contained_medication_in_a_read_entry_is_400() -> None:
    bundle = case_bundle(CAUDA)
    request = {
        "resourceType": "MedicationRequest", "id": "mr", "status": "active", "intent": "order",
        "subject": {"reference": "Patient/patient-1"},
        "medicationReference": {"reference": "#m"},
        "contained": [{"resourceType": "Medication", "id": "m", "status": ["active"]}],
    }  # fmt: skip
    bundle["entry"].append({"resource": request})
    with pytest.raises(InputError) as refused:
        _check(bundle)
    assert any(".contained[0]" in (p.expression or "") for p in refused.value.problems)


def test_entry_that_is_not_an_array_is_400() -> None:
    bundle = case_bundle(CAUDA)
    bundle["entry"] = {"resource": bundle["entry"][0]["resource"]}
    with pytest.raises(InputError) as refused:
        _check(bundle)
    assert any(p.expression == "Bundle.entry" for p in refused.value.problems)


def test_problems_of_read_entries_stop_at_twenty() -> None:
    """A record of hundreds of broken Conditions: a bounded 400, not hundreds of lines."""
    bundle = case_bundle(CAUDA)
    bad = {"resourceType": "Condition", "subject": {"reference": "Patient/patient-1"},
           "onsetDateTime": "last tuesday"}  # fmt: skip
    bundle["entry"] += [{"resource": bad}] * 30
    with pytest.raises(InputError) as refused:
        _check(bundle)
    assert len(refused.value.problems) == 20
