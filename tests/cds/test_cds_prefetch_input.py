"""CDS Hooks prefetch as the caller sent it: nothing in it is dropped without a word.

A hand-built prefetch may hold a resource without ``id`` (used, under a Bundle-local name); a
resource about another patient than ``context.patientId`` is the caller's error (400 naming the
prefetch key and entry); an invalid resource is named by its path in the request, not in the
Bundle PainPath builds from the prefetch."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from cds_testkit import case_patient_id, case_resources, hook_request, load_case, prefetch_for
from starlette.testclient import TestClient

from service.cds_hooks.request import CdsBundle
from service.fhir.emit import IDENTIFIER_SYSTEM
from service.fhir.errors import Problem

Json = dict[str, Any]
PV = "/cds-services/painpath-patient-view"


def _request(name: str, patient_id: str | None = None) -> Json:
    """The patient-view request of a golden case, for ``patient_id`` (the case's own)."""
    case = load_case(name)
    prefetch = prefetch_for(case_resources(case))
    return hook_request("patient-view", patient_id or case_patient_id(case), prefetch=prefetch)


def _cards(client: TestClient, body: Json) -> list[Json]:
    response = client.post(PV, json=body)
    assert response.status_code == 200, response.text
    cards: list[Json] = response.json()["cards"]
    return cards


def _expressions(client: TestClient, body: Json) -> list[str]:
    response = client.post(PV, json=body)
    assert response.status_code == 400, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    return [e for i in outcome["issue"] for e in i.get("expression", [])]


# --- a resource without id ----------------------------------------------------------------------
def test_a_prefetched_condition_without_id_is_evaluated(cds: TestClient) -> None:
    body = _request("certainty-possible-sciatica")
    (expected,) = _cards(cds, body)
    del body["prefetch"]["conditions"]["entry"][0]["resource"]["id"]
    (card,) = _cards(cds, body)  # not {"cards": []}: the sciatica is on record
    assert (card["indicator"], card["summary"]) == (expected["indicator"], expected["summary"])
    assert card["summary"].startswith("Neuropathic pain")
    assert _cards(cds, body) == [card]  # the Bundle-local name is deterministic


def test_the_same_resources_without_id_in_another_order_give_the_same_cards(
    cds: TestClient,
) -> None:
    body = _request("certainty-possible-sciatica")
    for key in ("conditions", "observations"):
        for entry in body["prefetch"][key]["entry"]:
            del entry["resource"]["id"]
    conditions = body["prefetch"]["conditions"]["entry"]
    conditions.append(copy.deepcopy(conditions[0]))
    conditions[1]["resource"]["note"] = [{"text": "second copy"}]
    first = _cards(cds, body)
    assert first
    conditions.reverse()
    assert _cards(cds, body) == first


def test_a_prefetched_patient_without_id_is_the_context_patient(cds: TestClient) -> None:
    body = _request("fracture-minor-trauma-age-66")
    (expected,) = _cards(cds, body)
    assert expected["indicator"] == "critical"  # needs the age: the Patient's birth date
    del body["prefetch"]["patient"]["id"]
    (card,) = _cards(cds, body)
    assert (card["indicator"], card["summary"]) == (expected["indicator"], expected["summary"])


# --- another patient ------------------------------------------------------------------------------
def test_a_prefetched_patient_with_another_id_is_400(cds: TestClient) -> None:
    body = _request("certainty-possible-sciatica")
    body["prefetch"]["patient"]["id"] = "zzz"
    assert _expressions(cds, body) == ["prefetch.patient.id"]


def test_prefetch_about_another_patient_than_the_context_is_400(cds: TestClient) -> None:
    body = _request("certainty-possible-sciatica", patient_id="other")
    assert _expressions(cds, body) == [
        "prefetch.patient.id",
        "prefetch.conditions.entry[0].resource.subject",
        "prefetch.observations.entry[0].resource.subject",
    ]


def test_one_prefetched_resource_about_another_patient_is_400(cds: TestClient) -> None:
    body = _request("certainty-possible-sciatica")
    stranger = copy.deepcopy(body["prefetch"]["conditions"]["entry"][0])
    stranger["resource"] |= {"id": "stranger", "subject": {"reference": "Patient/someone-else"}}
    body["prefetch"]["conditions"]["entry"].append(stranger)
    (where,) = _expressions(cds, body)
    assert where == "prefetch.conditions.entry[1].resource.subject"
    response = cds.post(PV, json=body)
    assert "context.patientId" in response.json()["issue"][0]["diagnostics"]


def test_a_record_resource_naming_no_patient_is_400(cds: TestClient) -> None:
    body = _request("certainty-possible-sciatica")
    del body["prefetch"]["observations"]["entry"][0]["resource"]["subject"]
    assert _expressions(cds, body) == ["prefetch.observations.entry[0].resource.subject"]


# --- paths of invalid resources -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda p: p["conditions"]["entry"][0]["resource"].update(code=5),
         "prefetch.conditions.entry[0].resource.code"),
        (lambda p: p["observations"]["entry"][0]["resource"].update(foo=1),
         "prefetch.observations.entry[0].resource.foo"),
        (lambda p: p["patient"].update(gender=5), "prefetch.patient.gender"),
        # an outcome entry before it: the index is the request's, not the Bundle's
        (lambda p: (p["conditions"]["entry"].insert(0, {
            "resource": {"resourceType": "OperationOutcome",
                         "issue": [{"severity": "information", "code": "informational"}]},
            "search": {"mode": "outcome"}}),
            p["conditions"]["entry"][1]["resource"].update(onsetDateTime="yesterday")),
         "prefetch.conditions.entry[1].resource.onsetDateTime"),
    ],
)  # fmt: skip
def test_an_invalid_prefetch_resource_is_named_by_its_path_in_the_request(
    cds: TestClient, mutate: Any, where: str
) -> None:
    body = _request("certainty-possible-sciatica")
    mutate(body["prefetch"])
    assert _expressions(cds, body) == [where]


def _references(node: object) -> list[str]:
    if isinstance(node, dict):
        own = [node["reference"]] if isinstance(node.get("reference"), str) else []
        return own + [r for v in node.values() for r in _references(v)]
    if isinstance(node, list):
        return [r for v in node for r in _references(v)]
    return []


def test_suggestions_never_name_an_input_the_ehr_cannot_resolve(cds: TestClient) -> None:
    """An input sent without id is known only by a urn inside PainPath's result: the resources
    the card suggests creating leave such references out (and keep every other one)."""
    body = _request("certainty-possible-sciatica")
    with_id = _cards(cds, body)[0]["suggestions"][0]["actions"]
    assert any(r.startswith("Condition/") for a in with_id for r in _references(a["resource"]))
    del body["prefetch"]["conditions"]["entry"][0]["resource"]["id"]
    actions = _cards(cds, body)[0]["suggestions"][0]["actions"]
    created = {f"urn:uuid:{a['resource']['id']}" for a in actions}
    references = [r for a in actions for r in _references(a["resource"])]
    assert references
    assert all(r in created or not r.startswith("urn:") for r in references)
    assert all(v != [] for a in actions for v in a["resource"].values())


# --- prefetch searchsets that are not what they claim -------------------------------------------
@pytest.mark.parametrize(
    ("entry", "expression"),
    [
        ({"resourceType": "Condition"}, "prefetch.conditions.entry"),  # not an array
        ([{"fullUrl": "urn:uuid:0c0c0000-0000-4000-8000-00000000000a"}],
         "prefetch.conditions.entry[0].resource"),  # an entry without a resource
    ],
)  # fmt: skip
def test_a_prefetch_bundle_without_usable_entries_is_400(
    cds: TestClient, entry: object, expression: str
) -> None:
    body = _request("certainty-possible-sciatica")
    body["prefetch"]["conditions"]["entry"] = entry
    assert _expressions(cds, body) == [expression]


def test_medications_and_painpath_results_in_prefetch_name_no_patient_and_are_passed_over(
    cds: TestClient,
) -> None:
    """A Medication names no patient and is read where a request refers to it; a result
    PainPath wrote earlier (its identifier) is its own output, not input: neither is a 400, and
    the cards stay those of the record."""
    body = _request("certainty-possible-sciatica")
    expected = _cards(cds, body)
    medication = {
        "resourceType": "Medication", "id": "med-1",
        "code": {"text": "Paracetamol 500 mg tablets"},
    }  # fmt: skip
    earlier = {
        "resourceType": "CarePlan", "id": "pp-1", "status": "active", "intent": "proposal",
        "identifier": [{"system": IDENTIFIER_SYSTEM, "value": "earlier-result"}],
        "subject": {"reference": "Patient/someone-else"},
    }  # fmt: skip
    entries = body["prefetch"]["conditions"]["entry"]
    entries += [{"resource": medication, "search": {"mode": "include"}},
                {"resource": earlier, "search": {"mode": "include"}}]  # fmt: skip
    got = _cards(cds, body)  # the input changed, so the ids derived from it did too

    def said(cards: list[Json]) -> list[tuple[str, str]]:
        return [(c["indicator"], c["summary"]) for c in cards]

    assert said(got) == said(expected)


def test_a_problem_outside_any_entry_is_named_prefetch() -> None:
    """Problems of the Bundle PainPath builds from the prefetch are named by the caller's paths:
    an entry's by its key and index, anything else (the built Bundle itself) as ``prefetch``."""
    built = CdsBundle({"resourceType": "Bundle"}, ("prefetch.conditions.entry[3].resource",))
    problems = [
        Problem("bad code", "Bundle.entry[0].resource.code"),
        Problem("bad type", "Bundle.type"),
        Problem("too deep", None),
    ]
    assert [p.expression for p in built.in_request(problems)] == [
        "prefetch.conditions.entry[3].resource.code", "prefetch", None,
    ]  # fmt: skip
