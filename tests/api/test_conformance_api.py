"""Read-only endpoints: ``/fhir/metadata``, ``/healthz``, the OpenAPI docs and the conformance
resources of ``fhir_profiles/`` (read by id, search by canonical url)."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from fhir_testkit import FHIR_JSON, PP, ROOT, Json, schema_errors

from service.domain.knowledge import KnowledgeBase

DN4 = f"{PP}/Questionnaire/dn4"
QUESTIONNAIRES = sorted(
    p.stem.removeprefix("Questionnaire-")
    for p in (ROOT / "fhir_profiles" / "questionnaires").glob("*.json")
)


def _fhir(client: TestClient, path: str, **params: str) -> Json:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON)
    body: Json = response.json()
    return body


@pytest.fixture
def capability(client: TestClient) -> Json:
    """``GET /fhir/metadata``."""
    return _fhir(client, "/fhir/metadata")


def test_capability_statement_basics(capability: Json) -> None:
    assert capability["resourceType"] == "CapabilityStatement"
    assert capability["fhirVersion"] == "4.0.1"
    assert capability["kind"] == "instance"
    assert capability["status"] == "active"
    assert "application/fhir+json" in capability["format"]
    assert schema_errors(capability) == []


def test_capability_lists_triage_at_system_and_patient_level(capability: Json) -> None:
    [rest] = capability["rest"]
    assert rest["mode"] == "server"
    patient = next(r for r in rest["resource"] if r["type"] == "Patient")
    for operations in (rest["operation"], patient["operation"]):
        assert [o["name"] for o in operations] == ["triage"]
        assert operations[0]["definition"].startswith(f"{PP}/OperationDefinition/")


def test_capability_lists_the_guideline_profiles(capability: Json, kb: KnowledgeBase) -> None:
    documentation = capability["rest"][0]["operation"][0]["documentation"]
    for code, profile in kb.catalogue.profiles.items():
        assert f"`{code}`" in documentation
        assert profile.url in documentation
    assert f"`{kb.catalogue.default_profile}` (default)" in documentation


def test_capability_names_the_rule_set(capability: Json, client: TestClient) -> None:
    ruleset = client.get("/healthz").json()["ruleset"]
    assert f"rule set {ruleset}" in capability["description"]


def test_capability_lists_the_conformance_resources(capability: Json) -> None:
    questionnaire = next(
        r for r in capability["rest"][0]["resource"] if r["type"] == "Questionnaire"
    )
    assert {i["code"] for i in questionnaire["interaction"]} == {"read", "search-type"}
    assert questionnaire["searchParam"] == [{"name": "url", "type": "uri"}]


def test_healthz(client: TestClient, kb: KnowledgeBase) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "ruleset": kb.version}


def test_openapi_document_lists_triage(client: TestClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "post" in paths["/fhir/$triage"]
    assert "post" in paths["/fhir/Patient/{patient_id}/$triage"]
    assert "get" in paths["/fhir/metadata"]
    responses = paths["/fhir/$triage"]["post"]["responses"]
    assert {"200", "400", "413", "415", "422"} <= set(responses)


def test_docs_page(client: TestClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in response.text


@pytest.mark.parametrize("qid", QUESTIONNAIRES)
def test_read_each_questionnaire(client: TestClient, qid: str) -> None:
    questionnaire = _fhir(client, f"/fhir/Questionnaire/{qid}")
    on_disk = json.loads(
        (ROOT / "fhir_profiles" / "questionnaires" / f"Questionnaire-{qid}.json").read_text()
    )
    assert questionnaire == on_disk
    assert questionnaire["url"] == f"{PP}/Questionnaire/{qid}"
    assert schema_errors(questionnaire) == []


def _searchset(client: TestClient, **params: str) -> Json:
    bundle = _fhir(client, "/fhir/Questionnaire", **params)
    assert bundle["resourceType"] == "Bundle"
    assert bundle["type"] == "searchset"
    assert bundle["total"] == len(bundle.get("entry", []))  # R4: no empty array, no entry
    assert all(e["search"] == {"mode": "match"} for e in bundle.get("entry", []))
    assert schema_errors(bundle) == []
    return bundle


def test_search_questionnaire_by_url(client: TestClient) -> None:
    bundle = _searchset(client, url=DN4)
    assert [e["resource"]["id"] for e in bundle["entry"]] == ["dn4"]


def test_search_questionnaire_by_url_and_version(client: TestClient) -> None:
    version = _fhir(client, "/fhir/Questionnaire/dn4")["version"]
    bundle = _searchset(client, url=f"{DN4}|{version}")
    assert [e["resource"]["id"] for e in bundle["entry"]] == ["dn4"]
    assert "entry" not in _searchset(client, url=f"{DN4}|0.0.1")


def test_search_unknown_url_is_an_empty_searchset(client: TestClient) -> None:
    assert _searchset(client, url=f"{PP}/Questionnaire/nope")["total"] == 0


def test_search_without_url_lists_every_questionnaire(client: TestClient) -> None:
    bundle = _searchset(client)
    # the hand-written instruments and the recording forms generated from the knowledge files
    expected = sorted([*QUESTIONNAIRES, "red-flag-screen", "stage-facts"])
    assert sorted(e["resource"]["id"] for e in bundle["entry"]) == expected


# --- search result parameters (R4 search.html) ----------------------------------------------------
def test_count_pages_with_next_and_previous_links(client: TestClient) -> None:
    everything = _fhir(client, "/fhir/ValueSet")
    total = everything["total"]
    assert total > 25
    first = _fhir(client, "/fhir/ValueSet", _count="10")
    assert first["total"] == total
    assert [e["resource"]["id"] for e in first["entry"]] == [
        e["resource"]["id"] for e in everything["entry"][:10]
    ]
    links = {link["relation"]: link["url"] for link in first["link"]}
    assert links["self"].endswith("/fhir/ValueSet?_count=10")
    assert "previous" not in links
    second = client.get(links["next"].replace("http://testserver", "")).json()
    assert [e["resource"]["id"] for e in second["entry"]] == [
        e["resource"]["id"] for e in everything["entry"][10:20]
    ]
    back = {link["relation"]: link["url"] for link in second["link"]}
    assert back["previous"].endswith("_count=10")
    last = _fhir(client, "/fhir/ValueSet", _count="10", _offset=str(total - 3))
    assert len(last["entry"]) == 3
    assert "next" not in {link["relation"] for link in last["link"]}
    assert schema_errors(second) == []


def test_summary_count_and_elements(client: TestClient) -> None:
    counted = _fhir(client, "/fhir/Questionnaire", _summary="count")
    assert counted["total"] > 0
    assert "entry" not in counted
    narrow = _fhir(client, "/fhir/Questionnaire", _elements="url,title")
    for entry in narrow["entry"]:
        resource = entry["resource"]
        assert set(resource) <= {"resourceType", "id", "meta", "url", "title"}
        assert any(t["code"] == "SUBSETTED" for t in resource["meta"]["tag"])
    summary = _fhir(client, "/fhir/Questionnaire", _summary="true")
    assert all("item" not in e["resource"] for e in summary["entry"])


def test_unsupported_parameters_are_reported_or_refused(client: TestClient) -> None:
    lenient = _fhir(client, "/fhir/ValueSet", name="x")
    outcome = [e for e in lenient["entry"] if e["search"]["mode"] == "outcome"]
    assert len(outcome) == 1
    assert outcome[0]["resource"]["issue"][0]["expression"] == ["name"]
    strict = client.get(
        "/fhir/ValueSet", params={"name": "x"}, headers={"Prefer": "handling=strict"}
    )
    assert strict.status_code == 400
    assert "not supported here: name" in strict.json()["issue"][0]["diagnostics"]
    general = {"_format": "json", "_pretty": "true"}  # FHIR's general parameters: always taken
    pretty = client.get("/fhir/ValueSet", params=general, headers={"Prefer": "handling=strict"})
    assert pretty.status_code == 200
    assert all(e["search"]["mode"] == "match" for e in pretty.json()["entry"])


@pytest.mark.parametrize(
    "params",
    [{"_count": "-1"}, {"_count": "x"}, {"_summary": "text"}, {"_offset": "later"}],
)
def test_bad_result_parameters_are_400(client: TestClient, params: dict[str, str]) -> None:
    assert client.get("/fhir/ValueSet", params=params).status_code == 400


def test_search_by_id_and_a_repeated_parameter(client: TestClient) -> None:
    found = _fhir(client, "/fhir/Questionnaire", _id="dn4,startback,nope")
    assert sorted(e["resource"]["id"] for e in found["entry"]) == ["dn4", "startback"]
    repeated = client.get("/fhir/ValueSet?_count=1&_count=2")
    assert repeated.status_code == 400
    assert repeated.json()["issue"][0]["expression"] == ["_count"]
