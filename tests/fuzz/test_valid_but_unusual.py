"""Schema-valid but unusual values in the places the reader interprets: quantities (any value,
comparator, unit text, UCUM or other code), onset ages and ranges, deceased flags and dates,
contained medications. Every answer is a 200 Bundle or a 4xx OperationOutcome, never a 5xx, and
the same body gives the same bytes twice."""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson
from fastapi.testclient import TestClient
from fhir_testkit import FHIR_JSON
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

Json = dict[str, Any]
UCUM = "http://unitsofmeasure.org"
UNITS = ["mg/L", "mg/dL", "MG/DL", "g/L", "nmol/L", "h", "min", "d", "wk", "mo", "a", "%",
         "{score}", "", " ", "mm/h", "µg/mL", "1", "10*3/uL"]  # fmt: skip
NUMBERS = st.one_of(
    st.integers(min_value=-(10**15), max_value=10**15),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300),
)
DEATHS = ["2026-11-23", "2026-12-01", "1969", "2026-11-24T10:00:00+01:00", "3000-01-01"]
REFS = ["#med", "#other", "Medication/x"]
TEXT = st.one_of(st.sampled_from(UNITS), st.text(min_size=1, max_size=12).filter(str.strip))


@st.composite
def quantity(draw: st.DrawFn) -> Json:
    q: Json = {"value": draw(NUMBERS)}
    if draw(st.booleans()):
        q["comparator"] = draw(st.sampled_from(["<", "<=", ">=", ">"]))
    if draw(st.booleans()):
        q["unit"] = draw(TEXT)
    if draw(st.booleans()):
        q["system"] = draw(st.sampled_from([UCUM, "urn:oid:2.16.840.1.113883.6.8", "http://x.org"]))
        q["code"] = draw(TEXT)
    return q


@st.composite
def record(draw: st.DrawFn) -> Json:
    patient: Json = {"resourceType": "Patient", "id": "p", "birthDate": "1970-05-05"}
    if draw(st.booleans()):
        patient["deceasedBoolean"] = draw(st.booleans())
    elif draw(st.booleans()):
        patient["deceasedDateTime"] = draw(st.sampled_from(DEATHS))
    loinc = draw(st.sampled_from(["1988-5", "4537-7", "72514-3", "97909-6"]))
    observation = {
        "resourceType": "Observation", "id": "o", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
        "subject": {"reference": "Patient/p"}, "valueQuantity": draw(quantity()),
    }  # fmt: skip
    condition: Json = {
        "resourceType": "Condition", "id": "c", "subject": {"reference": "Patient/p"},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "279039007"}]},
    }  # fmt: skip
    onset = draw(st.sampled_from(["age", "range", "none"]))
    if onset == "age":
        condition["onsetAge"] = draw(quantity())
    elif onset == "range":
        condition["onsetRange"] = {"low": draw(quantity()), "high": draw(quantity())}
    medication = {
        "resourceType": "MedicationStatement", "id": "m", "status": "active",
        "subject": {"reference": "Patient/p"},
        "medicationReference": {"reference": draw(st.sampled_from(REFS))},
        "contained": [{"resourceType": "Medication", "id": "med", "code": {"coding": [
            {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "5640"}]}}],
    }  # fmt: skip
    resources = [patient, observation, condition, medication]
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"resource": r} for r in resources]}  # fmt: skip


@settings(
    max_examples=200,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(bundle=record())
def test_unusual_values_never_5xx_and_stay_deterministic(
    fuzz_client: TestClient, fuzz_cases: Counter[str], bundle: Json
) -> None:
    body = orjson.dumps(bundle)
    params = {"asOf": "2026-11-24T10:00:00+01:00"}
    headers = {"Content-Type": FHIR_JSON}
    first = fuzz_client.post("/fhir/$triage", content=body, params=params, headers=headers)
    assert first.status_code in (200, 400, 422), first.text[:500]
    kind = first.json()["resourceType"]
    assert kind == ("Bundle" if first.status_code == 200 else "OperationOutcome")
    again = fuzz_client.post("/fhir/$triage", content=body, params=params, headers=headers)
    assert again.content == first.content
    fuzz_cases["valid-but-unusual"] += 1
