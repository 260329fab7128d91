"""The fast path's entry selection changes nothing but speed: ingesting only the Conditions and
Observations the rules can use gives byte-identical ``$triage`` results, on every golden case and
on the same cases buried in the noise of a real record (vital signs, labs, unrelated problems,
codings without a system, text-only findings, findings carried in components or as values)."""

from __future__ import annotations

import copy
import dataclasses
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from fhir_testkit import AS_OF, CASES, Json, load_case

from service.app.pipeline import Pipeline
from service.app.view import trace_view
from service.domain.knowledge import load_knowledge
from service.fhir.ingest import ingest
from service.fhir.relevance import Relevance
from service.fhir.validate import validate_bundle

PIPELINE = Pipeline(load_knowledge())


class _Everything(Relevance):
    """The relevance test that keeps every resource (no selection)."""

    def __call__(self, resource: dict[str, Any]) -> bool:
        return True


LOINC, SNOMED = "http://loinc.org", "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
NAMES = sorted(p.stem for p in CASES.glob("*.json"))


def _cc(system: str | None, code: str | None, text: str | None = None) -> Json:
    coding = {k: v for k, v in (("system", system), ("code", code)) if v}
    concept: Json = {"coding": [coding]} if coding else {"coding": []}
    if text:
        concept["text"] = text
    return concept


def _noise(subject: str) -> list[Json]:
    """Entries of a real record, relevant and not, each a case the selection must get right."""
    ref = {"reference": subject}

    def obs(oid: str, **body: Any) -> Json:
        resource = {"resourceType": "Observation", "id": oid, "status": "final", "subject": ref}
        return {"resource": {**resource, **body}}

    def med(mid: str, code: Json) -> Json:
        return {"resource": {
            "resourceType": "MedicationStatement", "id": mid, "status": "active", "subject": ref,
            "medicationCodeableConcept": code, "effectiveDateTime": "2026-10-01",
        }}  # fmt: skip

    return [
        obs("bp", code=_cc(LOINC, "85354-9"), component=[
            {"code": _cc(LOINC, "8480-6"), "valueQuantity": {"value": 120, "unit": "mm[Hg]"}},
            {"code": _cc(LOINC, "8462-4"), "valueQuantity": {"value": 80, "unit": "mm[Hg]"}},
        ]),
        obs("hba1c", code=_cc(LOINC, "4548-4"), valueQuantity={"value": 5.4, "unit": "%"}),
        obs("no-system", code=_cc(None, "8310-5"), valueQuantity={"value": 39.2}),
        obs("text-burning", code=_cc(None, None, "Burning pain radiating down the left leg"),
            valueBoolean=True),
        obs("text-negated", code=_cc(None, None, "No saddle anaesthesia"), valueBoolean=True),
        obs("finding-as-value", code=_cc(SNOMED, "404684003"),
            valueCodeableConcept=_cc(SNOMED, "23056005", "Sciatica")),
        obs("component-fever", code=_cc(LOINC, "8716-3"), component=[
            {"code": _cc(LOINC, "8310-5"), "valueQuantity": {"value": 38.9, "unit": "Cel"}},
        ]),
        {"resource": {
            "resourceType": "Condition", "id": "asthma", "subject": ref,
            "code": _cc(SNOMED, "195967001", "Asthma"), "onsetDateTime": "2015-01-01",
        }},
        {"resource": {
            "resourceType": "Condition", "id": "text-only", "subject": ref,
            "code": {"text": "weakness of the right foot"}, "onsetDateTime": "2026-11-01",
        }},
        # a laboratory panel report, and an encounter-note report (Synthea writes thousands)
        {"resource": {
            "resourceType": "DiagnosticReport", "id": "cbc", "status": "final", "subject": ref,
            "code": _cc(LOINC, "58410-2", "CBC panel - Blood by Automated count"),
        }},
        # a report whose conclusion PainPath reads (a coded finding in the second conclusion)
        {"resource": {
            "resourceType": "DiagnosticReport", "id": "mri", "status": "final", "subject": ref,
            "code": _cc(LOINC, "24590-2"),
            "conclusionCode": [_cc(SNOMED, "195967001"), _cc(SNOMED, "23056005")],
        }},
        {"resource": {
            "resourceType": "Procedure", "id": "dental", "status": "completed", "subject": ref,
            "code": _cc(SNOMED, "234946009", "Tooth extraction"),
        }},
        {"resource": {
            "resourceType": "Procedure", "id": "physio", "status": "completed", "subject": ref,
            "code": _cc(SNOMED, "91251008"), "performedDateTime": "2026-10-01",
        }},
        # medications: a listed ingredient code, an unlisted product code whose display spells an
        # ingredient, a brand in text, a Medication by reference (its Medication decides); and a
        # drug no class lists (by code and display), a coding without a system, an empty concept
        med("codeine", code=_cc(RXNORM, "2670")),
        med("tramadol-scd", code=_cc(RXNORM, "835603", "tramadol hydrochloride 50 MG Oral Tablet")),
        med("brand-text", code=_cc(None, None, "Ultram 50 mg tablets")),
        {"resource": {
            "resourceType": "MedicationRequest", "id": "by-reference", "status": "active",
            "intent": "order", "subject": ref, "medicationReference": {"reference": "Medication/x"},
        }},
        med("lisinopril", code=_cc(RXNORM, "314076", "lisinopril 10 MG Oral Tablet")),
        med("no-system-drug", code=_cc(None, "2670")),
        med("empty-drug", code={}),
    ]  # fmt: skip


def _subject(bundle: Json) -> str | None:
    for entry in bundle.get("entry", ()):
        res = entry.get("resource", {})
        if res.get("resourceType") == "Patient" and res.get("id"):
            return f"Patient/{res['id']}"
    return None


def _triage(bundle: Json, case: Json, *, select: bool, validated: bool = False) -> bytes:
    pipeline = copy.copy(PIPELINE)
    if not select:
        pipeline.relevance = _Everything(pipeline.matcher)
    selected = None
    if validated:  # the selection made during validation, as the routes pass it on
        selected = validate_bundle(bundle, max_entries=10**6, relevant=pipeline.relevance).selected
        assert selected is not None
    options = pipeline.options(
        {"asOf": case.get("asOf", AS_OF), "profile": case.get("profile", "nice-ng59")},
        now=datetime(2026, 11, 24, tzinfo=UTC),
    )
    result = pipeline.evaluate(bundle, options, selected=selected)
    return orjson.dumps(result.bundle)


@pytest.mark.parametrize("noisy", [False, True], ids=["as-is", "in-a-noisy-record"])
@pytest.mark.parametrize("name", NAMES)
def test_selection_gives_identical_results(name: str, noisy: bool) -> None:
    case = load_case(name)
    bundle = case["bundle"]
    if noisy:
        subject = _subject(bundle)
        if subject is None:
            pytest.skip("no Patient entry to attach a record to")  # counted below
        bundle.setdefault("entry", []).extend(_noise(subject))
    selected = _triage(bundle, case, select=True)
    assert b'"resourceType":"CarePlan"' in selected or not case["expect"]["inScope"]
    assert selected == _triage(bundle, case, select=False)
    assert selected == _triage(bundle, case, select=True, validated=True)


def test_nearly_every_golden_case_has_a_patient_to_bury_in_noise() -> None:
    with_patient = [n for n in NAMES if _subject(load_case(n)["bundle"])]
    assert len(with_patient) >= len(NAMES) - 5


def test_selection_leaves_out_what_no_rule_reads_and_keeps_the_rest() -> None:
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": "p"}}, *_noise("Patient/p"),
    ]}  # fmt: skip
    everything = ingest(bundle)
    selected = ingest(bundle, PIPELINE.relevance)
    refs = {item.ref for item in everything.records[0].items}
    kept = {item.ref for item in selected.records[0].items}
    # codes no concept holds (vital signs, labs, a temperature panel, asthma, a lab report, a
    # dental procedure) or no system at all
    assert refs - kept == {
        "Observation/bp", "Observation/hba1c", "Observation/component-fever",
        "Observation/no-system", "Condition/asthma", "DiagnosticReport/cbc", "Procedure/dental",
        "MedicationStatement/lisinopril", "MedicationStatement/no-system-drug",
        "MedicationStatement/empty-drug",
    }  # fmt: skip
    # a coded finding (also as a value or a report's conclusion), a treatment, and text the
    # keyword matcher reads, negated or not
    assert kept == {
        "Observation/text-burning", "Observation/text-negated", "Observation/finding-as-value",
        "Condition/text-only", "DiagnosticReport/mri", "Procedure/physio",
        "MedicationStatement/codeine", "MedicationStatement/tramadol-scd",
        "MedicationStatement/brand-text", "MedicationRequest/by-reference",
    }  # fmt: skip
    # still attributed and reported: only the items are left out
    assert selected.ref_types == everything.ref_types
    assert selected.entry_paths == everything.entry_paths
    assert selected.skipped == everything.skipped


@pytest.mark.parametrize("name", NAMES)
def test_the_trace_view_of_a_run_equals_one_that_reads_the_input_again(name: str) -> None:
    case = load_case(name)
    bundle = case["bundle"]
    subject = _subject(bundle)
    if subject is not None:
        bundle.setdefault("entry", []).extend(_noise(subject))
    options = PIPELINE.options(
        {"asOf": case.get("asOf", AS_OF), "profile": case.get("profile", "nice-ng59")},
        now=datetime(2026, 11, 24, tzinfo=UTC),
    )
    result = PIPELINE.evaluate(bundle, options)
    reused = trace_view(PIPELINE, result)
    fresh = trace_view(PIPELINE, dataclasses.replace(result, found=ingest(bundle)))
    assert orjson.dumps(reused) == orjson.dumps(fresh)
