"""Input forms seen in real feeds: coded yes/no answers, LOINC NRS answers, free-text values,
ICD-10-CM codes without the dot, OIDs as systems."""

from __future__ import annotations

from typing import Any

import orjson

from service.fhir.request import read_triage_request
from service.fhir.triage import Engine, digest_of, resolve_options

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


def _evaluate(engine: Engine, *resources: dict[str, Any]) -> Any:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in (PATIENT, *resources)],
    }
    body = orjson.dumps(bundle)
    request = read_triage_request(body, max_bytes=10**7, max_entries=1000)
    options = resolve_options(engine.kb, {"asOf": "2026-11-24"}, now=None)  # type: ignore[arg-type]
    result = engine.triage(request.bundle, options, digest=digest_of(body, options))
    return result.assessments[0]


def _yes_no(code: str) -> dict[str, Any]:
    return {"valueCodeableConcept": {"coding": [{"system": "http://loinc.org", "code": code}]}}


def test_coded_no_answer_is_screened_absent(engine: Engine) -> None:
    lbp = _cond("c", "http://snomed.info/sct", "279039007")
    radiating = {"system": LOCAL, "code": "radiating-pain-below-knee"}
    no = _evaluate(engine, lbp, _obs("o", radiating, **_yes_no("LA32-8")))
    yes = _evaluate(engine, lbp, _obs("o", radiating, **_yes_no("LA33-6")))
    assert no.value("pain-type") == "mechanical"
    assert yes.value("pain-type") == "mixed"


def test_negative_free_text_value_is_screened_absent(engine: Engine) -> None:
    lbp = _cond("c", "http://snomed.info/sct", "279039007")
    saddle = {"system": "http://snomed.info/sct", "code": "449813001"}
    assert _evaluate(engine, lbp, _obs("o", saddle, valueString="No")).red_flags == ()
    flagged = _evaluate(engine, lbp, _obs("o", saddle, valueString="Reported today"))
    assert [f.code for f in flagged.red_flags] == ["cauda-equina"]


def test_nrs_as_loinc_answer_code_is_a_number(engine: Engine) -> None:
    sciatica = _cond("c", "http://snomed.info/sct", "23056005")
    nrs = {"system": "http://loinc.org", "code": "72514-3"}
    severe = _evaluate(engine, sciatica, _obs("o", nrs, **_yes_no("LA10139-6")))  # 7
    mild = _evaluate(engine, sciatica, _obs("o", nrs, **_yes_no("LA10138-8")))  # 6
    assert severe.value("esi") == "eligible"
    assert mild.value("esi") == "not-eligible"


def test_icd10cm_without_dot_and_oid_system_are_matched(engine: Engine) -> None:
    dotless = _evaluate(engine, _cond("c", "http://hl7.org/fhir/sid/icd-10-cm", "m5431"))
    oid = _evaluate(engine, _cond("c", "urn:oid:2.16.840.1.113883.6.90", "M54.31"))
    assert dotless.value("pain-type") == "neuropathic"
    assert oid.value("pain-type") == "neuropathic"


def test_finding_carried_as_the_value_is_matched(engine: Engine) -> None:
    finding = {"system": "http://loinc.org", "code": "72514-3"}
    obs = _obs(
        "o",
        finding,
        valueCodeableConcept={"coding": [{"system": "http://snomed.info/sct", "code": "23056005"}]},
    )
    assert _evaluate(engine, obs).value("pain-type") == "neuropathic"


def test_spondylosis_with_radiculopathy_is_radiculopathy(engine: Engine) -> None:
    icd = "http://hl7.org/fhir/sid/icd-10-cm"
    for code in ("M47.26", "M4727"):  # lumbar, lumbosacral (dotless as some feeds send it)
        assessment = _evaluate(engine, _cond("c", icd, code))
        assert assessment.value("pain-type") == "neuropathic", code
    unrelated = _evaluate(engine, _cond("c", icd, "M47.816"))  # spondylosis without it
    assert unrelated.value("pain-type") != "neuropathic"


def _procedure(code: str, start: str, end: str) -> dict[str, Any]:
    return {
        "resourceType": "Procedure", "id": f"proc-{code}", "status": "completed",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": code}]},
        "subject": {"reference": "Patient/p"},
        "performedPeriod": {"start": start, "end": end},
    }  # fmt: skip


def test_exercise_yoga_and_physiotherapy_education_are_conservative_treatment(
    engine: Engine,
) -> None:
    lbp = _cond("c", "http://snomed.info/sct", "279039007", onset="2026-11-01")
    for code in ("85680003", "229224000", "410159001"):
        long = _evaluate(engine, lbp, _procedure(code, "2026-09-01", "2026-11-20"))  # 11 weeks
        short = _evaluate(engine, lbp, _procedure(code, "2026-11-01", "2026-11-20"))  # 3 weeks
        assert "trial-met" in long.derived, code
        assert "conservative-treatment-documented" in short.derived, code
        assert "trial-met" not in short.derived, code
    none = _evaluate(engine, lbp, _procedure("44868003", "2026-09-01", "2026-11-20"))  # acupuncture
    assert "conservative-treatment-documented" not in none.derived
