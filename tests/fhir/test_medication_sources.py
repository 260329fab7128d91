"""Where a medication comes from (RULES §0 "Medication*", §7 current medication list): a
MedicationRequest that only suggests or plans a drug is not the patient taking it, and a
MedicationDispense or MedicationAdministration is medication evidence read by ingredient like a
MedicationStatement or MedicationRequest. Each rule is tested on both sides."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest
from fhir_testkit import issues_with, triage_resources

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
    return triage_resources(pipeline, PATIENT, LBP, *resources, as_of=AS_OF)


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
    skipped = [i["diagnostics"] for i in issues_with(result.bundle, "skipped-entry")]
    assert any(f"intent is {intent}" in text for text in skipped) is not taken


def test_an_opioid_proposal_raises_no_interaction(pipeline: Pipeline, summarize: Summarize) -> None:
    ordered = _run(pipeline, _request("o", OXYCODONE), _request("d", DIAZEPAM))
    proposed = _run(pipeline, _request("o", OXYCODONE, "proposal"), _request("d", DIAZEPAM))
    assert "opioid-benzodiazepine" in summarize(ordered.bundle)["medicationIssues"]
    assert "opioid-benzodiazepine" not in summarize(proposed.bundle)["medicationIssues"]
    [skip] = issues_with(proposed.bundle, "skipped-entry")
    assert skip["severity"] == "information"
    assert skip["expression"] == ["Bundle.entry[2]"]


# --- MedicationDispense and MedicationAdministration are medication evidence ------------------
def _dispense(mid: str, drug: Json, status: str = "completed", **extra: Any) -> Json:
    return {
        "resourceType": "MedicationDispense",
        "id": mid,
        "status": status,
        "medicationCodeableConcept": drug,
        "subject": {"reference": "Patient/p"},
        **extra,
    }


def _given(mid: str, drug: Json, status: str = "completed", **extra: Any) -> Json:
    return {
        "resourceType": "MedicationAdministration",
        "id": mid,
        "status": status,
        "medicationCodeableConcept": drug,
        "subject": {"reference": "Patient/p"},
        **({"effectiveDateTime": "2026-11-23T20:00:00Z"} | extra),
    }


def _days(value: float, code: str = "d") -> Json:
    return {"value": value, "unit": "days", "system": "http://unitsofmeasure.org", "code": code}


@pytest.mark.parametrize(
    ("dispense", "current"),
    [
        # no daysSupply: current for dispense_supply_default_days (30) after the hand-over
        (_dispense("w", WARFARIN, whenHandedOver="2026-11-15"), True),
        (_dispense("w", WARFARIN, whenHandedOver="2026-10-26T10:00:00Z"), True),  # 29 days
        (_dispense("w", WARFARIN, whenHandedOver="2026-10-24T10:00:00Z"), False),  # 31 days
        (_dispense("w", WARFARIN, whenPrepared="2026-11-15"), True),  # prepared, not handed yet
        # daysSupply decides when the record gives it
        (_dispense("w", WARFARIN, whenHandedOver="2026-09-25", daysSupply=_days(90)), True),
        (_dispense("w", WARFARIN, whenHandedOver="2026-11-14", daysSupply=_days(7)), False),
        (_dispense("w", WARFARIN, whenHandedOver="2026-10-14", daysSupply=_days(8, "wk")), True),
        (_dispense("w", WARFARIN, whenHandedOver="2026-10-14", daysSupply=_days(4, "wk")), False),
        # no date at all: on its way (current), or handed over at an unknown time (history)
        (_dispense("w", WARFARIN, "in-progress"), True),
        (_dispense("w", WARFARIN), False),
    ],
)  # fmt: skip
def test_a_dispensed_anticoagulant_is_current_for_its_supply(
    pipeline: Pipeline, summarize: Summarize, dispense: Json, current: bool
) -> None:
    result = _run(pipeline, dispense)
    assert ("nsaid" in summarize(result.bundle)["medications"]) is not current
    # a supply running out is not a record contradicting itself: no period-ended note
    assert not issues_with(result.bundle, "medication-period-ended")
    assert not issues_with(result.bundle, "code-not-recognised")


@pytest.mark.parametrize(
    ("administration", "current"),
    [
        (_given("w", WARFARIN, "in-progress", effectiveDateTime=None,
                effectivePeriod={"start": "2026-11-01"}), True),
        (_given("w", WARFARIN, "on-hold", effectiveDateTime=None,
                effectivePeriod={"start": "2026-11-01"}), True),
        (_given("w", WARFARIN), True),  # completed last night: within 48 hours
        (_given("w", WARFARIN, effectiveDateTime="2026-11-22T11:00:00Z"), True),  # 47 h
        (_given("w", WARFARIN, effectiveDateTime="2026-11-22T09:00:00Z"), False),  # 49 h
        (_given("w", WARFARIN, "stopped", effectiveDateTime=None,
                effectivePeriod={"start": "2026-11-23T08:00:00Z",
                                 "end": "2026-11-23T09:00:00Z"}), True),
        (_given("w", WARFARIN, effectiveDateTime=None,
                effectivePeriod={"start": "2026-11-01", "end": "2026-11-10"}), False),
    ],
)  # fmt: skip
def test_an_administered_anticoagulant_is_current_while_given_and_shortly_after(
    pipeline: Pipeline, summarize: Summarize, administration: Json, current: bool
) -> None:
    administration = {k: v for k, v in administration.items() if v is not None}
    result = _run(pipeline, administration)
    assert ("nsaid" in summarize(result.bundle)["medications"]) is not current


def test_an_infusion_in_progress_whose_period_ended_is_reported(
    pipeline: Pipeline, summarize: Summarize
) -> None:
    running = _given("w", WARFARIN, "in-progress")
    del running["effectiveDateTime"]
    running["effectivePeriod"] = {"start": "2026-11-01", "end": "2026-11-10"}
    result = _run(pipeline, running)
    assert "nsaid" in summarize(result.bundle)["medications"]
    [note] = issues_with(result.bundle, "medication-period-ended")
    assert note["severity"] == "information"


@pytest.mark.parametrize(
    ("kind", "status"),
    [("MedicationDispense", "cancelled"), ("MedicationDispense", "declined"),
     ("MedicationDispense", "stopped"), ("MedicationDispense", "entered-in-error"),
     ("MedicationAdministration", "not-done"),
     ("MedicationAdministration", "entered-in-error")],
)  # fmt: skip
def test_a_supply_that_did_not_happen_is_skipped_and_reported(
    pipeline: Pipeline, summarize: Summarize, kind: str, status: str
) -> None:
    build = _dispense if kind == "MedicationDispense" else _given
    result = _run(pipeline, build("w", WARFARIN, status, whenHandedOver="2026-11-15")
                  if kind == "MedicationDispense" else build("w", WARFARIN, status))  # fmt: skip
    assert "nsaid" in summarize(result.bundle)["medications"]
    [skip] = issues_with(result.bundle, "skipped-entry")
    assert skip["diagnostics"] == f"Patient/p: {kind} ignored: status is {status}"
    assert skip["expression"] == ["Bundle.entry[2]"]


@pytest.mark.parametrize(
    ("opioid", "interaction"),
    [
        (_dispense("o", OXYCODONE, whenHandedOver="2026-11-15"), True),
        (_dispense("o", OXYCODONE, whenHandedOver="2026-06-15"), False),
        (_given("o", OXYCODONE), True),
        (_given("o", OXYCODONE, effectiveDateTime="2026-11-01T08:00:00Z"), False),
    ],
)
def test_a_dispensed_or_given_opioid_with_a_benzodiazepine(
    pipeline: Pipeline, summarize: Summarize, opioid: Json, interaction: bool
) -> None:
    result = _run(pipeline, opioid, _request("d", DIAZEPAM))
    issues = summarize(result.bundle)["medicationIssues"]
    assert ("opioid-benzodiazepine" in issues) is interaction


def test_a_dispense_names_its_drug_by_reference_contained_or_in_the_bundle(
    pipeline: Pipeline, summarize: Summarize
) -> None:
    medication = {"resourceType": "Medication", "id": "m1", "code": WARFARIN}
    by_entry = _dispense("w", {}, whenHandedOver="2026-11-15")
    del by_entry["medicationCodeableConcept"]
    by_entry["medicationReference"] = {"reference": "Medication/m1"}
    contained = _given("w2", {})
    del contained["medicationCodeableConcept"]
    contained["contained"] = [{"resourceType": "Medication", "id": "c", "code": WARFARIN}]
    contained["medicationReference"] = {"reference": "#c"}
    for resources in ((medication, by_entry), (contained,)):
        result = _run(pipeline, *resources)
        assert "nsaid" not in summarize(result.bundle)["medications"]
        assert not issues_with(result.bundle, "code-not-recognised")


def test_an_unrecognised_dispense_or_administration_is_reported(pipeline: Pipeline) -> None:
    result = _run(
        pipeline,
        _dispense("l", LEVOTHYROXINE, whenHandedOver="2026-11-15"),
        _given("l2", LEVOTHYROXINE),
    )
    reported = {
        (i["expression"][0], i["severity"])
        for i in issues_with(result.bundle, "code-not-recognised")
    }
    assert reported == {
        ("Bundle.entry[2].resource.medicationCodeableConcept", "information"),
        ("Bundle.entry[3].resource.medicationCodeableConcept", "information"),
    }
    assert "not used by the rules" not in orjson.dumps(result.bundle).decode()


def test_a_dispense_referring_to_no_medication_in_the_request_is_a_warning(
    pipeline: Pipeline,
) -> None:
    dispense = _dispense("w", {}, whenHandedOver="2026-11-15")
    del dispense["medicationCodeableConcept"]
    dispense["medicationReference"] = {"reference": "Medication/absent"}
    [reported] = issues_with(_run(pipeline, dispense).bundle, "code-not-recognised")
    assert (reported["severity"], reported["expression"]) == (
        "warning",
        ["Bundle.entry[2].resource.medicationReference"],
    )


MORPHINE = _drug("892345", "Morphine Sulfate 30 MG Oral Tablet")


@pytest.mark.parametrize(("per_day", "high"), [(2, True), (1, False)])  # 120 / 60 MME
def test_a_dispense_dosage_gives_the_daily_dose(
    pipeline: Pipeline, summarize: Summarize, per_day: int, high: bool
) -> None:
    """Morphine 60 mg once (60 MME) or twice (120 MME) a day, from dosageInstruction."""
    dosage = {
        "timing": {"repeat": {"frequency": per_day, "period": 1, "periodUnit": "d"}},
        "doseAndRate": [{"doseQuantity": {"value": 60, "unit": "mg", "code": "mg",
                                          "system": "http://unitsofmeasure.org"}}],
    }  # fmt: skip
    result = _run(
        pipeline, _dispense("m", MORPHINE, whenHandedOver="2026-11-15", dosageInstruction=[dosage])
    )
    issues = summarize(result.bundle)["medicationIssues"]
    assert not issues_with(result.bundle, "opioid-dose-not-computable")
    assert "opioid-dose-50" in issues
    assert ("opioid-dose-90" in issues) is high


def test_an_administration_dose_alone_is_no_daily_dose(pipeline: Pipeline) -> None:
    """One administration says nothing of how often: the daily dose is reported as unknown."""
    given = _given(
        "m", MORPHINE, "in-progress",
        dosage={"dose": {"value": 10, "unit": "mg"}, "route": {"text": "Intravenous"}},
    )  # fmt: skip
    assert issues_with(_run(pipeline, given).bundle, "opioid-dose-not-computable")
