"""``service.fhir.ingest``: subjects resolve to patients by every reference form, whatever is not
used is reported (never dropped silently), and no parseable body crashes the reader."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from fhir_testkit import CAUDA, Json, case_bundle, load_case

from service.app.pipeline import Pipeline
from service.domain.errors import EvaluationError
from service.domain.model import Polarity
from service.fhir.errors import InputError
from service.fhir.ingest import Ingested, ingest
from service.fhir.request import read_triage_request

PP = "https://painpath.dev/fhir/CodeSystem/painpath"
SNOMED = "http://snomed.info/sct"


def _bundle(*entries: Json, bundle_type: str = "collection") -> Json:
    return {"resourceType": "Bundle", "type": bundle_type, "entry": list(entries)}


def _patient(pid: str | None = "p1", full_url: str | None = None, **extra: Any) -> Json:
    resource: Json = {"resourceType": "Patient", "birthDate": "1970-01-01", **extra}
    if pid:
        resource["id"] = pid
    entry: Json = {"resource": resource}
    if full_url:
        entry["fullUrl"] = full_url
    return entry


def _finding(
    oid: str, subject: str, code: str = "night-pain", *, full_url: str | None = None, **value: Any
) -> Json:
    resource = {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [{"system": PP, "code": code}]},
        "subject": {"reference": subject},
        "effectiveDateTime": "2026-11-20T10:00:00Z",
        **(value or {"valueBoolean": True}),
    }
    entry: Json = {"resource": resource}
    if full_url:
        entry["fullUrl"] = full_url
    return entry


def _condition(cid: str, subject: str, code: str = "23056005", **extra: Any) -> Json:
    return {
        "resource": {
            "resourceType": "Condition",
            "id": cid,
            "code": {"coding": [{"system": SNOMED, "code": code}]},
            "subject": {"reference": subject},
            **extra,
        }
    }


def _items(found: Ingested, subject: str) -> list[str]:
    [record] = [r for r in found.records if r.subject == subject]
    return [item.ref for item in record.items]


def _skips(found: Ingested) -> list[tuple[str, str]]:
    return [(s.expression, s.reason) for s in found.skipped]


# ------------------------------------------------------------------ subject resolution


@pytest.mark.parametrize(
    "reference",
    [
        "Patient/p1",
        "https://ehr.example/fhir/Patient/p1",
        "Patient/p1/_history/3",
        "https://ehr.example/fhir/Patient/p1/_history/3",
    ],
)
def test_every_reference_form_reaches_the_patient(reference: str) -> None:
    found = ingest(
        _bundle(_patient(full_url="https://ehr.example/fhir/Patient/p1"), _finding("o1", reference))
    )
    assert [r.subject for r in found.records] == ["Patient/p1"]
    assert _items(found, "Patient/p1") == ["Observation/o1"]
    assert found.skipped == []


def test_urn_full_url_is_the_subject_and_its_id_an_alias() -> None:
    urn = "urn:uuid:0a7e0000-0000-4000-8000-000000000001"
    found = ingest(
        _bundle(_patient(full_url=urn), _finding("o1", urn), _finding("o2", "Patient/p1"))
    )
    [record] = found.records
    assert record.subject == urn
    assert record.demographics.ref == urn
    assert sorted(_items(found, urn)) == ["Observation/o1", "Observation/o2"]


def test_urn_entries_are_referred_to_by_their_urn() -> None:
    urn = "urn:uuid:0b5e0000-0000-4000-8000-000000000002"
    found = ingest(_bundle(_patient(), _finding("o1", "Patient/p1", full_url=urn)))
    assert _items(found, "Patient/p1") == [urn]
    assert found.ref_types == {urn: "Observation"}


def test_patient_known_only_by_reference() -> None:
    found = ingest(
        _bundle(
            _finding("o1", "Patient/123"), _finding("o2", "http://other.example/fhir/Patient/123")
        )
    )
    [record] = found.records
    assert record.subject == "Patient/123"
    assert record.demographics.birth_date is None
    assert sorted(_items(found, "Patient/123")) == ["Observation/o1", "Observation/o2"]


def test_references_by_reference_only_make_one_record_per_patient() -> None:
    found = ingest(
        _bundle(
            _finding("o1", "Patient/b"), _finding("o2", "Patient/a"), _finding("o3", "Patient/b")
        )
    )
    assert [r.subject for r in found.records] == ["Patient/a", "Patient/b"]
    assert _items(found, "Patient/b") == ["Observation/o1", "Observation/o3"]


@pytest.mark.parametrize(
    "reference",
    [
        "Patient/someone-else",
        "Group/g1",
        "#contained",
        "urn:uuid:0c0c0000-0000-4000-8000-000000000003",
        "Practitioner/d1",
    ],
)
def test_other_subjects_are_skipped_with_the_entry_path(reference: str) -> None:
    found = ingest(_bundle(_patient(), _finding("o1", "Patient/p1"), _finding("o2", reference)))
    assert _skips(found) == [
        ("Bundle.entry[2]", "Observation: subject does not resolve to a patient")
    ]
    assert found.skipped[0].patient is None
    assert _items(found, "Patient/p1") == ["Observation/o1"]


A_PATIENT = "https://a.example/fhir/Patient/p1"


@pytest.mark.parametrize(
    ("reference", "resolves"),
    [
        (A_PATIENT, True),
        (f"{A_PATIENT}/_history/3", True),  # a version of the same patient
        ("Patient/p1", True),  # relative: resolved against the Bundle's own base
        ("https://b.example/fhir/Patient/p1", False),  # the same id on another server
        ("http://a.example/fhir/Patient/p1", False),  # another URL is another resource
    ],
)
def test_an_absolute_reference_names_the_patient_of_that_full_url_only(
    reference: str, resolves: bool
) -> None:
    """FHIR Bundle resolution: an absolute reference matches the entry whose fullUrl it is; the
    same id on another server is another patient, skipped and reported, never merged."""
    found = ingest(_bundle(_patient(full_url=A_PATIENT), _finding("o1", reference)))
    assert _items(found, "Patient/p1") == (["Observation/o1"] if resolves else [])
    assert bool(_skips(found)) is not resolves


def test_an_absolute_reference_still_finds_a_patient_sent_without_a_base() -> None:
    """A Bulk Data export's lines carry no fullUrl: the id is all there is to match."""
    found = ingest(_bundle(_patient(), _finding("o1", "https://b.example/fhir/Patient/p1")))
    assert _items(found, "Patient/p1") == ["Observation/o1"]


def test_an_entry_without_subject_is_skipped() -> None:
    entry = _finding("o1", "Patient/p1")
    del entry["resource"]["subject"]
    found = ingest(_bundle(_patient(), entry))
    assert _skips(found) == [
        ("Bundle.entry[1]", "Observation: subject does not resolve to a patient")
    ]


def test_an_anonymous_patient_is_reported_and_not_evaluated() -> None:
    found = ingest(_bundle(_patient(pid=None), _finding("o1", "Patient/p1")))
    assert found.records == []
    assert _skips(found) == [
        (
            "Bundle.entry[0]",
            "Patient has neither id nor fullUrl: nothing can refer to it; not evaluated",
        ),
        ("Bundle.entry[1]", "Observation: subject does not resolve to a patient"),
    ]


def test_patients_stay_apart() -> None:
    found = ingest(
        _bundle(
            _patient("a"),
            _patient("b", gender="male"),
            _finding("oa", "Patient/a", "saddle-anaesthesia"),
            _finding("ob", "Patient/b"),
        )
    )
    assert [r.subject for r in found.records] == ["Patient/a", "Patient/b"]
    assert _items(found, "Patient/a") == ["Observation/oa"]
    assert _items(found, "Patient/b") == ["Observation/ob"]
    assert found.records[1].demographics.sex == "male"


# ------------------------------------------------------------------ what is not used is reported


def test_refuted_and_entered_in_error_are_reported_against_their_patient() -> None:
    refuted = _condition(
        "c1",
        "Patient/p1",
        verificationStatus={
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                    "code": "refuted",
                }
            ]
        },
    )
    wrong = _finding("o1", "Patient/p1")
    wrong["resource"]["status"] = "entered-in-error"
    found = ingest(_bundle(_patient(), refuted, wrong))
    assert _skips(found) == [
        ("Bundle.entry[1]", "Condition ignored: verificationStatus is refuted"),
        ("Bundle.entry[2]", "Observation ignored: status is entered-in-error"),
    ]
    assert {s.patient for s in found.skipped} == {"Patient/p1"}
    assert {s.severity for s in found.skipped} == {"information"}
    assert _items(found, "Patient/p1") == []


def test_unused_resource_types_are_counted() -> None:
    encounter = {
        "resource": {"resourceType": "Encounter", "status": "finished", "class": {"code": "AMB"}}
    }
    found = ingest(
        _bundle(_patient(), encounter, copy.deepcopy(encounter), _finding("o1", "Patient/p1"))
    )
    assert dict(found.unused) == {"Encounter": 2}
    assert found.skipped == []


def test_a_search_outcome_entry_is_relayed() -> None:
    outcome = {
        "resource": {
            "resourceType": "OperationOutcome",
            "issue": [
                {
                    "severity": "warning",
                    "code": "incomplete",
                    "diagnostics": "Only 100 of 250 results",
                },
                {"severity": "information", "code": "informational"},
            ],
        },
        "search": {"mode": "outcome"},
    }
    found = ingest(_bundle(_patient(), outcome, bundle_type="searchset"))
    assert _skips(found) == [
        (
            "Bundle.entry[1]",
            "Search outcome from the source (the input may be incomplete): "
            "warning incomplete: Only 100 of 250 results; information informational",
        )
    ]
    assert not found.unused


def test_an_operation_outcome_outside_a_search_is_only_unused() -> None:
    outcome = {
        "resource": {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "processing"}],
        }
    }
    found = ingest(_bundle(_patient(), outcome))
    assert dict(found.unused) == {"OperationOutcome": 1}
    assert found.skipped == []


def test_request_only_entries_are_reported() -> None:
    found = ingest(
        _bundle(
            _patient(),
            {"request": {"method": "DELETE", "url": "Observation/x"}},
            bundle_type="transaction",
        )
    )
    assert _skips(found) == [("Bundle.entry[1]", "entry has no resource (request-only entry)")]


# ------------------------------------------------------------------ reading values


def test_observation_values_and_components() -> None:
    absent = _finding("o1", "Patient/p1", valueBoolean=False)
    score = _finding("o2", "Patient/p1", "dn4-total", valueInteger=5)
    unknown = _finding("o3", "Patient/p1", dataAbsentReason={"text": "asked, declined"})
    panel = _finding("o4", "Patient/p1", "startback-total", valueQuantity={"value": 6})
    panel["resource"]["component"] = [
        {"code": {"coding": [{"system": PP, "code": "startback-psychosocial"}]}, "valueInteger": 4}
    ]
    found = ingest(_bundle(_patient(), absent, score, unknown, panel))
    items = {(i.ref, i.codes[0].code): i for i in found.records[0].items}
    assert items[("Observation/o1", "night-pain")].polarity is Polarity.ABSENT
    assert items[("Observation/o2", "dn4-total")].value == 5.0
    # no value: read, so the matcher can report it (value-not-read), but it carries none
    assert items[("Observation/o3", "night-pain")].value_absent == "dataAbsentReason"
    assert items[("Observation/o3", "night-pain")].value is None
    assert items[("Observation/o4", "startback-total")].value == 6.0
    assert items[("Observation/o4", "startback-psychosocial")].value == 4.0


def test_medication_reference_reads_the_medication_entry() -> None:
    medication = {
        "fullUrl": "https://ehr.example/fhir/Medication/m1",
        "resource": {
            "resourceType": "Medication",
            "id": "m1",
            "code": {
                "coding": [
                    {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "187832"}
                ]
            },
        },
    }
    statement = {
        "resource": {
            "resourceType": "MedicationStatement",
            "id": "s1",
            "status": "active",
            "medicationReference": {"reference": "Medication/m1"},
            "subject": {"reference": "Patient/p1"},
        }
    }
    found = ingest(_bundle(_patient(), medication, statement))
    [item] = found.records[0].items
    assert (item.ref, item.codes[0].code) == ("MedicationStatement/s1", "187832")
    assert "Medication" not in found.unused


def test_questionnaire_answers_are_collected_per_patient() -> None:
    response = {
        "resource": {
            "resourceType": "QuestionnaireResponse",
            "id": "q1",
            "questionnaire": "https://painpath.dev/fhir/Questionnaire/dn4",
            "status": "completed",
            "subject": {"reference": "Patient/p1"},
            "authored": "2026-11-20",
            "item": [
                {"linkId": "1", "answer": [{"valueBoolean": True}]},
                {"linkId": "2", "answer": [{"valueInteger": 3}]},
            ],
        }
    }
    found = ingest(_bundle(_patient(), response))
    [answers] = found.answers["Patient/p1"]
    assert answers.ref == "QuestionnaireResponse/q1"
    assert answers.answers == (("1", True), ("2", 3.0))


# ------------------------------------------------------------------ robustness


def _run(pipeline: Pipeline, bundle: Json) -> None:
    """Validate and evaluate like the API: only InputError/EvaluationError may escape."""
    body = orjson.dumps(bundle)
    pipeline.run_body(body, {"asOf": "2026-11-24"}, now=datetime(2026, 11, 24, tzinfo=UTC))


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    children = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    for key, child in children:
        found += _paths(child, (*prefix, key))
    return found


ODD_VALUES: tuple[object, ...] = (5, "x", [], {}, None, True)
SWEEP = [
    CAUDA,
    "nice-sciatica-active-pregabalin-advised-against",
    "surgical-eligible-imaging-concordant",
    "mri-unsafe-device-infection-ct",
    "questionnaire-dn4-4-items-positive",
]


@pytest.mark.parametrize("name", SWEEP[:3])
def test_no_single_odd_value_crashes_the_reader(pipeline: Pipeline, name: str) -> None:
    """Every element of the input replaced, in turn, by each odd JSON value: 400/422 or a result."""
    base = load_case(name)["bundle"]
    crashes = []
    for path in _paths(base):
        for value in ODD_VALUES:
            bundle = copy.deepcopy(base)
            node: Any = bundle
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = value
            try:
                _run(pipeline, bundle)
            except (InputError, EvaluationError):
                continue
            except Exception as exc:  # the point is to catch anything else
                crashes.append((path, value, repr(exc)))
    assert crashes == []


COMPLEX_ELEMENTS = (
    "subject", "code", "medicationReference", "medicationCodeableConcept", "effectivePeriod",
    "valueQuantity", "component", "item", "conclusionCode", "type", "onsetPeriod",
)  # fmt: skip


@pytest.mark.parametrize("name", SWEEP)
def test_non_objects_for_complex_elements_are_input_errors(pipeline: Pipeline, name: str) -> None:
    """Complex elements added with a number, string or array: always a 400, never a crash."""
    base = load_case(name)["bundle"]
    for index in range(len(base["entry"])):
        for element in COMPLEX_ELEMENTS:
            for value in (5, "x", [1]):
                bundle = copy.deepcopy(base)
                bundle["entry"][index]["resource"][element] = value
                with pytest.raises(InputError) as caught:
                    _run(pipeline, bundle)
                assert caught.value.kind == "invalid"


def test_the_reader_reads_what_the_validator_lets_through() -> None:
    """A golden input passes validation unchanged and ingests to its one patient."""
    bundle = case_bundle(CAUDA)
    request = read_triage_request(orjson.dumps(bundle), max_bytes=10**7, max_entries=100)
    found = ingest(request.bundle)
    assert [r.subject for r in found.records] == ["Patient/patient-1"]
    assert sorted(found.ref_types) == [
        "Condition/cond-sciatica",
        "Observation/obs-nrs",
        "Observation/obs-saddle",
        "Observation/obs-slr",
    ]


def test_a_patient_repeated_with_other_content_is_reported_and_the_first_used() -> None:
    adult, child = _patient(), _patient(birthDate="2015-01-01")
    found = ingest(_bundle(adult, child, _finding("o1", "Patient/p1")))
    [record] = found.records
    assert str(record.demographics.birth_date) == "1970-01-01"
    [skip] = found.skipped
    assert skip.expression == "Bundle.entry[1]"
    assert skip.patient == "Patient/p1"
    assert "different content" in skip.reason
    # the same patient sent twice, unchanged (a search with _include may do that): nothing to say
    again = ingest(_bundle(_patient(), _patient(), _finding("o1", "Patient/p1")))
    assert again.skipped == []
    assert [r.subject for r in again.records] == ["Patient/p1"]
