"""``POST /fhir/$triage`` against docs/interface.md: accepted bodies, the result Bundle (items 1-7),
subject resolution, multi-patient Bundles, determinism, ``return=transaction`` and logging."""

from __future__ import annotations

import copy
import json
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fhir_testkit import (
    AS_OF,
    CAUDA,
    FHIR_JSON,
    MECHANICAL,
    MULTI_FLAG,
    OUT_OF_SCOPE,
    PP,
    UUID_RE,
    Json,
    case_bundle,
    codes,
    cs,
    issue_codes,
    issues,
    observation,
    post_triage,
    produced,
    resources,
    subject_of,
    walk_references,
    with_prefix,
    with_urn_uuids,
)

from service.app.pipeline import Pipeline

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
PATIENT = "Patient/patient-1"
SERVICES = {
    "physiotherapy", "mri-lumbar", "ct-lumbar", "xray-lumbar", "epidural-steroid-injection",
    "medial-branch-block", "radiofrequency-denervation", "spine-surgery-referral",
    "pain-management-referral", "neurology-referral", "rheumatology-referral",
    "emergency-referral", "acupuncture",
}  # fmt: skip
# services whose standard code is verified (docs/clinical-references.md §0); the rest carry the
# PP code
STANDARD_CODED = {"physiotherapy", "mri-lumbar", "ct-lumbar", "xray-lumbar",
                  "epidural-steroid-injection", "spine-surgery-referral",
                  "pain-management-referral", "neurology-referral", "rheumatology-referral",
                  "acupuncture"}  # fmt: skip
Summarize = Callable[..., Json]


def _ok(client: TestClient, body: Json | bytes, **params: str) -> Json:
    response = post_triage(client, body, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON)
    result: Json = response.json()
    assert result["resourceType"] == "Bundle"
    return result


def _input_refs(bundle: Json) -> set[str]:
    """Every way the results may name an input resource: ``Type/id`` and each fullUrl."""
    refs = set()
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if "id" in resource:
            refs.add(f"{resource['resourceType']}/{resource['id']}")
        if "fullUrl" in entry:
            refs.add(entry["fullUrl"])
    return refs


def _output_urns(result: Json) -> set[str]:
    return {e["fullUrl"] for e in result["entry"]}


def _refs(items: list[Json] | None) -> list[str]:
    return [i["reference"] for i in items or []]


def _supporting(resource: Json) -> list[str]:
    """The inputs in the R4 core workflow-supportingInfo extension (those derivedFrom may not
    name)."""
    url = "http://hl7.org/fhir/StructureDefinition/workflow-supportingInfo"
    return [
        e["valueReference"]["reference"] for e in resource.get("extension", []) if e["url"] == url
    ]


def _dangling(bundle: Json) -> list[str]:
    """``urn:`` references that name no entry of the Bundle."""
    urls = {e["fullUrl"] for e in bundle.get("entry", [])}
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            ref = node.get("reference")
            if isinstance(ref, str) and ref.startswith("urn:") and ref not in urls:
                found.append(ref)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(bundle)
    return found


def _patient_resources(result: Json, subject: str) -> list[Json]:
    return [r for r in resources(result) if subject_of(r) == subject]


def _provenance_for(result: Json, subject: str) -> Json:
    """The Provenance whose targets include the subject's CarePlan."""
    plan = _urn_of(
        result, next(r for r in resources(result, "CarePlan") if subject_of(r) == subject)
    )
    found = [p for p in resources(result, "Provenance") if plan in _refs(p["target"])]
    assert len(found) == 1
    return found[0]


def _urn_of(result: Json, resource: Json) -> str:
    return next(str(e["fullUrl"]) for e in result["entry"] if e["resource"] is resource)


# ------------------------------------------------------------------ bundle types and bodies


def _searchset(bundle: Json) -> Json:
    out = copy.deepcopy(bundle)
    out["type"] = "searchset"
    for index, entry in enumerate(out["entry"]):
        entry["search"] = {"mode": "match" if index == 0 else "include"}
    out["entry"].append(
        {
            "fullUrl": "urn:uuid:5ea4c000-0000-4000-8000-000000000001",
            "resource": {
                "resourceType": "OperationOutcome",
                "issue": [
                    {
                        "severity": "warning",
                        "code": "incomplete",
                        "diagnostics": "results truncated",
                    }
                ],
            },
            "search": {"mode": "outcome"},
        }
    )
    return out


def _document(bundle: Json) -> Json:
    out = copy.deepcopy(bundle)
    out["type"] = "document"
    out["identifier"] = {
        "system": "urn:ietf:rfc:3986",
        "value": "urn:uuid:d0c00000-0000-4000-8000-000000000001",
    }
    out["timestamp"] = "2026-11-24T09:00:00Z"
    composition = {
        "resourceType": "Composition",
        "id": "comp-1",
        "status": "final",
        "type": {"coding": [{"system": LOINC, "code": "11488-4", "display": "Consult note"}]},
        "subject": {"reference": PATIENT},
        "date": "2026-11-24",
        "author": [{"display": "Dr Example"}],
        "title": "Spinal clinic consultation",
    }
    out["entry"].insert(
        0, {"fullUrl": "https://ehr.example.org/fhir/Composition/comp-1", "resource": composition}
    )
    return out


def _batch(bundle: Json) -> Json:
    out = copy.deepcopy(bundle)
    out["type"] = "batch"
    for entry in out["entry"]:
        resource = entry["resource"]
        entry["request"] = {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"}
    return out


def _bundle_of_type(kind: str) -> tuple[Json, str]:
    """The cauda-equina input as a Bundle of ``kind`` and the subject its results must carry."""
    bundle = case_bundle(CAUDA)
    if kind == "transaction":
        transaction, urns = with_urn_uuids(bundle)
        return transaction, urns[PATIENT]
    shaped = {
        "collection": lambda b: b,
        "batch": _batch,
        "searchset": _searchset,
        "document": _document,
    }
    return shaped[kind](bundle), PATIENT


@pytest.mark.parametrize("kind", ["collection", "transaction", "batch", "searchset", "document"])
def test_every_accepted_bundle_type_is_evaluated(
    client: TestClient, kind: str, summarize: Summarize
) -> None:
    bundle, subject = _bundle_of_type(kind)
    result = _ok(client, bundle)
    got = summarize(result)
    assert got["painType"] == "neuropathic"
    assert got["redFlags"] == ["cauda-equina"]
    assert got["recommendedStage"] == "urgent-referral"
    assert got["services"]["mri-lumbar"] == "stat"
    made = [
        r for r in produced(result) if r["resourceType"] not in {"Provenance", "OperationOutcome"}
    ]
    assert {subject_of(r) for r in made} == {subject}


def test_transaction_input_urns_are_the_references_the_results_use(client: TestClient) -> None:
    bundle, urns = with_urn_uuids(case_bundle(CAUDA))
    result = _ok(client, bundle)
    pain = observation(result, "pain-type")
    assert pain["subject"] == {"reference": urns[PATIENT]}
    assert set(_refs(pain["derivedFrom"])) <= set(urns.values())
    issue = resources(result, "DetectedIssue")[0]
    assert _refs(issue["implicated"]) == [urns["Observation/obs-saddle"]]


@pytest.mark.parametrize("mode", ["collection", "transaction"])
def test_urn_uuid_inputs_are_carried_so_nothing_dangles(client: TestClient, mode: str) -> None:
    """A urn:uuid resolves only inside its own Bundle: the inputs the result names that way (the
    patient, the evidence, what they refer to) come along under the same fullUrl."""
    bundle, urns = with_urn_uuids(case_bundle(CAUDA))
    for entry in bundle["entry"]:
        entry["resource"].pop("id", None)  # named only by its urn:uuid
    response = client.post("/fhir/$triage", params={"return": mode}, json=bundle)
    assert response.status_code == 200, response.text
    result = response.json()
    assert _dangling(result) == []
    carried = {e["fullUrl"]: e for e in result["entry"] if e["fullUrl"] in urns.values()}
    assert urns[PATIENT] in carried
    assert carried[urns[PATIENT]]["resource"]["resourceType"] == "Patient"
    provenance = resources(result, "Provenance")[0]
    assert {e["what"]["reference"] for e in provenance["entity"]} <= set(carried)
    assert not {t["reference"] for t in provenance["target"]} & set(carried)
    if mode == "transaction":
        for entry in carried.values():
            assert entry["request"]["method"] == "POST"
            assert entry["request"]["url"] == entry["resource"]["resourceType"]
    # without the carried entries, the same result would dangle: the check can fail
    trimmed = {**result, "entry": [e for e in result["entry"] if e["fullUrl"] not in carried]}
    assert urns[PATIENT] in _dangling(trimmed)


@pytest.mark.parametrize("mode", ["collection", "transaction"])
def test_evidence_with_neither_id_nor_full_url_is_carried_under_a_urn(
    client: TestClient, mode: str
) -> None:
    """An input entry nothing can name (no id, no fullUrl) is traced as ``Bundle.entry[i]``; the
    result names it by a deterministic urn:uuid and carries it, so nothing dangles."""
    bundle = case_bundle(CAUDA)
    evidence = [e for e in bundle["entry"] if e["resource"]["resourceType"] != "Patient"]
    for entry in evidence:
        entry.pop("fullUrl", None)
        entry["resource"].pop("id", None)
    params = {"return": mode, "asOf": "2026-11-24T10:00:00+01:00"}
    first = client.post("/fhir/$triage", params=params, json=bundle)
    again = client.post("/fhir/$triage", params=params, json=bundle)
    assert first.status_code == 200, first.text
    result = first.json()
    assert result == again.json()  # the urn is deterministic
    assert _dangling(result) == []
    assert '"reference":"Bundle.entry[' not in first.text.replace(" ", "")  # all rewritten
    kinds = {e["resource"]["resourceType"] for e in evidence}
    carried = [e for e in result["entry"] if e["resource"]["resourceType"] in kinds]
    assert carried
    assert all(e["fullUrl"].startswith("urn:uuid:") for e in carried)


def test_carried_inputs_never_change_the_callers_bundle(pipeline: Pipeline) -> None:
    """Carried inputs are the input's own resources; one whose reference has to be rewritten (it
    names a nameless entry by its trace path) is carried as a copy, the caller's Bundle intact."""
    bundle, _ = with_urn_uuids(case_bundle(CAUDA))
    by_id = {e["resource"]["id"]: e for e in bundle["entry"]}
    nameless = by_id["obs-saddle"]
    del nameless["fullUrl"], nameless["resource"]["id"]
    path = f"Bundle.entry[{bundle['entry'].index(nameless)}]"
    by_id["obs-slr"]["resource"]["derivedFrom"] = [{"reference": path}]
    before = copy.deepcopy(bundle)
    options = pipeline.options({"asOf": "2026-11-24T10:00:00+01:00"}, now=datetime.now(UTC))
    result = pipeline.evaluate(bundle, options).bundle
    assert bundle == before
    carried = {e["fullUrl"]: e["resource"] for e in result["entry"]}
    slr = carried[by_id["obs-slr"]["fullUrl"]]
    urn = slr["derivedFrom"][0]["reference"]
    assert urn.startswith("urn:uuid:")
    assert carried[urn]["code"] == nameless["resource"]["code"]
    assert _dangling(result) == []


def test_a_full_url_twice_is_refused_unless_the_versions_differ(client: TestClient) -> None:
    """bdl-7: a fullUrl is unique in a Bundle, or its entries carry different meta.versionId."""
    bundle = case_bundle(CAUDA)
    bundle["entry"][2]["fullUrl"] = bundle["entry"][1]["fullUrl"]
    response = client.post("/fhir/$triage", json=bundle, params={"asOf": AS_OF})
    assert response.status_code == 400, response.text
    [problem] = response.json()["issue"]
    assert problem["expression"] == ["Bundle.entry[2].fullUrl"]
    assert "bdl-7" in problem["diagnostics"]
    for index, version in ((1, "1"), (2, "2")):
        bundle["entry"][index]["resource"]["meta"] = {"versionId": version}
    assert client.post("/fhir/$triage", json=bundle, params={"asOf": AS_OF}).status_code == 200


def test_repeated_full_urls_are_reported_twenty_at_most(client: TestClient) -> None:
    bundle = case_bundle(CAUDA)
    first = bundle["entry"][1]
    bundle["entry"] += [copy.deepcopy(first) for _ in range(25)]
    response = client.post("/fhir/$triage", json=bundle, params={"asOf": AS_OF})
    assert response.status_code == 400
    assert len(response.json()["issue"]) == 20


def test_transaction_mixing_urn_and_literal_full_urls(client: TestClient) -> None:
    """Some entries new (urn:uuid, POST), some existing (server URL, PUT): each is cited the way
    the transaction names it."""
    bundle, urns = with_urn_uuids(case_bundle(CAUDA))
    condition = bundle["entry"][1]
    condition["fullUrl"] = "https://ehr.example.org/fhir/Condition/cond-sciatica"
    condition["request"] = {"method": "PUT", "url": "Condition/cond-sciatica"}
    result = _ok(client, bundle)
    pain = observation(result, "pain-type")
    assert pain["subject"] == {"reference": urns[PATIENT]}
    assert _refs(pain["derivedFrom"]) == [urns["Observation/obs-slr"]]
    assert _supporting(pain) == ["Condition/cond-sciatica"]
    assert _refs(resources(result, "CarePlan")[0]["addresses"]) == ["Condition/cond-sciatica"]


def test_searchset_outcome_entry_is_relayed_not_used(client: TestClient) -> None:
    result = _ok(client, _searchset(case_bundle(CAUDA)))
    relayed = [i for i in issues(result) if i.get("expression") == ["Bundle.entry[5]"]]
    assert len(relayed) == 1
    assert "Search outcome" in relayed[0]["diagnostics"]
    assert "warning incomplete: results truncated" in relayed[0]["diagnostics"]
    assert relayed[0]["severity"] == "warning"
    assert "entries-not-used" not in issue_codes(result)


_PAGES = "https://ehr.example/fhir/Condition?patient=patient-1&page="


@pytest.mark.parametrize(
    ("page", "incomplete"),
    [
        ({"total": 1}, False),  # every match is here (the includes are not counted)
        ({}, False),
        ({"total": 2}, True),
        ({"total": 1, "link": [{"relation": "next", "url": f"{_PAGES}2"}]}, True),
        ({"total": 1, "link": [{"relation": "self", "url": f"{_PAGES}1"}]}, False),
    ],
)  # fmt: skip
def test_one_page_of_a_larger_search_is_evaluated_and_said(
    client: TestClient, page: Json, incomplete: bool
) -> None:
    """A searchset that is one page (a next link, or a total above its matches) is evaluated on
    what was sent, and the answer says the record may be incomplete."""
    result = _ok(client, {**_searchset(case_bundle(CAUDA)), **page})
    said = [i for i in issues(result) if i.get("code") == "incomplete" and i.get("expression")]
    assert bool(said) is incomplete
    assert ("search-incomplete" in issue_codes(result)) is incomplete
    if incomplete:
        assert said[0]["expression"] == ["Bundle"]
        assert "may be incomplete" in said[0]["diagnostics"]


def test_document_composition_is_reported_as_not_used(client: TestClient) -> None:
    result = _ok(client, _document(case_bundle(CAUDA)))
    unused = [
        i for i in issues(result) if codes(i.get("details"), cs("outcome")) == ["entries-not-used"]
    ]
    assert [i["diagnostics"] for i in unused] == ["Entries not used by the rules: Composition (1)"]


def test_request_only_transaction_entry_is_reported(client: TestClient) -> None:
    bundle, _ = with_urn_uuids(case_bundle(CAUDA))
    bundle["entry"].append({"request": {"method": "DELETE", "url": "Observation/old"}})
    result = _ok(client, bundle)
    skipped = [i for i in issues(result) if i.get("expression") == ["Bundle.entry[5]"]]
    assert [i["diagnostics"] for i in skipped] == ["entry has no resource (request-only entry)"]


def _parameters(bundle: Json, *parts: Json) -> Json:
    return {
        "resourceType": "Parameters",
        "parameter": [{"name": "bundle", "resource": bundle}, *parts],
    }


def test_parameters_body_carries_bundle_asof_and_profile(
    client: TestClient, summarize: Summarize
) -> None:
    bundle = case_bundle("profile-neupsig-chronic-radicular")
    body = _parameters(
        bundle,
        {"name": "asOf", "valueDateTime": AS_OF},
        {"name": "profile", "valueCode": "neupsig"},
    )
    wrapped = _ok(client, body, asOf="2020-01-01", profile="nice-ng59")  # the body wins
    direct = _ok(client, bundle, profile="neupsig")
    assert wrapped["meta"]["tag"][0]["code"] == "neupsig"
    assert wrapped["timestamp"] == "2026-11-24T09:00:00+00:00"
    assert summarize(wrapped) == summarize(direct)
    assert "acupuncture" in summarize(wrapped)["services"]  # allowed under neupsig only
    assert "acupuncture" not in summarize(_ok(client, bundle))["services"]


def test_parameters_asof_as_value_date(client: TestClient) -> None:
    body = _parameters(case_bundle(OUT_OF_SCOPE), {"name": "asOf", "valueDate": "2026-11-25"})
    result = _ok(client, body)
    assert result["timestamp"] == "2026-11-25T00:00:00+00:00"
    # born 2010-11-25: 16 on that day, so in scope (at AS_OF, one day earlier, 15 and out)
    assert "out-of-scope-age" not in issue_codes(result)
    assert len(resources(result, "CarePlan")) == 1


def test_query_asof_is_the_evaluation_date(client: TestClient) -> None:
    result = _ok(client, case_bundle(OUT_OF_SCOPE), asOf="2026-11-25T00:30:00+01:00")
    assert result["timestamp"] == "2026-11-24T23:30:00+00:00"
    assert "out-of-scope-age" in issue_codes(result)  # still the 24th in UTC: 15 years old
    later = _ok(client, case_bundle(OUT_OF_SCOPE), asOf="2026-11-25")
    plan = resources(later, "CarePlan")[0]
    assert plan["created"] == "2026-11-25T00:00:00+00:00"


def test_query_return_transaction_and_parameters_return(client: TestClient) -> None:
    by_query = _ok(client, case_bundle(MECHANICAL), **{"return": "transaction"})
    by_part = _ok(
        client, _parameters(case_bundle(MECHANICAL), {"name": "return", "valueCode": "transaction"})
    )
    assert by_query["type"] == by_part["type"] == "transaction"
    assert _ok(client, case_bundle(MECHANICAL))["type"] == "collection"


@pytest.mark.parametrize(
    "content_type",
    [FHIR_JSON, "application/json", "application/fhir+json; charset=utf-8",
     "application/json;charset=UTF-8", "application/json+fhir", None],
)  # fmt: skip
def test_json_content_types_give_the_same_answer(
    client: TestClient, content_type: str | None
) -> None:
    body = json.dumps(case_bundle(CAUDA)).encode()
    reference = post_triage(client, body)
    response = post_triage(client, body, content_type=content_type)
    assert response.status_code == 200, response.text
    assert response.content == reference.content


# ------------------------------------------------------------------ the result Bundle (items 1-7)


@pytest.fixture
def cauda(client: TestClient) -> Json:
    """The result for the saddle-anaesthesia case."""
    return _ok(client, case_bundle(CAUDA))


def test_result_is_a_collection_bundle(cauda: Json) -> None:
    assert cauda["type"] == "collection"
    assert cauda["timestamp"] == "2026-11-24T09:00:00+00:00"
    assert [r["resourceType"] for r in resources(cauda)] == [
        "Observation", "Observation", "CarePlan", "ServiceRequest", "ServiceRequest",
        "DetectedIssue", "DocumentReference", "Provenance",
    ]  # fmt: skip


def test_pain_type_observation(cauda: Json) -> None:
    pain = observation(cauda, "pain-type")
    assert pain["status"] == "final"
    assert {"system": cs("painpath"), "code": "pain-type"}.items() <= pain["code"]["coding"][
        0
    ].items()
    assert codes(pain["valueCodeableConcept"], cs("pain-type")) == ["neuropathic"]
    [component] = pain["component"]
    assert codes(component["code"], cs("painpath")) == ["neuropathic-certainty"]
    assert codes(component["valueCodeableConcept"], cs("neuropathic-certainty")) == ["probable"]
    # R4 derivedFrom takes Observations (not Conditions): the Condition is in the R4 core
    # workflow-supportingInfo extension
    assert _refs(pain["derivedFrom"]) == ["Observation/obs-slr"]
    assert _supporting(pain) == ["Condition/cond-sciatica"]
    assert pain["subject"] == {"reference": PATIENT}
    assert pain["effectiveDateTime"] == "2026-11-24T09:00:00+00:00"


def test_stage_eligibility_observation(cauda: Json) -> None:
    stages = observation(cauda, "treatment-stage-eligibility")
    got = {
        codes(c["code"], cs("treatment-stage"))[0]: codes(
            c["valueCodeableConcept"], cs("eligibility")
        )
        for c in stages["component"]
    }
    assert got == {
        "conservative": ["deferred"],  # held under the stat red flag (rule set 2027.1 §8)
        "injection": ["not-eligible"],
        "surgical-referral": ["eligible"],
    }
    assert len(stages["component"]) == 3
    assert stages["status"] == "final"
    assert _urn_of(cauda, observation(cauda, "pain-type")) in _refs(stages["derivedFrom"])


def test_care_plan(cauda: Json) -> None:
    [plan] = resources(cauda, "CarePlan")
    assert (plan["status"], plan["intent"]) == ("draft", "proposal")
    assert codes(plan["category"][0], cs("treatment-stage")) == ["urgent-referral"]
    assert _refs(plan["addresses"]) == ["Condition/cond-sciatica"]
    observations = {_urn_of(cauda, r) for r in resources(cauda, "Observation")}
    assert observations <= set(_refs(plan["supportingInfo"]))
    assert {"Observation/obs-saddle", "Observation/obs-slr"} <= set(_refs(plan["supportingInfo"]))
    requests = {_urn_of(cauda, r) for r in resources(cauda, "ServiceRequest")}
    by_reference = {a["reference"]["reference"] for a in plan["activity"] if "reference" in a}
    assert by_reference == requests
    assert plan["text"]["status"] == "generated"
    div = plan["text"]["div"]
    assert div.startswith('<div xmlns="http://www.w3.org/1999/xhtml">')
    for words in ("Pain type", "Red flags", "Urgent referral"):
        assert words in div
    assert plan["subject"] == {"reference": PATIENT}


def test_service_requests(cauda: Json) -> None:
    requests = resources(cauda, "ServiceRequest")
    [plan] = resources(cauda, "CarePlan")
    priorities = {}
    for request in requests:
        assert (request["status"], request["intent"]) == ("draft", "proposal")
        [service] = codes(request["category"][0], cs("service"))
        assert service in SERVICES
        priorities[service] = request["priority"]
        systems = {c["system"] for c in request["code"]["coding"]}
        assert systems & {SNOMED, LOINC} if service in STANDARD_CODED else systems
        assert _refs(request["reasonReference"]) == ["Condition/cond-sciatica"]
        assert request["supportingInfo"]
        assert request["note"][0]["text"].strip()
        assert request["basedOn"] == [{"reference": _urn_of(cauda, plan)}]
        assert request["subject"] == {"reference": PATIENT}
    assert priorities == {"mri-lumbar": "stat", "spine-surgery-referral": "stat"}
    # the routine physiotherapy waits in the plan until after the urgent assessment (RULES §8)
    held = [a["detail"] for a in plan["activity"] if a.get("detail", {}).get("status") == "on-hold"]
    physio = [d for d in held if d["instantiatesCanonical"][0].endswith("/service-physiotherapy")]
    assert len(physio) == 1
    assert physio[0]["statusReason"] == {"text": "After urgent assessment"}


def test_red_flag_only_request_still_names_the_conditions(client: TestClient) -> None:
    """The stat MRI rests on an Observation (saddle anaesthesia); its reason is the sciatica."""
    result = _ok(client, case_bundle(CAUDA))
    mri = next(
        r
        for r in resources(result, "ServiceRequest")
        if codes(r["category"][0], cs("service")) == ["mri-lumbar"]
    )
    assert _refs(mri["supportingInfo"]) == ["Observation/obs-saddle"]
    assert _refs(mri["reasonReference"]) == ["Condition/cond-sciatica"]


def test_detected_issue_per_red_flag(client: TestClient) -> None:
    result = _ok(client, case_bundle(MULTI_FLAG))
    found = {codes(d["code"], cs("red-flag"))[0]: d for d in resources(result, "DetectedIssue")}
    assert sorted(found) == ["infection", "malignancy"]
    assert _refs(found["infection"]["implicated"]) == ["Condition/cond-discitis"]
    assert "Condition/cond-cancer-hx" in _refs(found["malignancy"]["implicated"])
    assert set(_refs(found["malignancy"]["implicated"])) <= _input_refs(case_bundle(MULTI_FLAG))
    for issue in found.values():
        assert issue["status"] == "preliminary"
        assert issue["severity"] == "high"
        assert issue["patient"] == {"reference": PATIENT}
        assert issue["text"]["div"].startswith("<div")


def test_inflammatory_flag_is_moderate(client: TestClient) -> None:
    result = _ok(client, case_bundle("inflammatory-ankylosing-spondylitis"))
    [issue] = resources(result, "DetectedIssue")
    assert codes(issue["code"], cs("red-flag")) == ["inflammatory"]
    assert issue["severity"] == "moderate"


@pytest.mark.parametrize(
    "name", [CAUDA, MECHANICAL, MULTI_FLAG, "questionnaire-startback-incomplete-reported"]
)
def test_provenance_targets_everything_produced(client: TestClient, name: str) -> None:
    result = _ok(client, case_bundle(name))
    [provenance] = resources(result, "Provenance")
    others = {e["fullUrl"] for e in result["entry"] if e["resource"] is not provenance}
    assert set(_refs(provenance["target"])) == others
    assert len(provenance["target"]) == len(others)
    ruleset = client.get("/healthz").json()["ruleset"]
    assert f"{PP}/ruleset/{ruleset}" in provenance["policy"]
    assert f"{PP}/profile/nice-ng59" in provenance["policy"]
    assert ruleset in provenance["agent"][0]["who"]["display"]
    assert provenance["recorded"] == "2026-11-24T09:00:00+00:00"


def test_operation_outcome_when_screen_not_documented(client: TestClient) -> None:
    result = _ok(client, case_bundle(MECHANICAL))
    [outcome] = resources(result, "OperationOutcome")
    issue, change = outcome["issue"]
    assert codes(issue["details"], cs("outcome")) == ["red-flag-screen-not-documented"]
    assert issue["severity"] == "information"
    assert issue["diagnostics"].startswith(f"{PATIENT}: Red-flag screen not documented")
    # RULES §9: the findings that would settle the screen, each with the code that records it
    assert codes(change["details"], cs("outcome")) == ["what-would-change"]
    assert "Ask about saddle anaesthesia" in change["diagnostics"]
    assert "http://snomed.info/sct|449813001" in change["diagnostics"]
    assert re.fullmatch(UUID_RE, outcome["id"])


def test_out_of_range_value_points_at_its_entry(client: TestClient) -> None:
    bundle = case_bundle(CAUDA)
    bundle["entry"][2]["resource"]["valueQuantity"]["value"] = 14  # NRS is 0-10
    result = _ok(client, bundle)
    [issue] = [
        i for i in issues(result) if "value-out-of-range" in codes(i["details"], cs("outcome"))
    ]
    assert issue["expression"] == ["Bundle.entry[2].resource"]
    assert issue["diagnostics"].startswith(f"{PATIENT}: ")
    assert "value 14 is out of range; ignored" in issue["diagnostics"]


def _crp_case(value: float, quantity: dict[str, str]) -> dict[str, Any]:
    bundle = case_bundle("infection-crp-11-immunosuppressed")
    [crp] = [e for e in bundle["entry"] if e["resource"]["id"] == "obs-crp"]
    crp["resource"]["valueQuantity"] = {"value": value, **quantity}
    return bundle


@pytest.mark.parametrize(
    ("value", "quantity", "flagged"),
    [
        (1.1, {"system": "http://unitsofmeasure.org", "code": "mg/dL", "unit": "mg/dL"}, True),
        (1.0, {"system": "http://unitsofmeasure.org", "code": "mg/dL", "unit": "mg/dL"}, False),
        # the UCUM code decides over a display unit; an OID names UCUM too
        (1.1, {"system": "urn:oid:2.16.840.1.113883.6.8", "code": "mg/dL", "unit": "x"}, True),
        (1.1, {"unit": "mg/dl"}, True),  # no code: the unit text
        (11, {}, True),  # no unit: read in mg/L
    ],
)
def test_crp_units_are_converted_before_the_threshold(
    client: TestClient, value: float, quantity: dict[str, str], flagged: bool
) -> None:
    result = _ok(client, _crp_case(value, quantity))
    flags = [codes(d["code"], cs("red-flag")) for d in resources(result, "DetectedIssue")]
    assert (["infection"] in flags) is flagged
    assert not [i for i in issues(result) if "value-unit" in str(i["details"])]


def test_a_crp_unit_not_understood_is_reported_not_guessed(client: TestClient) -> None:
    bundle = _crp_case(95, {"system": "http://unitsofmeasure.org", "code": "nmol/L"})
    index = next(i for i, e in enumerate(bundle["entry"]) if e["resource"]["id"] == "obs-crp")
    result = _ok(client, bundle)
    assert resources(result, "DetectedIssue") == []
    [issue] = [
        i
        for i in issues(result)
        if "value-unit-not-understood" in codes(i["details"], cs("outcome"))
    ]
    assert issue["severity"] == "warning"
    assert issue["expression"] == [f"Bundle.entry[{index}].resource"]
    assert "crp value 95 in unit 'nmol/L' cannot be converted to 'mg/L'" in issue["diagnostics"]


@pytest.mark.parametrize(
    ("deceased", "planned"),
    [
        ({"deceasedBoolean": True}, False),
        ({"deceasedDateTime": "2026-11-20T08:00:00+01:00"}, False),
        ({"deceasedDateTime": "2026-12-01"}, True),  # after asOf: alive on the evaluation date
        ({"deceasedBoolean": False}, True),
    ],
)
def test_a_deceased_patient_gets_no_care_plan(
    client: TestClient, deceased: dict[str, Any], planned: bool
) -> None:
    bundle = case_bundle(CAUDA)
    bundle["entry"][0]["resource"].update(deceased)
    result = _ok(client, bundle)
    assert bool(resources(result, "CarePlan")) is planned
    assert bool(resources(result, "DetectedIssue")) is planned
    noted = [i for i in issues(result) if "out-of-scope-deceased" in str(i.get("details"))]
    assert bool(noted) is not planned
    if noted:
        assert noted[0]["severity"] == "warning"
        assert noted[0]["code"] == "business-rule"


def test_ignored_entry_of_a_patient_is_reported_in_its_outcome(client: TestClient) -> None:
    bundle = case_bundle(CAUDA)
    bundle["entry"][4]["resource"]["status"] = "entered-in-error"  # the saddle anaesthesia
    result = _ok(client, bundle)
    assert resources(result, "DetectedIssue") == []
    [issue] = [i for i in issues(result) if i.get("expression") == ["Bundle.entry[4]"]]
    assert issue["diagnostics"] == f"{PATIENT}: Observation ignored: status is entered-in-error"
    assert codes(issue["details"], cs("outcome")) == ["skipped-entry"]
    assert issue["severity"] == "information"


def test_no_operation_outcome_when_nothing_to_tell(client: TestClient) -> None:
    result = _ok(client, case_bundle("mechanical-low-back-pain-fever-screened-absent"))
    assert resources(result, "OperationOutcome") == []


def test_out_of_scope_patient_gets_the_outcome_only(client: TestClient) -> None:
    result = _ok(client, case_bundle(OUT_OF_SCOPE))
    assert [r["resourceType"] for r in resources(result)] == ["OperationOutcome"]
    [issue] = issues(result)
    assert codes(issue["details"], cs("outcome")) == ["out-of-scope-age"]
    assert (issue["severity"], issue["code"]) == ("warning", "business-rule")
    assert issue["diagnostics"].startswith(f"{PATIENT}: ")


# ------------------------------------------------------------------ subject resolution


def test_relative_subject_is_kept(cauda: Json) -> None:
    assert {subject_of(r) for r in resources(cauda) if subject_of(r)} == {PATIENT}


def test_absolute_reference_matches_an_absolute_full_url(
    client: TestClient, summarize: Summarize
) -> None:
    bundle = case_bundle(CAUDA)
    absolute = "http://ehr.example/fhir/Patient/x"
    bundle["entry"][0]["fullUrl"] = absolute
    bundle["entry"][0]["resource"]["id"] = "x"
    for entry in bundle["entry"][1:]:
        entry["resource"]["subject"]["reference"] = absolute
    result = _ok(client, bundle)
    assert {subject_of(r) for r in resources(result) if subject_of(r)} == {"Patient/x"}
    assert summarize(result)["redFlags"] == ["cauda-equina"]
    assert "skipped-entry" not in issue_codes(result)


def test_urn_uuid_patient_full_url_is_the_subject(client: TestClient) -> None:
    bundle = case_bundle(CAUDA)
    urn = "urn:uuid:0a7e0000-0000-4000-8000-000000000001"
    bundle["entry"][0]["fullUrl"] = urn
    for entry in bundle["entry"][1:]:
        entry["resource"]["subject"]["reference"] = urn
    result = _ok(client, bundle)
    assert {subject_of(r) for r in resources(result) if subject_of(r)} == {urn}
    assert "skipped-entry" not in issue_codes(result)


def test_patient_known_only_by_reference(client: TestClient, summarize: Summarize) -> None:
    bundle = case_bundle(CAUDA)
    del bundle["entry"][0]
    for entry in bundle["entry"]:
        entry["resource"]["subject"]["reference"] = "Patient/123"
    result = _ok(client, bundle)
    assert {subject_of(r) for r in resources(result) if subject_of(r)} == {"Patient/123"}
    got = summarize(result)
    assert got["redFlags"] == ["cauda-equina"]
    assert "age-unknown" in got["issues"]


def test_unresolvable_subjects_are_skipped_and_reported(
    client: TestClient, summarize: Summarize
) -> None:
    result = _ok(client, case_bundle("skipped-entry-unresolved-subject"))
    skipped = [
        i for i in issues(result) if "skipped-entry" in codes(i.get("details"), cs("outcome"))
    ]
    assert [i["expression"] for i in skipped] == [["Bundle.entry[2]"], ["Bundle.entry[3]"]]
    assert all("subject does not resolve" in i["diagnostics"] for i in skipped)
    assert summarize(result)["painType"] == "mechanical"  # the orphan DN4 of 8 was not used


def test_group_subject_is_skipped(client: TestClient) -> None:
    bundle = case_bundle(CAUDA)
    bundle["entry"][3]["resource"]["subject"] = {"reference": "Group/g1"}  # the SLR finding
    result = _ok(client, bundle)
    skipped = [i for i in issues(result) if i.get("expression") == ["Bundle.entry[3]"]]
    assert [i["diagnostics"] for i in skipped] == [
        "Observation: subject does not resolve to a patient"
    ]
    assert "Observation/obs-slr" not in _refs(observation(result, "pain-type").get("derivedFrom"))


def test_anonymous_patient_entry_is_reported_not_given_a_made_up_subject(
    client: TestClient,
) -> None:
    other = with_prefix(case_bundle(MECHANICAL), "b")
    anonymous = {"resource": {"resourceType": "Patient", "birthDate": "1970-01-01"}}
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [anonymous, *other["entry"]]}
    result = _ok(client, bundle)
    subjects = {subject_of(r) for r in resources(result) if subject_of(r)}
    assert subjects == {"Patient/b-patient-1"}
    [skipped] = [i for i in issues(result) if i.get("expression") == ["Bundle.entry[0]"]]
    assert "neither id nor fullUrl" in skipped["diagnostics"]


# ------------------------------------------------------------------ several patients


@pytest.fixture
def three(client: TestClient) -> Json:
    """Cauda equina (a), mechanical (b) and out-of-scope (c) patients in one Bundle."""
    entries = [
        e
        for prefix, name in (("a", CAUDA), ("b", MECHANICAL), ("c", OUT_OF_SCOPE))
        for e in with_prefix(case_bundle(name), prefix)["entry"]
    ]
    return _ok(client, {"resourceType": "Bundle", "type": "collection", "entry": entries})


def test_each_patient_gets_its_own_results(three: Json, summarize: Summarize) -> None:
    a, b = summarize(three, "Patient/a-patient-1"), summarize(three, "Patient/b-patient-1")
    assert (a["painType"], a["redFlags"], a["recommendedStage"]) == (
        "neuropathic",
        ["cauda-equina"],
        "urgent-referral",
    )
    assert (b["painType"], b["redFlags"], b["recommendedStage"]) == (
        "mechanical",
        [],
        "conservative",
    )
    assert "mri-lumbar" in a["services"]
    assert "mri-lumbar" not in b["services"]
    assert len(resources(three, "CarePlan")) == 2
    assert len(resources(three, "Provenance")) == 2
    assert [subject_of(d) for d in resources(three, "DetectedIssue")] == ["Patient/a-patient-1"]
    assert not _patient_resources(three, "Patient/c-patient-1")


def test_patients_do_not_share_evidence(three: Json) -> None:
    for prefix in ("a", "b"):
        subject = f"Patient/{prefix}-patient-1"
        produced = _patient_resources(three, subject)
        inputs = (
            {ref["reference"] for r in produced for ref in walk_references(r)}
            - _output_urns(three)
            - {subject}
        )
        assert inputs, subject
        assert all(ref.split("/")[1].startswith(f"{prefix}-") for ref in inputs), inputs


def test_each_patient_outcome_is_its_own(three: Json) -> None:
    notes: dict[str, list[str]] = {}
    for i in issues(three):
        notes.setdefault(i["diagnostics"].split(": ")[0], []).extend(
            codes(i.get("details"), cs("outcome"))
        )
    assert notes == {
        "Patient/b-patient-1": ["red-flag-screen-not-documented", "what-would-change"],
        "Patient/c-patient-1": ["out-of-scope-age"],
    }
    outcome_b = next(
        e["fullUrl"]
        for e in three["entry"]
        if e["resource"]["resourceType"] == "OperationOutcome"
        and e["resource"]["issue"][0]["diagnostics"].startswith("Patient/b-patient-1: ")
    )
    for subject, extra in (("Patient/a-patient-1", set()), ("Patient/b-patient-1", {outcome_b})):
        targets = set(_refs(_provenance_for(three, subject)["target"]))
        own = {_urn_of(three, r) for r in _patient_resources(three, subject)}
        assert targets == own | extra  # its resources and its OperationOutcome, nobody else's


def test_a_patient_evaluates_the_same_alone_or_with_others(
    client: TestClient, three: Json, summarize: Summarize
) -> None:
    alone = _ok(client, with_prefix(case_bundle(CAUDA), "a"))
    together = summarize(three, "Patient/a-patient-1")
    by_itself = summarize(alone, "Patient/a-patient-1")
    for key in (
        "painType",
        "certainty",
        "redFlags",
        "stages",
        "recommendedStage",
        "services",
        "medications",
    ):
        assert together[key] == by_itself[key], key


# ------------------------------------------------------------------ determinism


def test_same_input_gives_byte_identical_output(client: TestClient) -> None:
    body = json.dumps(case_bundle(MULTI_FLAG)).encode()
    first, second = post_triage(client, body), post_triage(client, body)
    assert first.status_code == 200
    assert first.content == second.content


def _ids(result: Json) -> set[str]:
    return {result["id"], *(r["id"] for r in resources(result))}


def test_other_asof_or_profile_gives_other_ids(client: TestClient) -> None:
    base = _ok(client, case_bundle(CAUDA))
    later = _ok(client, case_bundle(CAUDA), asOf="2026-11-25T10:00:00+01:00")
    neupsig = _ok(client, case_bundle(CAUDA), profile="neupsig")
    assert _ids(base).isdisjoint(_ids(later))
    assert _ids(base).isdisjoint(_ids(neupsig))


def test_ids_are_uuids_and_full_urls_name_them(cauda: Json) -> None:
    assert re.fullmatch(UUID_RE, cauda["id"])
    for entry in cauda["entry"]:
        assert re.fullmatch(UUID_RE, entry["resource"]["id"])
        assert entry["fullUrl"] == f"urn:uuid:{entry['resource']['id']}"
    assert len(_ids(cauda)) == len(cauda["entry"]) + 1


# ------------------------------------------------------------------ return=transaction


def _transaction(client: TestClient, body: Json) -> Json:
    return _ok(client, body, **{"return": "transaction"})


@pytest.mark.parametrize("name", [CAUDA, MECHANICAL, MULTI_FLAG])
def test_transaction_entries_are_conditional_creates(client: TestClient, name: str) -> None:
    result = _transaction(client, case_bundle(name))
    assert result["type"] == "transaction"
    assert "OperationOutcome" not in {r["resourceType"] for r in resources(result)}
    for entry in result["entry"]:
        resource, request = entry["resource"], entry["request"]
        if resource["resourceType"] in {"Provenance", "DetectedIssue"}:
            # R4 Provenance has no identifier, and servers need not search DetectedIssue by
            # identifier: PUT at the deterministic id (idempotent re-post)
            url = f"{resource['resourceType']}/{resource['id']}"
            assert request == {"method": "PUT", "url": url}
            continue
        identifier, key = resource["identifier"]
        assert identifier["system"] == f"{PP}/identifier/result"
        assert identifier["value"] == resource["id"]  # this result: a changed result is new
        assert key["system"] == f"{PP}/identifier/result-key"  # stable per patient (write-back)
        assert re.fullmatch(UUID_RE, key["value"])
        assert request == {
            "method": "POST",
            "url": resource["resourceType"],
            "ifNoneExist": f"identifier={PP}/identifier/result|{identifier['value']}",
        }


@pytest.mark.parametrize("name", [CAUDA, MECHANICAL, MULTI_FLAG])
def test_transaction_urn_references_resolve_inside_the_bundle(
    client: TestClient, name: str
) -> None:
    result = _transaction(client, case_bundle(name))
    full_urls = _output_urns(result)
    assert all(u.startswith("urn:uuid:") for u in full_urls)
    urn_refs = {
        r["reference"] for r in walk_references(result) if r["reference"].startswith("urn:")
    }
    assert urn_refs
    assert urn_refs <= full_urls
    [provenance] = resources(result, "Provenance")
    assert set(_refs(provenance["target"])) == full_urls - {_urn_of(result, provenance)}


def test_transaction_of_a_urn_input_is_self_contained(client: TestClient) -> None:
    """Results of a urn:uuid input point at the input's urns, and the inputs so named come along
    under the same fullUrls: every urn resolves inside the result."""
    bundle, urns = with_urn_uuids(case_bundle(CAUDA))
    result = _transaction(client, bundle)
    urn_refs = {
        r["reference"] for r in walk_references(result) if r["reference"].startswith("urn:")
    }
    assert urns[PATIENT] in urn_refs
    assert urn_refs <= {e["fullUrl"] for e in result["entry"]}


# ------------------------------------------------------------------ logging


def test_no_patient_data_in_the_logs(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    bundle = case_bundle(CAUDA)
    patient: dict[str, Any] = bundle["entry"][0]["resource"]
    patient["name"] = [{"family": "Zzyzxquorbel", "given": ["Philomena"]}]
    patient["birthDate"] = "1961-07-13"
    bundle["entry"][1]["resource"]["code"]["text"] = (
        "Shooting pain after gardening on Quillsby Lane"
    )
    bundle["entry"][1]["resource"]["note"] = [{"text": "Lives alone at Quillsby Lane"}]
    caplog.set_level(logging.DEBUG)
    result = _ok(client, bundle)
    assert resources(result, "CarePlan")
    logged = [record.getMessage() for record in caplog.records]
    assert any("triage evaluated" in line for line in logged)  # the log was captured at all
    for secret in ("Zzyzxquorbel", "Philomena", "1961-07-13", "Quillsby", "gardening"):
        assert not [line for line in logged if secret in line], secret
