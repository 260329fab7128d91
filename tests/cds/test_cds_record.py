"""RULES §9 on the patient-view card: a suggestion per Questionnaire that records what would
change the decision, creating it pre-filled from the record (``Questionnaire/$populate`` on the
same evaluation), and the loop closed through the hook itself: the completed response in the
``questionnaireResponses`` prefetch decides the injection stage on the next call."""

from __future__ import annotations

import copy
from typing import Any

from cds_testkit import case_patient_id, case_resources, hook_request, load_case, prefetch_for
from fhir_testkit import schema_errors
from starlette.testclient import TestClient

from service.fhir.populate import ANSWER_SOURCE

Json = dict[str, Any]
PP = "https://painpath.dev/fhir"
UNDECIDED = "duration-subacute-43-days-esi-insufficient"  # NRS 8, subacute, no treatment


def _card(client: TestClient, resources: list[Json], pid: str) -> Json:
    body = hook_request("patient-view", pid, prefetch=prefetch_for(resources))
    response = client.post("/cds-services/painpath-patient-view", json=body)
    assert response.status_code == 200, response.text
    card: Json = response.json()["cards"][0]
    return card


def _recorded(card: Json) -> dict[str, Json]:
    """The created QuestionnaireResponse of each record suggestion, by Questionnaire canonical."""
    return {
        s["actions"][0]["resource"]["questionnaire"]: s["actions"][0]["resource"]
        for s in card["suggestions"]
        if s["label"].startswith("Record what would change the decision")
    }


def test_the_card_suggests_each_open_questionnaire_prefilled(cds: TestClient) -> None:
    case = load_case(UNDECIDED)
    card = _card(cds, case_resources(case), case_patient_id(case))
    plan, *records = card["suggestions"]
    assert plan["isRecommended"] is True  # the care plan comes first, as before
    assert card["selectionBehavior"] == "any"  # recording is independent of the plan
    forms = _recorded(card)
    assert list(forms) == [
        f"{PP}/Questionnaire/stage-facts",
        f"{PP}/Questionnaire/startback",
        f"{PP}/Questionnaire/red-flag-screen",
    ]
    assert len({s["uuid"] for s in card["suggestions"]}) == len(card["suggestions"])
    stage = forms[f"{PP}/Questionnaire/stage-facts"]
    assert schema_errors(stage) == []
    assert stage["status"] == "in-progress"
    [nrs] = stage["item"]
    assert nrs["answer"][0]["valueDecimal"] == 8.0
    assert nrs["answer"][0]["extension"][0] == {
        "url": ANSWER_SOURCE,
        "valueReference": {"reference": "Observation/obs-nrs"},
    }
    assert all(s["actions"][0]["type"] == "create" for s in records)
    assert [s["isRecommended"] for s in records] == [False, False, False]


def test_a_decided_card_suggests_no_questionnaire(cds: TestClient) -> None:
    case = load_case("cauda-equina-saddle-anaesthesia")
    card = _card(cds, case_resources(case), case_patient_id(case))
    assert _recorded(card) == {}
    assert card["selectionBehavior"] == "at-most-one"


def test_the_completed_suggestion_in_the_prefetch_decides_the_stage(cds: TestClient) -> None:
    case = load_case(UNDECIDED)
    pid = case_patient_id(case)
    card = _card(cds, case_resources(case), pid)
    assert "| Injection | Insufficient data |" in card["detail"]
    completed = copy.deepcopy(_recorded(card)[f"{PP}/Questionnaire/stage-facts"])
    completed["status"] = "completed"
    completed["item"].append({"linkId": "conservative-care-weeks", "answer": [{"valueDecimal": 8}]})
    after = _card(cds, [*case_resources(case), completed], pid)
    assert "| Injection | Not eligible |" in after["detail"]
    assert f"{PP}/Questionnaire/stage-facts" not in _recorded(after)
