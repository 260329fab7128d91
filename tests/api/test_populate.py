"""``Questionnaire/$populate`` (SDC): pre-filled from the record with each answer's source, and
the round trip: populate the red-flag screen, answer it, post it back to ``$triage``."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from fhir_testkit import CAUDA, FHIR_JSON, PP, Json, issue_codes, load_case, schema_errors

from service.fhir.populate import ANSWER_SOURCE

SCREEN = "/fhir/Questionnaire/red-flag-screen/$populate"
UNDOCUMENTED = "duration-subacute-43-days-esi-insufficient"
NOTE = "red-flag-screen-not-documented"


def _post(client: TestClient, path: str, body: Any) -> Any:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return client.post(path, content=content, headers={"content-type": FHIR_JSON})


def _params(*parts: Json) -> Json:
    return {"resourceType": "Parameters", "parameter": list(parts)}


def _data(case: Json) -> list[Json]:
    return [
        {"name": "data", "resource": case["bundle"]},
        {"name": "asOf", "valueDateTime": case["asOf"]},
    ]


def _response(answer: Json) -> Json:
    [part] = [p for p in answer["parameter"] if p["name"] == "response"]
    resource: Json = part["resource"]
    return resource


def test_the_screen_is_prefilled_with_each_answer_traced_to_its_entry(client: TestClient) -> None:
    answer = _post(client, SCREEN, _params(*_data(load_case(CAUDA))))
    assert answer.status_code == 200, answer.text
    response = _response(answer.json())
    assert schema_errors(response) == []
    assert response["questionnaire"] == f"{PP}/Questionnaire/red-flag-screen"
    assert response["status"] == "in-progress"
    [saddle] = response["item"]
    [value] = saddle["answer"]
    assert value["valueBoolean"] is True
    assert value["extension"] == [
        {"url": ANSWER_SOURCE, "valueReference": {"reference": "Observation/obs-saddle"}}
    ]


def test_populate_answer_triage_round_trip_documents_the_screen(client: TestClient) -> None:
    case = load_case(UNDOCUMENTED)
    before = _post(client, "/fhir/$triage?asOf=2026-11-24T10:00:00%2B01:00", case["bundle"])
    assert NOTE in issue_codes(before.json())
    answer = _post(client, SCREEN, _params(*_data(case)))
    response = _response(answer.json())
    assert "item" not in response  # nothing in the record answers the screen
    questionnaire = client.get("/fhir/Questionnaire/red-flag-screen").json()
    completed = copy.deepcopy(response)  # the clinician asks and records every finding absent
    completed["status"] = "completed"
    completed["item"] = [
        {"linkId": q["linkId"], "text": q["text"], "answer": [{"valueBoolean": False}]}
        for q in questionnaire["item"]
    ]
    bundle = copy.deepcopy(case["bundle"])
    bundle["entry"].append(
        {"fullUrl": f"https://ehr.example.org/fhir/QuestionnaireResponse/{completed['id']}",
         "resource": completed}
    )  # fmt: skip
    after = _post(client, "/fhir/$triage?asOf=2026-11-24T10:00:00%2B01:00", bundle)
    assert after.status_code == 200, after.text
    assert NOTE not in issue_codes(after.json())
    # a finding answered present raises the red flag, as an Observation would
    completed["item"][0]["answer"] = [{"valueBoolean": True}]
    flagged = _post(client, "/fhir/$triage?asOf=2026-11-24T10:00:00%2B01:00", bundle).json()
    issues = [e for e in flagged["entry"] if e["resource"]["resourceType"] == "DetectedIssue"]
    assert issues, "saddle anaesthesia answered yes raises the cauda equina red flag"


def test_an_instrument_is_prefilled_from_the_latest_response(client: TestClient) -> None:
    case = load_case("questionnaire-dn4-4-items-positive")
    answer = _post(client, "/fhir/Questionnaire/dn4/$populate", _params(*_data(case)))
    assert answer.status_code == 200, answer.text
    response = _response(answer.json())
    answered = [i for i in response["item"] if "answer" in i] + [
        c for i in response["item"] for c in i.get("item", []) if "answer" in c
    ]
    assert answered
    sources = {
        a["extension"][0]["valueReference"]["reference"] for i in answered for a in i["answer"]
    }
    assert all(s.startswith("QuestionnaireResponse/") for s in sources)


def test_type_level_by_canonical(client: TestClient) -> None:
    params = _params(*_data(load_case(CAUDA)))
    instance = _post(client, SCREEN, params).json()
    by_canonical = _params(
        *params["parameter"],
        {"name": "canonical", "valueCanonical": f"{PP}/Questionnaire/red-flag-screen"},
    )
    assert _post(client, "/fhir/Questionnaire/$populate", by_canonical).json() == instance


BAD: list[tuple[str, str, Any, int]] = [
    ("not json", SCREEN, b"[", 400),
    ("no patient", SCREEN, _params(), 400),
    ("unknown questionnaire", "/fhir/Questionnaire/nope/$populate", b"", 404),
    ("unknown canonical", "/fhir/Questionnaire/$populate", _params({"name": "canonical", "valueCanonical": f"{PP}/Questionnaire/x"}), 404),  # noqa: E501
    ("no canonical at type level", "/fhir/Questionnaire/$populate", _params(), 400),
    ("canonical at instance level", SCREEN, _params({"name": "canonical", "valueCanonical": f"{PP}/Questionnaire/dn4"}), 400),  # noqa: E501
    ("unknown part", SCREEN, _params({"name": "bogus", "valueString": "x"}), 400),
    ("no FHIR server", SCREEN, _params({"name": "subject", "valueReference": {"reference": "Patient/p1"}}), 422),  # noqa: E501
]  # fmt: skip


@pytest.mark.parametrize(("path", "body", "status"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_populate_input_is_a_4xx_operation_outcome(
    client: TestClient, path: str, body: Any, status: int
) -> None:
    answer = _post(client, path, body)
    assert answer.status_code == status, answer.text
    assert answer.json()["resourceType"] == "OperationOutcome"
