"""Which patient an entry belongs to, when the Bundle makes that hard (RULES §0: each patient is
evaluated on its own; an entry that cannot be resolved to a patient is skipped and reported,
never merged into another one).

FHIR Bundle reference resolution (https://hl7.org/fhir/R4/bundle.html#references): an absolute
reference names the entry whose fullUrl it is; a relative one resolves against the base of the
referencing entry's own fullUrl. So ``Patient/1`` on two servers is two patients, whose results
must never share an id or a fullUrl; and a subject given only as an identifier names the Patient
that carries it.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from service.app.pipeline import Pipeline
from service.fhir.ingest import Ingested, ingest

Json = dict[str, Any]
SNOMED = "http://snomed.info/sct"
A, B = "http://a.example/fhir", "http://b.example/fhir"
LOW_BACK_PAIN, CAUDA_EQUINA, HYPERTENSION = "279039007", "192970008", "38341003"
MRN = {"system": "https://ehr.example/mrn", "value": "MRN-7"}


def _bundle(*entries: Json) -> Json:
    return {"resourceType": "Bundle", "type": "collection", "entry": list(entries)}


def _patient(
    pid: str = "1", full_url: str | None = None, birth: str = "1970-01-01", **extra: Any
) -> Json:
    resource = {"resourceType": "Patient", "id": pid, "birthDate": birth, **extra}
    return {"fullUrl": full_url, "resource": resource} if full_url else {"resource": resource}


def _condition(
    cid: str, subject: Json, code: str = LOW_BACK_PAIN, full_url: str | None = None
) -> Json:
    resource = {
        "resourceType": "Condition",
        "id": cid,
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active",
                }
            ]
        },
        "code": {"coding": [{"system": SNOMED, "code": code}]},
        "subject": subject,
        "onsetDateTime": "2026-10-01",
    }
    return {"fullUrl": full_url, "resource": resource} if full_url else {"resource": resource}


def _ref(reference: str) -> Json:
    return {"reference": reference}


def _records(found: Ingested) -> dict[str, list[str]]:
    return {r.subject: [item.ref for item in r.items] for r in found.records}


def _skips(found: Ingested) -> list[tuple[str, str | None]]:
    return [(s.expression, s.patient) for s in found.skipped]


# ------------------------------------------------------------------ the same id on two servers


def _two_servers(reference_a: str, reference_b: str) -> Json:
    """Patient/1 on server a (born 1970, cauda equina) and on server b (born 1960; hypertension,
    which no PainPath concept recognises)."""
    return _bundle(
        _patient(full_url=f"{A}/Patient/1"),
        _condition("c1", _ref(reference_a), full_url=f"{A}/Condition/c1"),
        _condition("c2", _ref(reference_a), CAUDA_EQUINA, f"{A}/Condition/c2"),
        _patient(full_url=f"{B}/Patient/1", birth="1960-05-05"),
        _condition("c3", _ref(reference_b), full_url=f"{B}/Condition/c3"),
        _condition("c4", _ref(reference_b), HYPERTENSION, f"{B}/Condition/c4"),
    )


@pytest.mark.parametrize(
    ("reference_a", "reference_b"),
    [
        (f"{A}/Patient/1", f"{B}/Patient/1"),  # absolute: the entry whose fullUrl it is
        ("Patient/1", "Patient/1"),  # relative: against the referencing entry's own base
        (f"{A}/Patient/1/_history/2", "Patient/1/_history/4"),  # a version of the same patient
    ],
)
def test_the_same_id_on_two_servers_is_two_patients(reference_a: str, reference_b: str) -> None:
    found = ingest(_two_servers(reference_a, reference_b))
    assert _records(found) == {
        f"{A}/Patient/1": ["Condition/c1", "Condition/c2"],
        f"{B}/Patient/1": ["Condition/c3", "Condition/c4"],
    }
    born = {r.subject: str(r.demographics.birth_date) for r in found.records}
    assert born == {f"{A}/Patient/1": "1970-01-01", f"{B}/Patient/1": "1960-05-05"}
    assert found.skipped == []


@pytest.mark.parametrize(
    "entry_url",
    [
        None,  # no fullUrl: no base to choose by
        "urn:uuid:5a1e0000-0000-4000-8000-000000000001",  # not a RESTful URL: no base either
        "http://c.example/fhir/Condition/c9",  # a third server: neither patient is there
    ],
)
def test_a_relative_reference_either_patient_could_be_is_skipped(entry_url: str | None) -> None:
    bundle = _two_servers(f"{A}/Patient/1", f"{B}/Patient/1")
    bundle["entry"].append(_condition("c9", _ref("Patient/1"), CAUDA_EQUINA, entry_url))
    found = ingest(bundle)
    assert _skips(found) == [("Bundle.entry[6]", None)]
    assert "could name 2 patients" in found.skipped[0].reason
    assert found.unassigned == [6]
    assert _records(found) == {
        f"{A}/Patient/1": ["Condition/c1", "Condition/c2"],
        f"{B}/Patient/1": ["Condition/c3", "Condition/c4"],
    }


def test_an_absolute_reference_to_a_third_server_is_neither_patient() -> None:
    bundle = _two_servers(f"{A}/Patient/1", f"{B}/Patient/1")
    bundle["entry"].append(_condition("c9", _ref("http://c.example/fhir/Patient/1")))
    found = ingest(bundle)
    assert _skips(found) == [("Bundle.entry[6]", None)]
    assert "does not resolve" in found.skipped[0].reason


def test_a_patient_sent_without_a_base_beside_one_with_the_same_id() -> None:
    """The one without a fullUrl keeps ``Patient/1``; the other is its URL. An absolute
    reference elsewhere can only be the one sent without a base (a Bulk Data line)."""
    bundle = _bundle(
        _patient(),
        _patient(full_url=f"{A}/Patient/1", birth="1960-05-05"),
        _condition("c1", _ref(f"{A}/Patient/1")),
        _condition("c2", _ref(f"{B}/Patient/1")),
        _condition("c3", _ref("Patient/1")),  # either: skipped
    )
    found = ingest(bundle)
    assert _records(found) == {"Patient/1": ["Condition/c2"], f"{A}/Patient/1": ["Condition/c1"]}
    assert _skips(found) == [("Bundle.entry[4]", None)]


def test_a_patient_whose_id_no_other_shares_keeps_its_relative_subject() -> None:
    """What the results refer to a patient by changes only when it must."""
    found = ingest(
        _bundle(
            _patient(full_url=f"{A}/Patient/1"),
            _patient("2", full_url=f"{B}/Patient/2"),
            _condition("c1", _ref("Patient/1")),
            _condition("c2", _ref(f"{B}/Patient/2")),
        )
    )
    assert _records(found) == {"Patient/1": ["Condition/c1"], "Patient/2": ["Condition/c2"]}


def test_patients_known_only_by_reference_on_two_servers_are_two() -> None:
    found = ingest(
        _bundle(
            _condition("c1", _ref(f"{A}/Patient/1")),
            _condition("c2", _ref(f"{B}/Patient/1"), CAUDA_EQUINA),
            _condition("c3", _ref("Patient/1"), full_url=f"{B}/Condition/c3"),
            _condition("c4", _ref("Patient/1")),  # no base: either
        )
    )
    assert _records(found) == {
        f"{A}/Patient/1": ["Condition/c1"],
        f"{B}/Patient/1": ["Condition/c2", "Condition/c3"],
    }
    assert _skips(found) == [("Bundle.entry[3]", None)]
    assert "could name 2 patients" in found.skipped[0].reason


def test_a_patient_known_only_by_reference_on_one_server_stays_one() -> None:
    found = ingest(
        _bundle(
            _condition("c1", _ref(f"{A}/Patient/1")),
            _condition("c2", _ref("Patient/1")),
            _condition("c3", _ref("Patient/1"), full_url=f"{A}/Condition/c3"),
        )
    )
    assert _records(found) == {"Patient/1": ["Condition/c1", "Condition/c2", "Condition/c3"]}


# ------------------------------------------------------------------ a subject by identifier


def test_a_subject_by_identifier_names_the_patient_carrying_it() -> None:
    found = ingest(
        _bundle(
            _patient(full_url=f"{A}/Patient/1", identifier=[MRN]),
            _patient("2", identifier=[{**MRN, "value": "MRN-8"}]),
            _condition("c1", {"identifier": MRN, "display": "Jo Bloggs"}, CAUDA_EQUINA),
        )
    )
    assert _records(found) == {"Patient/1": ["Condition/c1"], "Patient/2": []}
    assert found.skipped == []


@pytest.mark.parametrize(
    ("subject", "why"),
    [
        ({"identifier": {**MRN, "value": "MRN-9"}}, "does not resolve"),  # nobody carries it
        ({"identifier": {"value": "MRN-7"}}, "does not resolve"),  # no system: not an identity
        ({"identifier": {"system": MRN["system"]}}, "does not resolve"),
        ({"reference": "Patient/ghost", "identifier": MRN}, "does not resolve"),  # the reference
        ({"display": "Jo Bloggs"}, "does not resolve"),
    ],
)
def test_a_subject_naming_no_one_patient_is_skipped(subject: Json, why: str) -> None:
    found = ingest(_bundle(_patient(identifier=[MRN]), _condition("c1", subject)))
    assert _skips(found) == [("Bundle.entry[1]", None)]
    assert why in found.skipped[0].reason
    assert _records(found) == {"Patient/1": []}


def test_an_identifier_two_patients_carry_is_skipped() -> None:
    found = ingest(
        _bundle(
            _patient(identifier=[MRN, MRN]),  # listed twice by one patient: still one
            _patient("2", identifier=[MRN]),
            _condition("c1", {"identifier": MRN}),
        )
    )
    assert _skips(found) == [("Bundle.entry[2]", None)]
    assert "carried by 2 patients" in found.skipped[0].reason


def test_no_patient_entry_no_identifier_to_match() -> None:
    found = ingest(_bundle(_condition("c1", _ref("Patient/1")), _condition("c2", _ref(""))))
    assert _records(found) == {"Patient/1": ["Condition/c1"]}
    found = ingest(_bundle(_condition("c1", _ref("Patient/1")), _condition("c2", {"id": "x"})))
    assert _skips(found) == [("Bundle.entry[1]", None)]


# ------------------------------------------------------------------ the results never collide


def _without_patients(bundle: Json) -> Json:
    kept = [e for e in bundle["entry"] if e["resource"]["resourceType"] != "Patient"]
    return _bundle(*kept)


COLLIDING = {
    "absolute": _two_servers(f"{A}/Patient/1", f"{B}/Patient/1"),
    "relative": _two_servers("Patient/1", "Patient/1"),
    "without-patients": _without_patients(_two_servers(f"{A}/Patient/1", f"{B}/Patient/1")),
}


def _run(pipeline: Pipeline, bundle: Json, **options: str) -> Json:
    raw = {"asOf": "2026-11-24", **options}
    now = datetime(2026, 11, 24, 12, tzinfo=UTC)
    return pipeline.run_body(orjson.dumps(bundle), raw, now=now).bundle


def _repeated(values: list[str]) -> list[str]:
    return [value for value, count in Counter(values).items() if count > 1]


@pytest.mark.parametrize("name", sorted(COLLIDING))
@pytest.mark.parametrize("mode", ["collection", "transaction"])
def test_every_full_url_and_id_in_the_result_is_unique(
    pipeline: Pipeline, name: str, mode: str
) -> None:
    """R4 bdl-7: a fullUrl once per Bundle; and a write-back creates each result once."""
    result = _run(
        pipeline, COLLIDING[name], **({"return": "transaction"} if mode != "collection" else {})
    )
    entries = result["entry"]
    assert _repeated([e["fullUrl"] for e in entries]) == []
    assert (
        _repeated([f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in entries]) == []
    )
    if mode == "transaction":
        conditions = [e["request"].get("ifNoneExist") for e in entries]
        assert _repeated([c for c in conditions if c]) == []
        assert (
            _repeated([e["request"]["url"] for e in entries if e["request"]["method"] == "PUT"])
            == []
        )


@pytest.mark.parametrize("name", sorted(COLLIDING))
def test_each_patient_gets_only_its_own_findings(pipeline: Pipeline, name: str) -> None:
    """The cauda equina is patient a's; each outcome names that patient's entries only."""
    entries = COLLIDING[name]["entry"]
    result = _run(pipeline, COLLIDING[name])
    flags = [
        e["resource"]["patient"]["reference"]
        for e in result["entry"]
        if e["resource"]["resourceType"] == "DetectedIssue"
    ]
    assert flags == [f"{A}/Patient/1"]
    named = 0
    for entry in result["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] != "OperationOutcome":
            continue
        for issue in resource["issue"]:
            subject = issue["diagnostics"].split(": ", 1)[0]
            for path in issue.get("expression", []):
                index = int(path.split("[", 1)[1].split("]", 1)[0])
                server = entries[index]["fullUrl"].split("/Condition/")[0]
                assert subject == f"{server}/Patient/1", issue
                named += 1
    assert named  # b's hypertension, in b's outcome only


# ------------------------------------------------------------------ the red-flag screen note


def _notes(result: Json) -> dict[str, list[tuple[str, str]]]:
    """Per OperationOutcome (by the subject its diagnostics name): (detail code, diagnostics)."""
    found: dict[str, list[tuple[str, str]]] = {}
    for entry in result["entry"]:
        if entry["resource"]["resourceType"] == "OperationOutcome":
            for issue in entry["resource"]["issue"]:
                code = issue["details"]["coding"][0]["code"]
                owner = issue["diagnostics"].split(": ", 1)[0]
                owner = owner if owner.startswith(("Patient/", "http")) else "Bundle"
                found.setdefault(owner, []).append((code, issue["diagnostics"]))
    return found


def _codes(notes: list[tuple[str, str]]) -> list[str]:
    return [code for code, _ in notes]


def _vital_sign(subject: Json) -> Json:
    category = "http://terminology.hl7.org/CodeSystem/observation-category"
    return {
        "resource": {
            "resourceType": "Observation",
            "id": "o1",
            "status": "final",
            "category": [{"coding": [{"system": category, "code": "vital-signs"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": subject,
            "valueQuantity": {"value": 72, "unit": "/min"},
        }
    }


def test_a_red_flag_given_by_identifier_is_the_patients(pipeline: Pipeline) -> None:
    bundle = _bundle(
        _patient(identifier=[MRN]),
        _condition("c1", _ref("Patient/1")),
        _condition("c2", {"identifier": MRN}, CAUDA_EQUINA),
    )
    result = _run(pipeline, bundle)
    flags = [e for e in result["entry"] if e["resource"]["resourceType"] == "DetectedIssue"]
    assert [f["resource"]["patient"]["reference"] for f in flags] == ["Patient/1"]
    assert "skipped-entry" not in _codes(_notes(result).get("Bundle", []))


def test_an_entry_no_patient_is_found_for_is_named_in_the_only_patients_screen_note(
    pipeline: Pipeline,
) -> None:
    """RULES §0: "not documented" only when no entry could have been a red-flag finding."""
    bundle = _bundle(
        _patient(identifier=[MRN]),
        _condition("c1", _ref("Patient/1")),
        _condition("c2", {"identifier": {**MRN, "value": "MRN-9"}}, CAUDA_EQUINA),
    )
    notes = _notes(_run(pipeline, bundle))
    assert "red-flag-screen-not-documented" not in _codes(notes["Patient/1"])
    [text] = [t for c, t in notes["Patient/1"] if c == "red-flag-screen-unrecognised-entries"]
    assert f"Condition {SNOMED}|{CAUDA_EQUINA} at Bundle.entry[2]" in text
    assert _codes(notes["Bundle"]) == ["skipped-entry"]  # and still reported where it is


def test_a_vital_sign_no_patient_is_found_for_is_no_red_flag_finding(pipeline: Pipeline) -> None:
    bundle = _bundle(
        _patient(), _condition("c1", _ref("Patient/1")), _vital_sign(_ref("Patient/ghost"))
    )
    notes = _notes(_run(pipeline, bundle))
    assert "red-flag-screen-not-documented" in _codes(notes["Patient/1"])
    assert "red-flag-screen-unrecognised-entries" not in _codes(notes["Patient/1"])


def test_with_two_patients_an_unassigned_entry_is_named_at_bundle_level_only(
    pipeline: Pipeline,
) -> None:
    """It could be either's, or neither's: no patient's note claims it."""
    bundle = _bundle(
        _patient(),
        _patient("2"),
        _condition("c1", _ref("Patient/1")),
        _condition("c2", _ref("Patient/2")),
        _condition("c3", _ref("Patient/ghost"), CAUDA_EQUINA),
    )
    notes = _notes(_run(pipeline, bundle))
    for subject in ("Patient/1", "Patient/2"):
        assert "red-flag-screen-not-documented" in _codes(notes[subject])
        assert "red-flag-screen-unrecognised-entries" not in _codes(notes[subject])
    assert _codes(notes["Bundle"]) == ["skipped-entry"]
