"""``PlanDefinition/$apply``: the same decisions as ``$triage`` for every golden case, the
CarePlan's shape, and bad input answered with a 4xx OperationOutcome."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.careplan import CarePlan
from fhir_testkit import CAUDA, FHIR_JSON, PP, Json, case_bundle, load_case, schema_errors

from service.app.pipeline import Pipeline

CASES = sorted((Path(__file__).parents[1] / "golden" / "cases").glob("*.json"))
INSTANCE = "/fhir/PlanDefinition/back-pain-pathway/$apply"
TYPE = "/fhir/PlanDefinition/$apply"
PATHWAY = f"{PP}/PlanDefinition/back-pain-pathway"


def _params(*parts: Json) -> Json:
    return {"resourceType": "Parameters", "parameter": list(parts)}


def _case_params(case: Json) -> Json:
    parts: list[Json] = [
        {"name": "data", "resource": case["bundle"]},
        {"name": "asOf", "valueDateTime": case["asOf"]},
    ]
    if case.get("profile"):
        parts.append({"name": "profile", "valueCode": case["profile"]})
    return _params(*parts)


def _post(client: TestClient, path: str, body: Any, **headers: str) -> Any:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return client.post(path, content=content, headers={"content-type": FHIR_JSON, **headers})


def _contained(plan: Json) -> dict[str, Json]:
    return {f"#{r['id']}": r for r in plan["contained"]}


def _without_based_on(resource: Json) -> Json:
    return {k: v for k, v in resource.items() if k != "basedOn"}


def _decisions_equal(triage: Json, plan: Json) -> list[str]:
    """Where the $apply CarePlan differs from the $triage result in what was decided."""
    problems: list[str] = []
    resources = [e["resource"] for e in triage["entry"]]
    by_urn = {e["fullUrl"]: e["resource"] for e in triage["entry"]}
    triage_plan = next((r for r in resources if r["resourceType"] == "CarePlan"), None)
    contained = _contained(plan)
    [group] = [r for r in plan["contained"] if r["resourceType"] == "RequestGroup"]
    actions = group.get("action", [])
    if plan["activity"] != [{"reference": {"reference": f"#{group['id']}"}}]:
        problems.append("the CarePlan activity is not the RequestGroup")
    if triage_plan is None:
        return problems + (["actions without a triage CarePlan"] if actions else [])
    if plan.get("category") != triage_plan.get("category"):
        problems.append(f"stage {plan.get('category')} != {triage_plan.get('category')}")
    activities = triage_plan.get("activity", [])
    if len(actions) != len(activities):
        problems.append(f"{len(actions)} actions for {len(activities)} proposals")
    for action, activity in zip(actions, activities, strict=False):
        if "reference" in activity:
            request = by_urn[activity["reference"]["reference"]]
            mine = contained.get(action.get("resource", {}).get("reference", ""))
            if mine is None or _without_based_on(mine) != _without_based_on(request):
                problems.append(f"ServiceRequest {request['code']['text']} differs")
            if action.get("priority") != request.get("priority"):
                problems.append(f"priority of {request['code']['text']} differs")
        elif action.get("code") != [activity["detail"]["code"]]:
            problems.append(f"activity {activity['detail']['code'].get('text')} differs")
    return problems + _same_ids(resources, plan)


def _same_ids(resources: list[Json], plan: Json) -> list[str]:
    problems = []
    for rtype in ("DetectedIssue", "Observation"):
        want = sorted(r["id"] for r in resources if r["resourceType"] == rtype)
        got = sorted(r["id"] for r in plan["contained"] if r["resourceType"] == rtype)
        if want != got:
            problems.append(f"{rtype}: {got} != {want}")
    return problems


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_apply_decides_as_triage_on_every_golden_case(
    path: Path, client: TestClient, pipeline: Pipeline
) -> None:
    case = orjson.loads(path.read_bytes())
    raw = {"asOf": case["asOf"], "profile": case.get("profile")}
    now = datetime(2026, 11, 24, tzinfo=UTC)
    triage = pipeline.run_body(orjson.dumps(case["bundle"]), raw, now=now).bundle
    patients = [
        e["resource"]["id"]
        for e in case["bundle"]["entry"]
        if e["resource"]["resourceType"] == "Patient"
    ]
    params = _case_params(case)
    if len(patients) > 1:
        params["parameter"].append({"name": "subject", "valueString": f"Patient/{patients[0]}"})
    response = _post(client, INSTANCE, params)
    assert response.status_code == 200, response.text
    plan = response.json()
    if len(patients) > 1:  # compare one patient's part of the triage result
        subject = f"Patient/{patients[0]}"
        triage = {
            "entry": [
                e
                for e in triage["entry"]
                if (e["resource"].get("subject") or e["resource"].get("patient") or {}).get(
                    "reference"
                )
                == subject
            ]
        }
    assert _decisions_equal(triage, plan) == []
    assert b"urn:uuid:" not in response.content  # every reference resolves inside the CarePlan


def test_apply_care_plan_is_valid_r4_and_instantiates_the_pathway(client: TestClient) -> None:
    response = _post(client, INSTANCE, _case_params(load_case(CAUDA)))
    assert response.headers["content-type"].startswith(FHIR_JSON)
    plan = response.json()
    assert schema_errors(plan) == []
    CarePlan.model_validate(plan)
    assert plan["instantiatesCanonical"] == [PATHWAY]
    assert (plan["status"], plan["intent"]) == ("draft", "proposal")
    group = plan["contained"][0]
    assert group["resourceType"] == "RequestGroup"
    assert group["instantiatesCanonical"] == [PATHWAY]
    assert [a["priority"] for a in group["action"][:2]] == ["stat", "stat"]
    requests = [r for r in plan["contained"] if r["resourceType"] == "ServiceRequest"]
    assert {r["basedOn"][0]["reference"] for r in requests} == {"#"}
    assert "meta" not in plan


def test_type_level_by_url_and_by_resource_give_the_instance_answer(client: TestClient) -> None:
    params = _case_params(load_case(CAUDA))
    instance = _post(client, INSTANCE, params).json()
    by_url = _params(*params["parameter"], {"name": "url", "valueCanonical": PATHWAY + "|2027.1"})
    assert _post(client, TYPE, by_url).json() == instance
    plan_definition = client.get("/fhir/PlanDefinition/back-pain-pathway").json()
    by_resource = _params(
        *params["parameter"], {"name": "planDefinition", "resource": plan_definition}
    )
    assert _post(client, TYPE, by_resource).json() == instance


def test_ignored_context_parameters_are_named_in_a_note(client: TestClient) -> None:
    params = _case_params(load_case(CAUDA))
    params["parameter"] += [
        {"name": "encounter", "valueString": "Encounter/e1"},
        {"name": "practitioner", "valueString": "Practitioner/p1"},
    ]
    plan = _post(client, INSTANCE, params).json()
    assert plan["note"][-1]["text"].endswith("encounter, practitioner")


def test_an_out_of_scope_patient_gets_an_empty_plan_with_the_reason(client: TestClient) -> None:
    plan = _post(client, INSTANCE, _case_params(load_case("age-15-out-of-scope"))).json()
    assert schema_errors(plan) == []
    group, outcome = plan["contained"]
    assert "action" not in group
    assert outcome["resourceType"] == "OperationOutcome"
    assert plan["supportingInfo"] == [{"reference": f"#{outcome['id']}"}]


BAD: list[tuple[str, str, Any, int, str]] = [
    ("not json", INSTANCE, b"{", 400, "not valid JSON"),
    ("a Bundle", INSTANCE, {"resourceType": "Bundle", "type": "collection"}, 400, "Parameters"),
    ("no patient", INSTANCE, _params(), 400, "subject"),
    ("bad subject", INSTANCE, _params({"name": "subject", "valueString": "Group/1"}), 400, "Patient"),  # noqa: E501
    ("unknown part", INSTANCE, _params({"name": "bogus", "valueString": "x"}), 400, "Unknown parameter"),  # noqa: E501
    ("data not a Bundle", INSTANCE, _params({"name": "data", "resource": {"resourceType": "Patient"}}), 400, "Bundle"),  # noqa: E501
    ("invalid data", INSTANCE, _params({"name": "data", "resource": {"resourceType": "Bundle", "type": "nope"}}), 400, "not one of"),  # noqa: E501
    ("url at instance", INSTANCE, _params({"name": "url", "valueCanonical": PATHWAY}), 400, "type level"),  # noqa: E501
    ("no plan at type level", TYPE, _params(), 400, "planDefinition or url"),
    ("another plan", TYPE, _params({"name": "url", "valueCanonical": f"{PP}/PlanDefinition/x"}), 404, "Only PainPath's PlanDefinition"),  # noqa: E501
    ("another version", TYPE, _params({"name": "url", "valueCanonical": PATHWAY + "|1.0"}), 404, "Only PainPath's PlanDefinition"),  # noqa: E501
    ("unknown instance", "/fhir/PlanDefinition/other/$apply", b"", 404, "not known"),
    ("no FHIR server", INSTANCE, _params({"name": "subject", "valueString": "Patient/p1"}), 422, "PAINPATH_FHIR_SERVER"),  # noqa: E501
    ("two subjects", INSTANCE, _params({"name": "subject", "valueString": "Patient/a"}, {"name": "subject", "valueString": "Patient/b"}), 400, "repeated"),  # noqa: E501
]  # fmt: skip


@pytest.mark.parametrize(
    ("path", "body", "status", "text"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_bad_apply_input_is_a_4xx_operation_outcome(
    client: TestClient, path: str, body: Any, status: int, text: str
) -> None:
    response = _post(client, path, body)
    assert response.status_code == status, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert text in outcome["issue"][0]["diagnostics"]


def test_wrong_content_type_and_subject_outside_data(client: TestClient) -> None:
    response = client.post(INSTANCE, content=b"x", headers={"content-type": "text/plain"})
    assert response.status_code == 415
    params = _case_params(load_case(CAUDA))
    params["parameter"].append({"name": "subject", "valueString": "Patient/someone-else"})
    response = _post(client, INSTANCE, params)
    assert response.status_code == 422
    assert "not a patient of data" in response.json()["issue"][0]["diagnostics"]


def test_subject_names_the_patient_of_data(client: TestClient) -> None:
    params = _case_params(load_case(CAUDA))
    params["parameter"].append({"name": "subject", "valueString": "Patient/patient-1"})
    answer = _post(client, INSTANCE, params)
    assert answer.status_code == 200, answer.text
    assert answer.json()["subject"] == {"reference": "Patient/patient-1"}


def test_several_patients_need_a_subject(client: TestClient) -> None:
    one = case_bundle(CAUDA)
    two = orjson.loads(orjson.dumps(one).replace(b"patient-1", b"patient-2"))
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": one["entry"] + two["entry"]}
    params = _params({"name": "data", "resource": bundle})
    for i, entry in enumerate(bundle["entry"]):
        entry["fullUrl"] = f"urn:uuid:00000000-0000-4000-8000-{i:012d}"
    response = _post(client, INSTANCE, params)
    assert response.status_code == 422, response.text
    assert "name one with subject" in response.json()["issue"][0]["diagnostics"]
