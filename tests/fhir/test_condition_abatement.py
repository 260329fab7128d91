"""RULES §0 Condition current or history: a Condition whose ``abatement[x]`` is on or before the
evaluation date is history whatever its clinicalStatus says, and when that status says current
(or is absent, FHIR R4 con-4) the inconsistency is reported as information, never a 400. An
abatement after the evaluation date leaves the Condition current."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fhir_testkit import issues_with, triage_resources

from service.app.pipeline import Pipeline, TriageResult

Json = dict[str, Any]
SNOMED = "http://snomed.info/sct"
AS_OF = "2026-11-24T10:00:00+00:00"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
PATIENT = {"resourceType": "Patient", "id": "p", "birthDate": "1970-01-01", "gender": "female"}


def _condition(cid: str, code: str, display: str, status: str | None, **extra: Any) -> Json:
    resource: Json = {
        "resourceType": "Condition",
        "id": cid,
        "code": {"coding": [{"system": SNOMED, "code": code, "display": display}]},
        "subject": {"reference": "Patient/p"},
        **extra,
    }
    if status:
        resource["clinicalStatus"] = {"coding": [{"system": CLINICAL, "code": status}]}
    return resource


LBP = _condition("lbp", "279039007", "Low back pain", "active", onsetDateTime="2026-10-01")


def _sciatica(status: str | None, **abatement: Any) -> Json:
    return _condition(
        "sci", "23056005", "Sciatica", status, onsetDateTime="2015-01-01", **abatement
    )


def _run(pipeline: Pipeline, *resources: Json) -> TriageResult:
    return triage_resources(pipeline, PATIENT, LBP, *resources, as_of=AS_OF)


Summarize = Callable[..., Json]


@pytest.mark.parametrize(
    ("abatement", "current"),
    [
        ({}, True),
        ({"abatementDateTime": "2015-06-01"}, False),
        ({"abatementDateTime": "2026-11-24T10:00:00Z"}, False),  # on the evaluation date
        ({"abatementDateTime": "2026-12-01"}, True),  # after it: still current then
        ({"abatementPeriod": {"start": "2015-05-01", "end": "2015-06-01"}}, False),
        ({"abatementPeriod": {"start": "2027-01-01"}}, True),
        ({"abatementAge": {"value": 45, "unit": "a", "code": "a",
                           "system": "http://unitsofmeasure.org"}}, False),
        ({"abatementAge": {"value": 60, "unit": "a", "code": "a",
                           "system": "http://unitsofmeasure.org"}}, True),  # born 1970
        ({"abatementRange": {"low": {"value": 40, "unit": "a"},
                             "high": {"value": 45, "unit": "a"}}}, False),
        ({"abatementString": "resolved after physiotherapy in 2015"}, False),
    ],
)  # fmt: skip
@pytest.mark.parametrize("status", ["active", None])
def test_an_abated_condition_is_history_and_the_inconsistency_reported(
    pipeline: Pipeline,
    summarize: Summarize,
    abatement: Json,
    current: bool,
    status: str | None,
) -> None:
    result = _run(pipeline, _sciatica(status, **abatement))
    assert summarize(result.bundle)["painType"] == ("mixed" if current else "mechanical")
    notes = issues_with(result.bundle, "condition-abated")
    assert bool(notes) is not current
    if notes:
        [note] = notes
        assert note["severity"] == "information"
        assert "con-4" in note["diagnostics"]


def test_an_abated_condition_recorded_as_resolved_needs_no_note(
    pipeline: Pipeline, summarize: Summarize
) -> None:
    result = _run(pipeline, _sciatica("resolved", abatementDateTime="2015-06-01"))
    assert summarize(result.bundle)["painType"] == "mechanical"
    assert not issues_with(result.bundle, "condition-abated")


def test_an_abated_red_flag_diagnosis_is_history_not_a_flag(
    pipeline: Pipeline, summarize: Summarize
) -> None:
    """Cauda equina syndrome abated years ago, its status left active: no cauda-equina flag."""
    ces = _condition("ces", "192970008", "Cauda equina syndrome", "active",
                     onsetDateTime="2019-01-01", abatementDateTime="2019-03-01")  # fmt: skip
    assert "cauda-equina" not in summarize(_run(pipeline, ces).bundle)["redFlags"]
    ces["abatementDateTime"] = "2027-03-01"
    assert "cauda-equina" in summarize(_run(pipeline, ces).bundle)["redFlags"]
