"""``PlanDefinition/$apply`` and ``Questionnaire/$populate`` with ``subject`` against the real
FHIR server of the session fixture: the patient is pulled exactly as ``Patient/{id}/$triage``
pulls it, and a completed recording form written to the server is read on the next pull - the
red-flag screen documents the screen, the treatment-stage facts decide the injection stage."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from fhir_testkit import issue_codes, load_patient, stage_of

from service.api.app import create_app
from service.fhir.populate import ANSWER_SOURCE
from service.settings import Settings

pytestmark = pytest.mark.integration

Json = dict[str, Any]
CASES = Path(__file__).resolve().parents[1] / "golden" / "cases"
AS_OF = {"name": "asOf", "valueDateTime": "2026-11-24T10:00:00+01:00"}
FHIR_JSON = "application/fhir+json"


@pytest.fixture(scope="module")
def painpath(fhir_server: str) -> Iterator[TestClient]:
    settings = Settings(_env_file=None, fhir_server=fhir_server, fhir_retries=1)
    with TestClient(create_app(settings)) as client:
        yield client


def _post(client: TestClient, path: str, *parts: Json) -> Any:
    body = {"resourceType": "Parameters", "parameter": list(parts)}
    return client.post(path, json=body, headers={"content-type": FHIR_JSON})


def _ids(resources: list[Json], rtype: str) -> list[str]:
    return sorted(r["id"] for r in resources if r["resourceType"] == rtype)


def test_apply_with_subject_pulls_and_decides_as_patient_triage(
    fhir: httpx.Client, painpath: TestClient
) -> None:
    patient = load_patient(fhir, "cauda-equina-saddle-anaesthesia", "apply1")
    triage = painpath.post(
        f"/fhir/Patient/{patient}/$triage",
        json={"resourceType": "Parameters", "parameter": [AS_OF]},
    )
    assert triage.status_code == 200, triage.text
    subject = {"name": "subject", "valueReference": {"reference": f"Patient/{patient}"}}
    applied = _post(painpath, "/fhir/PlanDefinition/back-pain-pathway/$apply", subject, AS_OF)
    assert applied.status_code == 200, applied.text
    plan = applied.json()
    results = [e["resource"] for e in triage.json()["entry"]]
    for rtype in ("ServiceRequest", "DetectedIssue", "Observation"):
        assert _ids(plan["contained"], rtype) == _ids(results, rtype)
    assert plan["subject"] == {"reference": f"Patient/{patient}"}
    missing = _post(
        painpath,
        "/fhir/PlanDefinition/back-pain-pathway/$apply",
        {"name": "subject", "valueString": "Patient/nobody-here"},
    )
    assert missing.status_code == 404
    assert missing.json()["resourceType"] == "OperationOutcome"


def test_populate_from_the_server_and_a_screen_written_back_is_read(
    fhir: httpx.Client, painpath: TestClient
) -> None:
    patient = load_patient(fhir, "cauda-equina-saddle-anaesthesia", "populate1")
    subject = {"name": "subject", "valueReference": {"reference": f"Patient/{patient}"}}
    answer = _post(painpath, "/fhir/Questionnaire/red-flag-screen/$populate", subject, AS_OF)
    assert answer.status_code == 200, answer.text
    response = answer.json()["parameter"][0]["resource"]
    [saddle] = response["item"]
    source = saddle["answer"][0]["extension"][0]
    assert source["url"] == ANSWER_SOURCE
    assert source["valueReference"]["reference"].endswith(
        f"Observation/{patient.split('-')[0]}-obs-saddle"
    )

    other = load_patient(fhir, "duration-subacute-43-days-esi-insufficient", "populate2")
    triage_path = f"/fhir/Patient/{other}/$triage"
    options = {"resourceType": "Parameters", "parameter": [AS_OF]}
    assert "red-flag-screen-not-documented" in issue_codes(
        painpath.post(triage_path, json=options).json()
    )
    subject = {"name": "subject", "valueReference": {"reference": f"Patient/{other}"}}
    blank = _post(painpath, "/fhir/Questionnaire/red-flag-screen/$populate", subject, AS_OF)
    completed = blank.json()["parameter"][0]["resource"]
    questionnaire = painpath.get("/fhir/Questionnaire/red-flag-screen").json()
    completed |= {
        "id": "populate2-screen",
        "status": "completed",
        "item": [
            {"linkId": q["linkId"], "answer": [{"valueBoolean": False}]}
            for q in questionnaire["item"]
        ],
    }
    written = fhir.put("/QuestionnaireResponse/populate2-screen", json=completed)
    assert written.status_code in (200, 201), written.text
    after = painpath.post(triage_path, json=options)
    assert after.status_code == 200, after.text
    assert "red-flag-screen-not-documented" not in issue_codes(after.json())


def test_stage_facts_written_back_decide_the_injection_stage(
    fhir: httpx.Client, painpath: TestClient
) -> None:
    patient = load_patient(fhir, "esi-unknown-duration-insufficient", "loop1")
    triage_path = f"/fhir/Patient/{patient}/$triage"
    options = {"resourceType": "Parameters", "parameter": [AS_OF]}
    before = painpath.post(triage_path, json=options)
    assert stage_of(before.json(), "injection") == "insufficient-data"
    subject = {"name": "subject", "valueReference": {"reference": f"Patient/{patient}"}}
    answer = _post(painpath, "/fhir/Questionnaire/stage-facts/$populate", subject, AS_OF)
    assert answer.status_code == 200, answer.text
    response = answer.json()["parameter"][0]["resource"]
    [nrs] = response["item"]  # the pain score, read from the server's Observation
    source = nrs["answer"][0]["extension"][0]["valueReference"]["reference"]
    assert source.endswith("Observation/loop1-obs-nrs")
    # written back with the pre-filled score only: the onset is still unknown, still open
    blank = response | {"id": "loop1-stage", "status": "completed"}
    assert fhir.put("/QuestionnaireResponse/loop1-stage", json=blank).status_code in (200, 201)
    still = painpath.post(triage_path, json=options)
    assert stage_of(still.json(), "injection") == "insufficient-data"
    # the clinician records the onset two weeks ago: acute sciatica with NRS 8 - decided
    onset = {"linkId": "symptom-onset", "answer": [{"valueDateTime": "2026-11-10"}]}
    completed = blank | {"item": [*response["item"], onset]}
    written = fhir.put("/QuestionnaireResponse/loop1-stage", json=completed)
    assert written.status_code in (200, 201), written.text
    after = painpath.post(triage_path, json=options)
    assert after.status_code == 200, after.text
    assert stage_of(after.json(), "injection") == "eligible"
