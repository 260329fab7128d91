"""Deterministic realistic FHIR R4 input for the benchmarks: ``$everything``-like Bundles and
Bulk Data ``$export`` directories (one NDJSON file per resource type).

A patient record is a back-pain episode (the handful of entries the rules read: sciatica or
low back pain Condition, NRS pain score, exam findings) buried in what a real record holds:
vital-sign panels, labs with reference ranges, encounters, immunizations and unrelated chronic
conditions. Everything derives from ``random.Random(seed)``, so the bytes are reproducible.

    python bench/make_bundle.py bundle 2000 > bundle.json
    python bench/make_bundle.py export 10000 OUTDIR [--mixed]
"""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

Json = dict[str, Any]
BASE = "https://ehr.example.org/fhir"
LOINC, SNOMED = "http://loinc.org", "http://snomed.info/sct"
PAINPATH = "https://painpath.dev/fhir/CodeSystem/painpath"
UCUM = "http://unitsofmeasure.org"
_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"

_RELEVANT_CONDITIONS = [("23056005", "Sciatica"), ("279039007", "Low back pain")]
_OTHER_CONDITIONS = [
    ("38341003", "Hypertensive disorder"), ("44054006", "Diabetes mellitus type 2"),
    ("195967001", "Asthma"), ("35489007", "Depressive disorder"), ("55822004", "Hyperlipidemia"),
]  # fmt: skip
_LABS = [
    ("4548-4", "Hemoglobin A1c", "%", 4.0, 6.0), ("2160-0", "Creatinine", "mg/dL", 0.6, 1.2),
    ("718-7", "Hemoglobin", "g/dL", 12.0, 17.0), ("2093-3", "Cholesterol", "mg/dL", 120, 200),
    ("6690-2", "Leukocytes", "10*3/uL", 4.0, 11.0),
]  # fmt: skip
_VACCINES = [("140", "Influenza"), ("208", "COVID-19"), ("115", "Tdap")]


def _cc(system: str, code: str, display: str | None = None) -> Json:
    coding: Json = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding]}


def _day(rng: random.Random, year_from: int = 2019) -> str:
    return f"{rng.randint(year_from, 2026)}-{rng.randint(1, 10):02d}-{rng.randint(1, 28):02d}"


def _moment(rng: random.Random) -> str:
    return f"{_day(rng)}T{rng.randint(7, 18):02d}:{rng.choice(['00', '15', '30'])}:00+01:00"


def _patient(pid: str, rng: random.Random) -> Json:
    return {
        "resourceType": "Patient", "id": pid,
        "identifier": [{"system": f"{BASE}/mrn", "value": f"MRN-{pid}"}],
        "name": [{"family": f"Family{rng.randint(1, 999)}", "given": ["Alex"]}],
        "gender": rng.choice(["female", "male"]),
        "birthDate": f"{rng.randint(1940, 2005)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
    }  # fmt: skip


def _obs(pid: str, oid: str, code: Json, category: str, rng: random.Random, **value: Any) -> Json:
    return {
        "resourceType": "Observation", "id": oid, "status": "final",
        "category": [_cc(_CATEGORY, category)], "code": code,
        "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": _moment(rng), **value,
    }  # fmt: skip


def _condition(pid: str, cid: str, code: str, display: str, rng: random.Random) -> Json:
    return {
        "resourceType": "Condition", "id": cid,
        "clinicalStatus": _cc("http://terminology.hl7.org/CodeSystem/condition-clinical", "active"),
        "verificationStatus": _cc(
            "http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed"
        ),
        "code": _cc(SNOMED, code, display), "subject": {"reference": f"Patient/{pid}"},
        "onsetDateTime": "2026-11-10T10:00:00+01:00" if code in ("23056005", "279039007")
        else _moment(rng),
        "note": [{"text": "Recorded at the annual review."}],
    }  # fmt: skip


def _relevant(pid: str, rng: random.Random) -> list[Json]:
    code, display = rng.choice(_RELEVANT_CONDITIONS)
    nrs = _obs(pid, f"{pid}-nrs", _cc(LOINC, "72514-3", "Pain severity 0-10"), "survey", rng,
               valueQuantity={"value": rng.randint(2, 9), "unit": "{score}", "system": UCUM,
                              "code": "{score}"})  # fmt: skip
    nrs["effectiveDateTime"] = "2026-11-20T09:30:00+01:00"
    slr = _obs(pid, f"{pid}-slr", _cc(PAINPATH, "straight-leg-raise-positive"), "exam", rng,
               valueBoolean=rng.random() < 0.5)  # fmt: skip
    slr["effectiveDateTime"] = "2026-11-20T09:30:00+01:00"
    return [_condition(pid, f"{pid}-back", code, display, rng), nrs, slr]


def _vitals(pid: str, oid: str, rng: random.Random) -> Json:
    panel = _obs(pid, oid, _cc(LOINC, "85354-9", "Blood pressure panel"), "vital-signs", rng)
    panel["component"] = [
        {"code": _cc(LOINC, code, name),
         "valueQuantity": {"value": rng.randint(low, high), "unit": "mm[Hg]", "system": UCUM,
                           "code": "mm[Hg]"}}
        for code, name, low, high in (("8480-6", "Systolic", 100, 170),
                                      ("8462-4", "Diastolic", 60, 100))
    ]  # fmt: skip
    return panel


def _lab(pid: str, oid: str, rng: random.Random) -> Json:
    code, name, unit, low, high = rng.choice(_LABS)
    value = round(rng.uniform(low * 0.8, high * 1.2), 1)
    flag = "H" if value > high else "L" if value < low else "N"
    interpretation = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
    quantity = {"unit": unit, "system": UCUM, "code": unit}
    return _obs(pid, oid, _cc(LOINC, code, name), "laboratory", rng,
                valueQuantity={"value": value, **quantity},
                interpretation=[_cc(interpretation, flag)],
                referenceRange=[{"low": {"value": low, **quantity},
                                 "high": {"value": high, **quantity}}])  # fmt: skip


def _encounter(pid: str, eid: str, rng: random.Random) -> Json:
    start = _moment(rng)
    return {
        "resourceType": "Encounter", "id": eid, "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "type": [_cc(SNOMED, "185349003", "Encounter for check up")],
        "subject": {"reference": f"Patient/{pid}"}, "period": {"start": start, "end": start},
    }  # fmt: skip


def _immunization(pid: str, iid: str, rng: random.Random) -> Json:
    code, name = rng.choice(_VACCINES)
    return {
        "resourceType": "Immunization", "id": iid, "status": "completed",
        "vaccineCode": _cc("http://hl7.org/fhir/sid/cvx", code, name),
        "patient": {"reference": f"Patient/{pid}"}, "occurrenceDateTime": _moment(rng),
        "primarySource": True,
    }  # fmt: skip


def _filler(pid: str, index: int, rng: random.Random) -> Json:
    """One entry the rules do not use (or cannot match): the bulk of a real record."""
    fid = f"{pid}-x{index}"
    kind = rng.random()
    if kind < 0.35:
        return _vitals(pid, fid, rng)
    if kind < 0.65:
        return _lab(pid, fid, rng)
    if kind < 0.80:
        return _encounter(pid, fid, rng)
    if kind < 0.92:
        return _immunization(pid, fid, rng)
    code, display = rng.choice(_OTHER_CONDITIONS)
    return _condition(pid, fid, code, display, rng)


def patient_resources(pid: str, n_entries: int, *, seed: int = 0) -> list[Json]:
    """``n_entries`` resources of one patient (at least the Patient and the 3 relevant ones)."""
    rng = random.Random(f"{seed}:{pid}")
    resources = [_patient(pid, rng), *_relevant(pid, rng)]
    resources += [_filler(pid, i, rng) for i in range(max(0, n_entries - len(resources)))]
    return resources


def make_bundle(n_entries: int, *, seed: int = 0, pid: str = "patient-1") -> Json:
    """A collection Bundle of one patient's record with ``n_entries`` entries."""
    return {
        "resourceType": "Bundle", "type": "collection",
        "entry": [
            {"fullUrl": f"{BASE}/{r['resourceType']}/{r['id']}", "resource": r}
            for r in patient_resources(pid, n_entries, seed=seed)
        ],
    }  # fmt: skip


def iter_export(n_patients: int, *, entries_per_patient: int = 12, seed: int = 0) -> Iterator[Json]:
    """Every resource of ``n_patients`` patients, one patient after the other."""
    for number in range(n_patients):
        yield from patient_resources(f"p{number:07d}", entries_per_patient, seed=seed)


def write_export(out: Path, n_patients: int, *, mixed: bool = False, seed: int = 0) -> int:
    """A Bulk Data ``$export`` directory: ``<Type>.ndjson`` files (or one ``export.ndjson``)."""
    out.mkdir(parents=True, exist_ok=True)
    handles: dict[str, Any] = {}
    count = 0
    try:
        for resource in iter_export(n_patients, seed=seed):
            name = "export" if mixed else resource["resourceType"]
            if name not in handles:
                handles[name] = (out / f"{name}.ndjson").open("wb")
            handles[name].write(orjson.dumps(resource) + b"\n")
            count += 1
    finally:
        for handle in handles.values():
            handle.close()
    return count


def main(argv: list[str]) -> None:
    """Command line: see the module docstring."""
    if argv[:1] == ["bundle"]:
        sys.stdout.buffer.write(orjson.dumps(make_bundle(int(argv[1]))))
    elif argv[:1] == ["export"]:
        count = write_export(Path(argv[2]), int(argv[1]), mixed="--mixed" in argv)
        print(f"{count} resources written to {argv[2]}", file=sys.stderr)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
