"""Step 2 of a bulk run: evaluate one partition, patient by patient, into a result directory.

A partition file holds whole patients (``partition``), so grouping it in memory is bounded by the
partition size; the export's Medications (few: one per product) are held once per partition and
joined to the patients whose MedicationRequests/Statements refer to them. Each patient's resources
become one collection Bundle that goes through the same validation and evaluation path as
``POST /fhir/$triage`` (``service.app.pipeline``), which fixes every generated id from the input
and the run's ``as_of``, so a re-run writes byte-identical output.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import orjson

from service.app.options import TriageOptions
from service.app.pipeline import Pipeline
from service.bulk.partition import patient_of
from service.domain.assessment import Assessment
from service.domain.errors import EvaluationError
from service.fhir.errors import InputError
from service.fhir.ingest import medication_reference
from service.fhir.outcome import from_error
from service.fhir.types import Json
from service.fhir.validate import validate_bundle

__all__ = [
    "OUTPUT_TYPES", "SUMMARY_HEADER", "PartitionJob", "PatientResult", "evaluate_partition",
    "evaluate_patient", "load_medications", "with_medications",
]  # fmt: skip

SUMMARY_HEADER = ["patient", "in_scope", "pain_type", "certainty", "red_flags", "recommended_stage"]
_MAX_ENTRIES = 100_000
# What $triage emits per patient; OperationOutcome carries the per-patient notes (out of scope...).
OUTPUT_TYPES = (
    "CarePlan", "ServiceRequest", "Observation", "DetectedIssue", "DocumentReference", "Provenance",
    "OperationOutcome",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class PartitionJob:
    """One partition to evaluate, and where its results go."""

    source: Path
    target: Path
    as_of: datetime
    profile: str
    medications: Path | None = None  # the export's Medication lines (``partition.MEDICATIONS``)


def load_medications(path: Path | None) -> dict[str, Json]:
    """``Medication/id`` -> Medication of an export's Medication lines (none when absent)."""
    if path is None or not path.exists():
        return {}
    found: dict[str, Json] = {}
    with path.open("rb") as handle:
        for line in handle:
            resource = orjson.loads(line)
            found[f"Medication/{resource['id']}"] = resource
    return found


def with_medications(resources: list[Json], medications: Mapping[str, Json]) -> list[Json]:
    """The patient's resources and the Medications their ``medicationReference``s name (a Bulk
    Data export keeps Medications in their own file, about no patient), each once."""
    have = {f"Medication/{r.get('id')}" for r in resources if r.get("resourceType") == "Medication"}
    joined = list(resources)
    for resource in resources:
        holder = resource.get("medicationReference")
        reference = holder.get("reference") if isinstance(holder, dict) else None
        key = medication_reference(reference) if isinstance(reference, str) else None
        if key is not None and key not in have and key in medications:
            have.add(key)
            joined.append(medications[key])
    return joined


def _patients(source: Path) -> Iterator[tuple[str, list[Json]]]:
    grouped: dict[str, list[Json]] = {}
    with source.open("rb") as handle:
        for line in handle:
            resource = orjson.loads(line)
            grouped.setdefault(str(patient_of(resource)), []).append(resource)
    for patient in sorted(grouped):
        yield patient, grouped[patient]


def _order(resource: Json) -> tuple[bool, str, str]:
    # Patient first, then by type and id: the same Bundle (and ids) however the export was split
    return (
        resource.get("resourceType") != "Patient",
        str(resource.get("resourceType")),
        str(resource.get("id")),
    )


def _summary_row(assessment: Assessment) -> list[str]:
    flags = ";".join(sorted(f.code for f in assessment.red_flags))
    return [
        assessment.subject,
        "true" if assessment.in_scope else "false",
        assessment.value("pain-type") or "",
        assessment.value("certainty") or "",
        flags,
        assessment.value("recommended-stage") or "",
    ]


def _error(patient: str, outcome: Json) -> bytes:
    return orjson.dumps({"patient": f"Patient/{patient}", "outcome": outcome})


def evaluate_partition(pipeline: Pipeline, job: PartitionJob) -> int:
    """Evaluate every patient of ``job.source`` into ``job.target`` (created); patient count."""
    job.target.mkdir(parents=True)
    files: dict[str, BinaryIO] = {
        name: (job.target / f"{name}.ndjson").open("wb") for name in [*OUTPUT_TYPES, "errors"]
    }
    count = 0
    medications = load_medications(job.medications)
    try:
        with (job.target / "summary.csv").open("w", newline="") as summary:
            rows = csv.writer(summary)
            for patient, resources in _patients(job.source):
                count += 1
                joined = with_medications(resources, medications)
                result = evaluate_patient(pipeline, patient, joined, job.as_of, job.profile)
                for name, line in result.lines:
                    files[name].write(line + b"\n")
                rows.writerows(result.rows)
    finally:
        for handle in files.values():
            handle.close()
    return count


@dataclass(frozen=True, slots=True)
class PatientResult:
    """One patient's output: (file name, NDJSON line without newline) pairs and summary rows.

    The file name is a resource type of ``OUTPUT_TYPES`` or ``"errors"``.
    """

    lines: list[tuple[str, bytes]]
    rows: list[list[str]]


def evaluate_patient(
    pipeline: Pipeline, patient: str, resources: list[Json], as_of: datetime, profile: str
) -> PatientResult:
    """Evaluate one patient's resources (any order) as ``$triage`` would; never raises on input."""
    bundle: Json = {"resourceType": "Bundle", "type": "collection"}
    bundle["entry"] = [{"resource": r} for r in sorted(resources, key=_order)]
    try:
        check = validate_bundle(
            bundle,
            max_entries=_MAX_ENTRIES,
            relevant=pipeline.relevance,
            max_depth=pipeline.limits.max_depth,
        )
        result = pipeline.evaluate(
            bundle,
            TriageOptions(as_of, profile),
            selected=check.selected,
            warnings=check.warnings,
        )
    except InputError as exc:
        return PatientResult([("errors", _error(patient, from_error(exc)))], [])
    except EvaluationError as exc:
        error = orjson.dumps({"patient": f"Patient/{patient}", "error": str(exc)})
        return PatientResult([("errors", error)], [])
    lines = [
        (entry["resource"]["resourceType"], orjson.dumps(entry["resource"]))
        for entry in result.bundle.get("entry", ())
    ]
    return PatientResult(lines, [_summary_row(a) for a in result.assessments])
