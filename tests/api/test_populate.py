"""``Questionnaire/$populate`` (SDC): pre-filled from the record with each answer's source, and
the round trips: populate a recording form (the red-flag screen, the treatment-stage facts),
answer it, post it back to ``$triage`` with the patient's data, and see the open decision
decided - or, when the answer does not decide it, still open."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from fhir_testkit import (
    CAUDA,
    FHIR_JSON,
    PP,
    Json,
    issue_codes,
    issues,
    load_case,
    schema_errors,
    stage_of,
)

from service.fhir.populate import ANSWER_SOURCE

SCREEN = "/fhir/Questionnaire/red-flag-screen/$populate"
UNDOCUMENTED = "duration-subacute-43-days-esi-insufficient"
NOTE = "red-flag-screen-not-documented"
STAGE_FACTS = "/fhir/Questionnaire/stage-facts/$populate"
NO_ONSET = "esi-unknown-duration-insufficient"  # sciatica, NRS 8, no onset, no treatment
TRIAGE = "/fhir/$triage?asOf=2026-11-24T10:00:00%2B01:00"


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


# --- the missing-data loop for a treatment stage: onset unknown -> injection undecided ----------
def _open(bundle: Json) -> list[str]:
    """What would change the decision: the 'about' of each open question."""
    return [
        i["diagnostics"].split(" - ", 1)[1].split(":", 1)[0]
        for i in issues(bundle)
        if "what-would-change" in str(i.get("details"))
    ]


def _answered(response: Json, answers: dict[str, Json]) -> Json:
    """The pre-filled response completed by the clinician: ``answers`` by linkId (a value[x]),
    the pre-filled answers kept unless overridden."""
    completed = copy.deepcopy(response)
    completed["status"] = "completed"
    kept = [i for i in completed.get("item", []) if i["linkId"] not in answers]
    completed["item"] = kept + [
        {"linkId": link, "answer": [value]} for link, value in answers.items()
    ]
    return completed


def _with(case: Json, *responses: Json) -> Json:
    bundle: Json = copy.deepcopy(case["bundle"])
    bundle["entry"] += [
        {"fullUrl": f"https://ehr.example.org/fhir/QuestionnaireResponse/{r['id']}-{n}",
         "resource": {**r, "id": f"{r['id']}-{n}"}}
        for n, r in enumerate(responses)
    ]  # fmt: skip
    return bundle


def test_stage_facts_are_prefilled_with_the_pain_score_and_its_source(client: TestClient) -> None:
    answer = _post(client, STAGE_FACTS, _params(*_data(load_case(NO_ONSET))))
    assert answer.status_code == 200, answer.text
    response = _response(answer.json())
    assert schema_errors(response) == []
    assert response["questionnaire"] == f"{PP}/Questionnaire/stage-facts"
    [nrs] = response["item"]  # the onset and the conservative care are for the clinician
    assert nrs["linkId"] == "72514-3"
    [value] = nrs["answer"]
    assert value["valueDecimal"] == 8.0
    assert value["extension"] == [
        {"url": ANSWER_SOURCE, "valueReference": {"reference": "Observation/obs-nrs"}}
    ]
    questionnaire = client.get("/fhir/Questionnaire/stage-facts").json()
    assert [i["type"] for i in questionnaire["item"]] == ["dateTime", "decimal", "decimal"]


def test_stage_facts_round_trip_turns_the_undecided_injection_stage_into_a_decision(
    client: TestClient,
) -> None:
    case = load_case(NO_ONSET)
    before = _post(client, TRIAGE, case["bundle"]).json()
    assert stage_of(before, "injection") == "insufficient-data"
    assert "Injection stage undecided" in _open(before)[0]
    response = _response(_post(client, STAGE_FACTS, _params(*_data(case))).json())
    # the clinician records an onset two weeks ago: acute sciatica with NRS 8 (pre-filled)
    acute = _answered(response, {"symptom-onset": {"valueDateTime": "2026-11-10"}})
    after = _post(client, TRIAGE, _with(case, acute))
    assert after.status_code == 200, after.text
    decided = after.json()
    assert stage_of(decided, "injection") == "eligible"
    assert not any(a.startswith("Injection stage undecided") for a in _open(decided))
    services = [
        c["code"]
        for r in decided["entry"]
        if r["resource"]["resourceType"] == "ServiceRequest"
        for c in r["resource"]["code"]["coding"]
    ]
    assert "171788003" in services  # therapeutic lumbar epidural injection: proposed


def test_an_answer_that_does_not_decide_leaves_the_stage_open(client: TestClient) -> None:
    case = load_case(NO_ONSET)
    response = _response(_post(client, STAGE_FACTS, _params(*_data(case))).json())
    # sent back with the pre-filled pain score only: the onset is still unknown
    blank = _answered(response, {})
    still = _post(client, TRIAGE, _with(case, blank)).json()
    assert stage_of(still, "injection") == "insufficient-data"
    assert _open(still)[0] == "Injection stage undecided"
    # an onset twelve weeks ago settles the duration (subacute), but with no conservative care
    # recorded the injection stage stays open - now asking for the conservative care
    subacute = _answered(response, {"symptom-onset": {"valueDateTime": "2026-09-01"}})
    open_again = _post(client, TRIAGE, _with(case, subacute)).json()
    assert stage_of(open_again, "injection") == "insufficient-data"
    diagnostics = " ".join(i["diagnostics"] for i in issues(open_again))
    assert "no conservative treatment documented" in diagnostics
    assert "the symptom duration is unknown" not in diagnostics
    # eight weeks of conservative care answered on the same form: the trial is met, and under
    # NICE NG59 an epidural is only for acute and severe sciatica - a decision
    treated = _answered(
        response,
        {"symptom-onset": {"valueDateTime": "2026-09-01"},
         "conservative-care-weeks": {"valueDecimal": 8}},
    )  # fmt: skip
    decided = _post(client, TRIAGE, _with(case, treated)).json()
    assert stage_of(decided, "injection") == "not-eligible"
    # a pain score outside 0-10 is not read, and said so - as the same Observation would be
    out_of_range = _answered(response, {"72514-3": {"valueDecimal": 15}})
    reported = _post(client, TRIAGE, _with(case, out_of_range)).json()
    assert "value-out-of-range" in issue_codes(reported)
    # an answer of the wrong type (text for the onset) is no finding
    wrong = _answered(response, {"symptom-onset": {"valueString": "last spring"}})
    assert stage_of(_post(client, TRIAGE, _with(case, wrong)).json(), "injection") == (
        "insufficient-data"
    )
