"""Input forms seen in real feeds: coded yes/no answers, LOINC NRS answers, free-text values,
ICD-10-CM codes without the dot, OIDs as systems."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from service.app.pipeline import Pipeline

LOCAL = "https://painpath.dev/fhir/CodeSystem/painpath"
PATIENT = {"resourceType": "Patient", "id": "p", "birthDate": "1970-01-01"}


def _obs(oid: str, code: dict[str, Any], **value: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [code]},
        "subject": {"reference": "Patient/p"},
        "effectiveDateTime": "2026-11-20",
        **value,
    }


def _cond(cid: str, system: str, code: str, onset: str = "2026-11-10") -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": cid,
        "code": {"coding": [{"system": system, "code": code}]},
        "subject": {"reference": "Patient/p"},
        "onsetDateTime": onset,
    }


def _evaluate(pipeline: Pipeline, *resources: dict[str, Any]) -> Any:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in (PATIENT, *resources)],
    }
    body = orjson.dumps(bundle)
    result = pipeline.run_body(body, {"asOf": "2026-11-24"}, now=datetime(2026, 11, 24, tzinfo=UTC))
    return result.assessments[0]


def _yes_no(code: str) -> dict[str, Any]:
    return {"valueCodeableConcept": {"coding": [{"system": "http://loinc.org", "code": code}]}}


def test_coded_no_answer_is_screened_absent(pipeline: Pipeline) -> None:
    lbp = _cond("c", "http://snomed.info/sct", "279039007")
    radiating = {"system": LOCAL, "code": "radiating-pain-below-knee"}
    no = _evaluate(pipeline, lbp, _obs("o", radiating, **_yes_no("LA32-8")))
    yes = _evaluate(pipeline, lbp, _obs("o", radiating, **_yes_no("LA33-6")))
    assert no.value("pain-type") == "mechanical"
    assert yes.value("pain-type") == "mixed"


def test_negative_free_text_value_is_screened_absent(pipeline: Pipeline) -> None:
    lbp = _cond("c", "http://snomed.info/sct", "279039007")
    saddle = {"system": "http://snomed.info/sct", "code": "449813001"}
    assert _evaluate(pipeline, lbp, _obs("o", saddle, valueString="No")).red_flags == ()
    flagged = _evaluate(pipeline, lbp, _obs("o", saddle, valueString="Reported today"))
    assert [f.code for f in flagged.red_flags] == ["cauda-equina"]


def test_nrs_as_loinc_answer_code_is_a_number(pipeline: Pipeline) -> None:
    sciatica = _cond("c", "http://snomed.info/sct", "23056005")
    nrs = {"system": "http://loinc.org", "code": "72514-3"}
    severe = _evaluate(pipeline, sciatica, _obs("o", nrs, **_yes_no("LA10139-6")))  # 7
    mild = _evaluate(pipeline, sciatica, _obs("o", nrs, **_yes_no("LA10138-8")))  # 6
    assert severe.value("esi") == "eligible"
    assert mild.value("esi") == "not-eligible"


def test_icd10cm_without_dot_and_oid_system_are_matched(pipeline: Pipeline) -> None:
    dotless = _evaluate(pipeline, _cond("c", "http://hl7.org/fhir/sid/icd-10-cm", "m5431"))
    oid = _evaluate(pipeline, _cond("c", "urn:oid:2.16.840.1.113883.6.90", "M54.31"))
    assert dotless.value("pain-type") == "neuropathic"
    assert oid.value("pain-type") == "neuropathic"


def test_finding_carried_as_the_value_is_matched(pipeline: Pipeline) -> None:
    finding = {"system": "http://loinc.org", "code": "72514-3"}
    obs = _obs(
        "o",
        finding,
        valueCodeableConcept={"coding": [{"system": "http://snomed.info/sct", "code": "23056005"}]},
    )
    assert _evaluate(pipeline, obs).value("pain-type") == "neuropathic"


def test_spondylosis_with_radiculopathy_is_radiculopathy(pipeline: Pipeline) -> None:
    icd = "http://hl7.org/fhir/sid/icd-10-cm"
    for code in ("M47.26", "M4727"):  # lumbar, lumbosacral (dotless as some feeds send it)
        assessment = _evaluate(pipeline, _cond("c", icd, code))
        assert assessment.value("pain-type") == "neuropathic", code
    unrelated = _evaluate(pipeline, _cond("c", icd, "M47.816"))  # spondylosis without it
    assert unrelated.value("pain-type") != "neuropathic"


def _procedure(code: str, start: str, end: str) -> dict[str, Any]:
    return {
        "resourceType": "Procedure", "id": f"proc-{code}", "status": "completed",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": code}]},
        "subject": {"reference": "Patient/p"},
        "performedPeriod": {"start": start, "end": end},
    }  # fmt: skip


def test_exercise_yoga_and_physiotherapy_education_are_conservative_treatment(
    pipeline: Pipeline,
) -> None:
    lbp = _cond("c", "http://snomed.info/sct", "279039007", onset="2026-11-01")
    for code in ("85680003", "229224000", "410159001"):
        long = _evaluate(pipeline, lbp, _procedure(code, "2026-09-01", "2026-11-20"))  # 11 weeks
        short = _evaluate(pipeline, lbp, _procedure(code, "2026-11-01", "2026-11-20"))  # 3 weeks
        assert "trial-met" in long.derived, code
        assert "conservative-treatment-documented" in short.derived, code
        assert "trial-met" not in short.derived, code
    none = _evaluate(
        pipeline, lbp, _procedure("44868003", "2026-09-01", "2026-11-20")
    )  # acupuncture
    assert "conservative-treatment-documented" not in none.derived
