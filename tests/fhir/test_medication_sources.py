"""Where a medication comes from (RULES §0 "Medication*", §7 current medication list): a
MedicationRequest that only suggests or plans a drug is not the patient taking it, and a
MedicationDispense or MedicationAdministration is medication evidence read by ingredient like a
MedicationStatement or MedicationRequest. Each rule is tested on both sides."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from service.app.pipeline import Pipeline, TriageResult

Json = dict[str, Any]
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
AS_OF = "2026-11-24T10:00:00+00:00"
PATIENT = {"resourceType": "Patient", "id": "p", "birthDate": "1970-01-01", "gender": "female"}
LBP = {
    "resourceType": "Condition",
    "id": "lbp",
    "clinicalStatus": {
        "coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}
        ]
    },
    "code": {"coding": [{"system": SNOMED, "code": "279039007", "display": "Low back pain"}]},
    "subject": {"reference": "Patient/p"},
    "onsetDateTime": "2026-11-10",
}


def _drug(code: str, display: str) -> Json:
    return {"coding": [{"system": RXNORM, "code": code, "display": display}]}


WARFARIN = _drug("855332", "Warfarin Sodium 5 MG Oral Tablet")
OXYCODONE = _drug("1049221", "Acetaminophen 325 MG / Oxycodone Hydrochloride 5 MG Oral Tablet")
DIAZEPAM = _drug("197591", "Diazepam 5 MG Oral Tablet")
LEVOTHYROXINE = _drug("966222", "Levothyroxine Sodium 0.075 MG Oral Tablet")


def _request(mid: str, drug: Json, intent: str = "order", status: str = "active") -> Json:
    return {
        "resourceType": "MedicationRequest",
        "id": mid,
        "status": status,
        "intent": intent,
        "medicationCodeableConcept": drug,
        "subject": {"reference": "Patient/p"},
        "authoredOn": "2026-11-01",
    }


def _run(pipeline: Pipeline, *resources: Json) -> TriageResult:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in (PATIENT, LBP, *resources)],
    }
    now = datetime(2026, 11, 24, tzinfo=UTC)
    return pipeline.run_body(orjson.dumps(bundle), {"asOf": AS_OF}, now=now)


def _issues(result: TriageResult, detail: str) -> list[Json]:
    return [
        issue
        for entry in result.bundle["entry"]
        if entry["resource"]["resourceType"] == "OperationOutcome"
        for issue in entry["resource"]["issue"]
        if any(c["code"] == detail for c in issue.get("details", {}).get("coding", []))
    ]


Summarize = Callable[..., Json]


# --- MedicationRequest.intent: a proposal is not the patient taking the drug -----------------
@pytest.mark.parametrize(
    ("intent", "taken"),
    [("order", True), ("original-order", True), ("instance-order", True),
     ("proposal", False), ("plan", False), ("option", False), ("directive", False)],
)  # fmt: skip
def test_only_an_order_is_a_current_anticoagulant(
    pipeline: Pipeline, summarize: Summarize, intent: str, taken: bool
) -> None:
    result = _run(pipeline, _request("w", WARFARIN, intent))
    assert ("nsaid" in summarize(result.bundle)["medications"]) is not taken
    skipped = [i["diagnostics"] for i in _issues(result, "skipped-entry")]
    assert any(f"intent is {intent}" in text for text in skipped) is not taken


def test_an_opioid_proposal_raises_no_interaction(pipeline: Pipeline, summarize: Summarize) -> None:
    ordered = _run(pipeline, _request("o", OXYCODONE), _request("d", DIAZEPAM))
    proposed = _run(pipeline, _request("o", OXYCODONE, "proposal"), _request("d", DIAZEPAM))
    assert "opioid-benzodiazepine" in summarize(ordered.bundle)["medicationIssues"]
    assert "opioid-benzodiazepine" not in summarize(proposed.bundle)["medicationIssues"]
    [skip] = _issues(proposed, "skipped-entry")
    assert skip["severity"] == "information"
    assert skip["expression"] == ["Bundle.entry[2]"]
