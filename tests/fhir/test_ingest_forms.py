"""Less common but valid FHIR forms the reader must understand: a medication named by a
``contained`` Medication, and a Condition's onset given as an age (``onsetAge``, ``onsetRange``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from service.domain.model import Code, Item
from service.fhir.ingest import ingest

Json = dict[str, Any]
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
IBUPROFEN = Code(RXNORM, "5640")


def _bundle(*resources: Json, birth: str | None = "1980-06-01") -> Json:
    patient: Json = {"resourceType": "Patient", "id": "p"}
    if birth:
        patient["birthDate"] = birth
    entries = [{"resource": patient}, *({"resource": r} for r in resources)]
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def _items(bundle: Json) -> list[Item]:
    (record,) = ingest(bundle).records
    return list(record.items)


def _statement(reference: str, contained: list[Json] | None = None) -> Json:
    statement: Json = {
        "resourceType": "MedicationStatement", "id": "ms", "status": "active",
        "subject": {"reference": "Patient/p"}, "medicationReference": {"reference": reference},
        "effectiveDateTime": "2026-11-01",
    }  # fmt: skip
    if contained is not None:
        statement["contained"] = contained
    return statement


def _medication(mid: str, code: str = "5640") -> Json:
    return {
        "resourceType": "Medication", "id": mid,
        "code": {"coding": [{"system": RXNORM, "code": code, "display": "ibuprofen"}]},
    }  # fmt: skip


def test_a_contained_medication_gives_the_statement_its_code() -> None:
    (item,) = _items(_bundle(_statement("#med1", [_medication("med1")])))
    assert item.codes == (IBUPROFEN,)


@pytest.mark.parametrize(
    "contained",
    [[], [_medication("other")], [{"resourceType": "Substance", "id": "med1"}]],
    ids=["none", "other-id", "not-a-medication"],
)
def test_an_unresolved_contained_reference_gives_no_code(contained: list[Json]) -> None:
    (item,) = _items(_bundle(_statement("#med1", contained)))
    assert item.codes == ()


def test_a_bundle_medication_still_resolves_by_reference() -> None:
    items = _items(_bundle(_medication("m1"), _statement("Medication/m1")))
    assert [i.codes for i in items] == [(IBUPROFEN,)]


def _condition(**onset: Any) -> Json:
    return {
        "resourceType": "Condition", "id": "c", "subject": {"reference": "Patient/p"},
        "code": {"coding": [{"system": SNOMED, "code": "279039007"}]}, **onset,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("onset", "expected"),
    [
        ({"onsetAge": {"value": 46, "system": UCUM, "code": "a", "unit": "years"}},
         datetime(2026, 6, 1, 12, tzinfo=UTC)),  # 46 Julian years after 1980-06-01 00:00
        ({"onsetAge": {"value": 30, "system": UCUM, "code": "d"}},
         datetime(1980, 7, 1, tzinfo=UTC)),
        ({"onsetRange": {"low": {"value": 2, "system": UCUM, "code": "wk"},
                         "high": {"value": 3, "system": UCUM, "code": "wk"}}},
         datetime(1980, 6, 15, tzinfo=UTC)),
    ],
)  # fmt: skip
def test_onset_age_becomes_a_moment_from_the_birth_date(onset: Json, expected: datetime) -> None:
    (item,) = _items(_bundle(_condition(**onset)))
    assert item.when == expected


@pytest.mark.parametrize(
    ("onset", "birth"),
    [
        ({"onsetAge": {"value": 46, "system": UCUM, "code": "a"}}, None),  # no birth date
        ({"onsetAge": {"value": 46, "unit": "years"}}, "1980-06-01"),  # not a UCUM time code
        ({"onsetAge": {"value": -3, "system": UCUM, "code": "a"}}, "1980-06-01"),
        ({"onsetAge": {"value": 1e9, "system": UCUM, "code": "a"}}, "1980-06-01"),
        ({"onsetString": "since last spring"}, "1980-06-01"),
    ],
)
def test_an_onset_that_cannot_be_placed_stays_unknown(onset: Json, birth: str | None) -> None:
    (item,) = _items(_bundle(_condition(**onset), birth=birth))
    assert item.when is None


def test_an_onset_date_wins_over_an_onset_age() -> None:
    condition = _condition(onsetDateTime="2026-10-01")
    condition["onsetAge"] = {"value": 1, "system": UCUM, "code": "a"}  # invalid together; be safe
    (item,) = _items(_bundle(condition))
    assert item.when == datetime(2026, 10, 1, tzinfo=UTC)


@pytest.mark.parametrize("comparator", ["<", "<=", ">=", ">"])
def test_a_quantity_comparator_is_kept_with_its_value(comparator: str) -> None:
    observation = {
        "resourceType": "Observation", "id": "crp", "status": "final",
        "subject": {"reference": "Patient/p"},
        "code": {"coding": [{"system": "http://loinc.org", "code": "1988-5"}]},
        "valueQuantity": {"value": 5, "comparator": comparator, "system": UCUM, "code": "mg/L"},
    }  # fmt: skip
    (item,) = _items(_bundle(observation))
    assert (item.value, item.comparator, item.unit) == (5, comparator, "mg/L")
