"""Real-world codings (rule set 2027.1, RULES §0): medications by ingredient whatever the coding,
SNOMED cancers and weight loss, retired ICD-10-CM codes, display and text keywords as
lower-certainty evidence, input CarePlan activities as treatment, and the never-silent report of
every entry no concept recognised. Each mapping is tested with a near miss that must not match."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from fhir_testkit import issues_with, triage_resources

from service.app.pipeline import Pipeline, TriageResult

Json = dict[str, Any]
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
ATC = "http://www.whocc.no/atc"
AS_OF = "2026-11-24T10:00:00+00:00"
PATIENT = {"resourceType": "Patient", "id": "p", "birthDate": "1970-01-01", "gender": "female"}


def _concept(system: str | None, code: str | None, display: str | None = None) -> Json:
    coding: Json = {}
    if system:
        coding["system"] = system
    if code:
        coding["code"] = code
    if display:
        coding["display"] = display
    return {"coding": [coding]}


def _med(mid: str, concept: Json, status: str = "active", **extra: Any) -> Json:
    return {
        "resourceType": "MedicationRequest",
        "id": mid,
        "status": status,
        "intent": "order",
        "medicationCodeableConcept": concept,
        "subject": {"reference": "Patient/p"},
        "authoredOn": "2026-09-01",
        **extra,
    }


def _cond(cid: str, concept: Json, onset: str = "2026-11-10", status: str = "active") -> Json:
    return {
        "resourceType": "Condition",
        "id": cid,
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": status,
                }
            ]
        },
        "code": concept,
        "subject": {"reference": "Patient/p"},
        "onsetDateTime": onset,
    }


LBP = _cond("lbp", _concept(SNOMED, "279039007", "Low back pain"))


def _run(pipeline: Pipeline, *resources: Json) -> TriageResult:
    return triage_resources(pipeline, PATIENT, *resources, as_of=AS_OF)


def _facts(pipeline: Pipeline, resource: Json) -> dict[str, Json]:
    """concept -> the fact's evidence, for one resource's items."""
    result = _run(pipeline, resource)
    record = result.found.records[0]
    found: dict[str, Json] = {}
    for item in record.items:
        facts, _ = pipeline.matcher.match(item)
        for fact in facts:
            evidence = fact.evidence()
            found[fact.concept] = {"lower": evidence.lower_certainty, "how": evidence.how}
    return found


# --- medications by ingredient -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("concept", "expected"),
    [
        # RxNorm clinical drug (SCD) not listed anywhere: the display names the ingredient
        (_concept(RXNORM, "835603", "tramadol hydrochloride 50 MG Oral Tablet"), {"opioid"}),
        # branded drug (SBD) of a combination: both ingredients, and the brand in brackets
        (
            _concept(RXNORM, "1049625", "Oxycodone Hydrochloride 5 MG / Acetaminophen 325 MG "
                     "Oral Tablet [Percocet]"),
            {"opioid", "paracetamol"},
        ),
        (_concept(RXNORM, "245134", "72 HR Fentanyl 0.025 MG/HR Transdermal System"), {"opioid"}),
        (_concept(RXNORM, "197591", "Diazepam 5 MG Oral Tablet"), {"benzodiazepine"}),
        (_concept(RXNORM, "1364430", None), {"anticoagulant", "anticoagulant-use"}),
        (_concept(RXNORM, "309362", "Clopidogrel 75 MG Oral Tablet"), {"antiplatelet"}),
        # an ATC ingredient code with no display at all
        (_concept(ATC, "N02AX02", None), {"opioid"}),
        # a dm+d product: SNOMED-coded (unknown here), its display names the ingredient
        (_concept(SNOMED, "39695211000001102", "Tramadol 50mg capsules"), {"opioid"}),
        # a brand only, as free text
        ({"text": "Eliquis 5mg twice daily"}, {"anticoagulant", "anticoagulant-use"}),
        # aspirin: RULES §7 lists it with the antiplatelets (low dose)
        (_concept(RXNORM, "243670", "aspirin 81 MG Oral Tablet"), {"antiplatelet"}),
    ],
)  # fmt: skip
def test_medication_recognised_by_ingredient(
    pipeline: Pipeline, concept: Json, expected: set[str]
) -> None:
    found = _facts(pipeline, _med("m1", concept))
    assert expected <= set(found), found
    assert all(f["how"] and f["how"].startswith("ingredient") for c, f in found.items()
               if c in expected and c != "anticoagulant-use")  # fmt: skip


@pytest.mark.parametrize(
    "concept",
    [
        _concept(RXNORM, "835603", "levothyroxine sodium 0.05 MG Oral Tablet"),
        _concept(RXNORM, "10689", None) | {"coding": [{"system": RXNORM, "code": "10688"}]},
        {"text": "tramadolol"},  # not a word of any ingredient
        _concept(ATC, "N02AX99", None),
    ],
)
def test_medication_near_misses_are_not_recognised(pipeline: Pipeline, concept: Json) -> None:
    assert _facts(pipeline, _med("m1", concept)) == {}


def test_contained_medication_ingredients_are_read(pipeline: Pipeline) -> None:
    request = _med("m1", {}) | {
        "contained": [
            {
                "resourceType": "Medication",
                "id": "compound",
                "ingredient": [
                    {"itemCodeableConcept": {"text": "Hydromorphone HCl powder"}},
                    {"itemCodeableConcept": {"text": "Sodium chloride 0.9%"}},
                ],
            }
        ],
        "medicationReference": {"reference": "#compound"},
    }
    del request["medicationCodeableConcept"]
    assert "opioid" in _facts(pipeline, request)


def test_every_medication_is_used_or_reported(pipeline: Pipeline) -> None:
    known = _med("m1", _concept(RXNORM, "835603", "tramadol hydrochloride 50 MG Oral Tablet"))
    unknown = _med("m2", _concept(RXNORM, "966222", "Levothyroxine Sodium 0.075 MG Oral Tablet"))
    result = _run(pipeline, LBP, known, unknown)
    reported = issues_with(result.bundle, "code-not-recognised")
    texts = " ".join(i["diagnostics"] for i in reported)
    assert "966222" in texts
    assert "835603" not in texts
    assert any("MedicationRequest" in i["diagnostics"] for i in reported)


def _by_reference(mid: str, reference: str) -> Json:
    request = _med(mid, {}) | {"medicationReference": {"reference": reference}}
    del request["medicationCodeableConcept"]
    return request


def test_a_medication_reference_that_resolves_nowhere_is_a_warning(pipeline: Pipeline) -> None:
    """A drug PainPath cannot see is a drug it cannot check: never an "information" aside."""
    result = _run(pipeline, LBP, _by_reference("m1", "Medication/absent"))
    [reported] = issues_with(result.bundle, "code-not-recognised")
    assert reported["severity"] == "warning"
    assert reported["code"] == "not-found"
    assert "Medication/absent" in reported["diagnostics"]
    assert reported["expression"] == ["Bundle.entry[2].resource.medicationReference"]


@pytest.mark.parametrize(
    "reference",
    ["Medication/med-9", "https://ehr.example.org/fhir/Medication/med-9",
     "Medication/med-9/_history/4", "urn:uuid:0b9f1c52-7a3e-4d1a-9a53-5f0c3c2b8e11"],
)  # fmt: skip
def test_a_medication_entry_is_found_by_any_reference_form(
    pipeline: Pipeline, reference: str
) -> None:
    medication = {"resourceType": "Medication", "id": "med-9",
                  "code": _concept(RXNORM, "197591", "Diazepam 5 MG Oral Tablet")}  # fmt: skip
    bundle = {
        "resourceType": "Bundle", "type": "collection",
        "entry": [
            {"resource": PATIENT}, {"resource": LBP},
            {"fullUrl": "urn:uuid:0b9f1c52-7a3e-4d1a-9a53-5f0c3c2b8e11", "resource": medication},
            {"resource": _by_reference("m1", reference)},
        ],
    }  # fmt: skip
    now = datetime(2026, 11, 24, tzinfo=UTC)
    result = pipeline.run_body(orjson.dumps(bundle), {"asOf": AS_OF}, now=now)
    assert "MedicationRequest/m1" in result.assessments[0].recognised
    assert issues_with(result.bundle, "code-not-recognised") == []


def test_a_resolved_medication_with_an_unknown_code_is_named_by_its_code(
    pipeline: Pipeline,
) -> None:
    code = _concept(RXNORM, "966222", "Levothyroxine Sodium 0.075 MG Oral Tablet")
    medication = {"resourceType": "Medication", "id": "lt", "code": code}
    result = _run(pipeline, LBP, medication, _by_reference("m1", "Medication/lt"))
    [reported] = issues_with(result.bundle, "code-not-recognised")
    assert reported["severity"] == "information"
    assert "966222" in reported["diagnostics"]


# --- conditions and findings ---------------------------------------------------------------------
def test_snomed_cancer_in_remission_with_back_pain_raises_malignancy(pipeline: Pipeline) -> None:
    cancer = _cond(
        "ca", _concept(SNOMED, "254837009", "Malignant neoplasm of breast (disorder)"),
        onset="2019-03-01", status="remission",
    )  # fmt: skip
    flags = [f.code for f in _run(pipeline, LBP, cancer).assessments[0].red_flags]
    assert "malignancy" in flags


def test_unintentional_weight_loss_in_snomed_raises_malignancy(pipeline: Pipeline) -> None:
    loss = _cond("wl", _concept(SNOMED, "448765001", "Unintentional weight loss (finding)"))
    result = _run(pipeline, LBP, loss)
    assert "malignancy" in [f.code for f in result.assessments[0].red_flags]
    assert not issues_with(result.bundle, "red-flag-screen-not-documented")


def test_plain_weight_loss_is_named_in_the_red_flag_screen_note(pipeline: Pipeline) -> None:
    """89362005 "Weight loss" may be intentional: no flag, but never "not documented"."""
    loss = _cond("wl", _concept(SNOMED, "89362005", "Weight loss (finding)"))
    result = _run(pipeline, LBP, loss)
    assert result.assessments[0].red_flags == ()
    assert not issues_with(result.bundle, "red-flag-screen-not-documented")
    [note] = issues_with(result.bundle, "red-flag-screen-unrecognised-entries")
    assert "89362005" in note["diagnostics"]
    assert note["severity"] == "warning"


def test_red_flag_screen_not_documented_when_nothing_could_be_a_finding(
    pipeline: Pipeline,
) -> None:
    vital = {
        "resourceType": "Observation", "id": "bp", "status": "final",
        "category": [{"coding": [{"code": "vital-signs"}]}],
        "code": _concept("http://loinc.org", "8480-6", "Systolic blood pressure"),
        "subject": {"reference": "Patient/p"}, "valueQuantity": {"value": 120},
    }  # fmt: skip
    result = _run(pipeline, LBP, vital)
    assert issues_with(result.bundle, "red-flag-screen-not-documented")
    assert not issues_with(result.bundle, "red-flag-screen-unrecognised-entries")
    [reported] = issues_with(result.bundle, "code-not-recognised")
    assert reported["expression"] == ["Bundle.entry[2].resource.code"]


@pytest.mark.parametrize(
    ("code", "concept"),
    [("M54.5", "low-back-pain"), ("M545", "low-back-pain"), ("M51.36", "mechanical-back-pain"),
     ("G57.01", "neuropathic-pain"), ("G57.00", "neuropathic-pain"),
     # a vertebral fracture whatever the 7th character (initial, subsequent, sequela...)
     ("M80.08XA", "vertebral-fracture"), ("M80.08XD", "vertebral-fracture"),
     ("M80.88XA", "vertebral-fracture"), ("M8088XG", "vertebral-fracture"),
     ("M48.56XS", "vertebral-fracture"), ("M48.55XA", "vertebral-fracture"),
     ("M48.54XD", "vertebral-fracture"), ("M48.57XA", "vertebral-fracture"),
     ("M84.58XK", "vertebral-fracture")],
)  # fmt: skip
def test_retired_and_nerve_lesion_icd_codes(pipeline: Pipeline, code: str, concept: str) -> None:
    found = _facts(pipeline, _cond("c", _concept(ICD10CM, code, None)))
    assert concept in found
    assert not found[concept]["lower"]


@pytest.mark.parametrize(
    "code",
    # near misses: other regions and sites of the same categories, and the parent categories
    ["M54.6", "G57.1", "M51.3", "G57", "M80.07XA", "M80.0", "M48.53XA", "M48.58XA", "M84.57XA",
     "M80.8"],
)  # fmt: skip
def test_icd_near_misses(pipeline: Pipeline, code: str) -> None:
    found = _facts(pipeline, _cond("c", _concept(ICD10CM, code, None)))
    wrong = {"low-back-pain", "neuropathic-pain", "mechanical-back-pain", "vertebral-fracture"}
    assert not wrong & set(found)


def test_m54_5_gives_a_pain_type(pipeline: Pipeline) -> None:
    retired = _cond("c", _concept(ICD10CM, "M54.5", "Low back pain"))
    assert _run(pipeline, retired).assessments[0].value("pain-type") == "mechanical"


@pytest.mark.parametrize(
    ("concept", "expected", "how"),
    [
        ({"text": "LBP"}, "low-back-pain", "keyword in text"),
        (_concept(SNOMED, "1234567", "Low back pain (finding)"), "low-back-pain",
         "keyword in display (code not listed)"),
        (_concept(None, None, "Sciatica left leg"), "sciatica", "keyword in text"),
        # saddle anaesthesia as notes and other code systems write it
        ({"text": "Numbness of saddle area"}, "saddle-anaesthesia", "keyword in text"),
        ({"text": "Numbness in the saddle area"}, "saddle-anaesthesia", "keyword in text"),
        ({"text": "Perineal numbness since yesterday"}, "saddle-anaesthesia", "keyword in text"),
        (_concept("http://read.info/ctv3", "XaBxx", "Numbness of saddle area"),
         "saddle-anaesthesia", "keyword in display (code not listed)"),
        # the neuropathic descriptors of RULES §2
        ({"text": "Electric shock-like shooting pain down the leg"}, "shooting-pain",
         "keyword in text"),
        ({"text": "Painful cold sensation in foot"}, "painful-cold", "keyword in text"),
        ({"text": "Itching in the painful area"}, "itching-in-painful-area", "keyword in text"),
        ({"text": "Pain radiates below the knee"}, "radiating-pain-below-knee", "keyword in text"),
    ],
)  # fmt: skip
def test_words_are_lower_certainty_evidence(
    pipeline: Pipeline, concept: Json, expected: str, how: str
) -> None:
    found = _facts(pipeline, _cond("c", concept))
    assert found[expected] == {"lower": True, "how": how}


@pytest.mark.parametrize(
    "concept",
    [
        {"text": "upper back pain"},
        {"text": "Family history of breast cancer"},
        _concept(SNOMED, "1234567", "Screening for malignant neoplasm of breast"),
        {"text": "no low back pain"},
        {"text": "Pain in the saddle area"},  # pain, not numbness
        {"text": "No perineal numbness"},
        {"text": "Electric shock injury"},
        {"text": "Itching of skin"},
        {"text": "Cold feet"},
        {"text": "Below knee amputation status, pain below the knee"},
    ],
)
def test_word_near_misses(pipeline: Pipeline, concept: Json) -> None:
    found = _facts(pipeline, _cond("c", concept))
    wrong = {
        "low-back-pain", "malignant-neoplasm", "cancer-history", "saddle-anaesthesia",
        "shooting-pain", "painful-cold", "itching-in-painful-area", "radiating-pain-below-knee",
    }  # fmt: skip
    assert not wrong & set(found)


def test_a_known_code_is_not_second_guessed_by_its_display(pipeline: Pipeline) -> None:
    """A listed code decides; its display is not read for more concepts."""
    found = _facts(pipeline, _cond("c", _concept(SNOMED, "279039007", "Low back pain; cancer")))
    assert "malignant-neoplasm" not in found


def test_screening_procedure_display_is_no_cancer(pipeline: Pipeline) -> None:
    procedure = {
        "resourceType": "Procedure", "id": "pr", "status": "completed",
        "code": _concept(SNOMED, "999999", "Screening for malignant neoplasm of cervix"),
        "subject": {"reference": "Patient/p"}, "performedDateTime": "2026-01-01",
    }  # fmt: skip
    assert _facts(pipeline, procedure) == {}


# --- never silent: aggregation ----------------------------------------------------------------
def test_unrecognised_entries_are_aggregated_per_code(pipeline: Pipeline) -> None:
    weights = [
        {
            "resourceType": "Observation", "id": f"w{i}", "status": "final",
            "category": [{"coding": [{"code": "vital-signs"}]}],
            "code": _concept("http://loinc.org", "29463-7", "Body Weight"),
            "subject": {"reference": "Patient/p"}, "valueQuantity": {"value": 70 + i},
        }
        for i in range(8)
    ]  # fmt: skip
    result = _run(pipeline, LBP, *weights)
    [issue] = issues_with(result.bundle, "code-not-recognised")
    assert issue["diagnostics"].startswith("Patient/p: 8 Observation entries with Body Weight")
    assert len(issue["expression"]) == 5
    assert issue["severity"] == "information"


# --- CarePlan activities as treatment -----------------------------------------------------------
def _plan(status: str, detail_status: str) -> Json:
    return {
        "resourceType": "CarePlan", "id": "cp", "status": status, "intent": "plan",
        "subject": {"reference": "Patient/p"},
        "period": {"start": "2026-08-01", "end": "2026-10-15"},
        "activity": [{"detail": {
            "status": detail_status,
            "code": _concept(SNOMED, "91251008", "Physical therapy procedure"),
        }}],
    }  # fmt: skip


def test_careplan_physiotherapy_counts_as_treatment(pipeline: Pipeline) -> None:
    assert "physiotherapy-procedure" in _facts(pipeline, _plan("completed", "completed"))


@pytest.mark.parametrize(
    ("status", "detail_status"),
    [("completed", "not-started"), ("completed", "cancelled"), ("draft", "completed"),
     ("completed", "scheduled")],
)  # fmt: skip
def test_careplan_activity_not_given_is_not_treatment(
    pipeline: Pipeline, status: str, detail_status: str
) -> None:
    assert "physiotherapy-procedure" not in _facts(pipeline, _plan(status, detail_status))


@pytest.mark.parametrize("reference", [None, "Medication/absent"])
def test_a_medication_reference_display_is_read_as_text(
    pipeline: Pipeline, reference: str | None
) -> None:
    """A reference that names nothing in the request still carries the drug's name: read it
    (lower certainty), never drop a tramadol because the Medication was not sent."""
    holder = {"display": "Tramadol 50 mg capsules"}
    if reference:
        holder["reference"] = reference
    request = _med("m1", {}) | {"medicationReference": holder}
    del request["medicationCodeableConcept"]
    assert "opioid" in _facts(pipeline, request)
    assert issues_with(_run(pipeline, LBP, request).bundle, "code-not-recognised") == []


def test_an_unreadable_medication_display_is_a_warning_naming_it(pipeline: Pipeline) -> None:
    request = _med("m1", {}) | {"medicationReference": {"display": "Compound X 30/500"}}
    del request["medicationCodeableConcept"]
    [reported] = issues_with(_run(pipeline, LBP, request).bundle, "code-not-recognised")
    assert reported["severity"] == "warning"
    assert "no reference (named 'Compound X 30/500')" in reported["diagnostics"]


# --- values that say nothing or cannot be read --------------------------------------------------
def _fever(**value: Any) -> Json:
    return {
        "resourceType": "Observation", "id": "fever", "status": "final",
        "code": _concept("https://painpath.dev/fhir/CodeSystem/painpath", "fever"),
        "subject": {"reference": "Patient/p"}, "effectiveDateTime": "2026-11-20", **value,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("value", "severity"),
    [
        ({"dataAbsentReason": {"coding": [{"code": "asked-unknown"}]}}, "information"),
        ({"valueCodeableConcept": _concept(SNOMED, "261665006", "Unknown")}, "information"),
        ({"valueInteger": 1}, "warning"),
        ({"valueCodeableConcept": _concept(SNOMED, "999999999")}, "warning"),
    ],
)
def test_a_finding_whose_value_is_not_read_is_reported_once_and_named_by_the_screen(
    pipeline: Pipeline, value: Json, severity: str
) -> None:
    """Recognised (no code-not-recognised issue), not used (no fact), reported with its path, and
    the red-flag screen names it instead of saying "not documented"."""
    assert "fever" not in _facts(pipeline, _fever(**value))
    result = _run(pipeline, LBP, _fever(**value))
    [reported] = issues_with(result.bundle, "value-not-read")
    assert reported["severity"] == severity
    assert reported["expression"] == ["Bundle.entry[2].resource"]
    assert not issues_with(result.bundle, "code-not-recognised")
    assert not issues_with(result.bundle, "red-flag-screen-not-documented")
    [note] = issues_with(result.bundle, "red-flag-screen-unrecognised-entries")
    assert "fever" in note["diagnostics"]


def test_a_finding_read_from_its_value_is_not_reported(pipeline: Pipeline) -> None:
    """The other side: yes/no answers are read, and screened-absent documents the screen."""
    for value in ({"valueBoolean": False}, {"valueCodeableConcept": _concept(SNOMED, "373067005")}):
        result = _run(pipeline, LBP, _fever(**value))
        assert not issues_with(result.bundle, "value-not-read")
        assert not issues_with(result.bundle, "red-flag-screen-not-documented")
        assert not issues_with(result.bundle, "red-flag-screen-unrecognised-entries")


# --- MRI safety of a device (RULES §6: CT instead of MRI for a non-conditional device) ----------
_NCI = "urn:oid:2.16.840.1.113883.3.26.1.1"  # a device-safety code system; its codes are not read


def _pacemaker(*safety: Json) -> Json:
    device: Json = {
        "resourceType": "Device", "id": "pm", "status": "active",
        "type": _concept(SNOMED, "14106009", "Cardiac pacemaker (physical object)"),
        "patient": {"reference": "Patient/p"},
    }  # fmt: skip
    if safety:
        device["safety"] = list(safety)
    return device


@pytest.mark.parametrize(
    ("safety", "contraindicated"),
    [
        ((), True),  # conditionality unknown: MRI is not assumed safe
        (({"text": "MR Conditional"},), False),
        ((_concept(_NCI, "C113844", "Magnetic Resonance Conditional"),), False),
        (({"text": "MR Safe"},), False),
        (({"text": "MR Unsafe"},), True),
        (({"text": "Not MR conditional"},), True),
        (({"text": "Latex free"},), True),
    ],
)  # fmt: skip
def test_only_a_device_not_labelled_mr_conditional_contraindicates_mri(
    pipeline: Pipeline, safety: tuple[Json, ...], contraindicated: bool
) -> None:
    result = _run(pipeline, LBP, _pacemaker(*safety))
    [assessment] = result.assessments
    assert bool(assessment.derived.get("mri-contraindicated")) is contraindicated
