"""Step 2 of a bulk run: evaluate one partition, patient by patient, into a result directory.

A partition file holds whole patients (``partition``), so grouping it in memory is bounded by the
partition size. Each patient's resources become one collection Bundle that goes through the same
validation and engine as ``POST /fhir/$triage``; the input digest (canonical bytes) and the run's
``as_of`` fix every generated id, so a re-run writes byte-identical output.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from service.bulk.partition import patient_of
from service.domain.assessment import Assessment
from service.domain.errors import EvaluationError
from service.fhir.errors import InputError
from service.fhir.outcome import from_error
from service.fhir.triage import Engine, TriageOptions, canonical_bytes
from service.fhir.validate import validate_bundle

__all__ = ["OUTPUT_TYPES", "SUMMARY_HEADER", "PartitionJob", "evaluate_partition"]

Json = dict[str, Any]
SUMMARY_HEADER = ["patient", "in_scope", "pain_type", "certainty", "red_flags", "recommended_stage"]
_MAX_ENTRIES = 100_000
# What $triage emits per patient; OperationOutcome carries the per-patient notes (out of scope...).
OUTPUT_TYPES = (
    "CarePlan", "ServiceRequest", "Observation", "DetectedIssue", "Provenance", "OperationOutcome",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class PartitionJob:
    """One partition to evaluate, and where its results go."""

    source: Path
    target: Path
    as_of: datetime
    profile: str


def _patients(source: Path) -> Iterator[tuple[str, list[Json]]]:
    grouped: dict[str, list[Json]] = {}
    with source.open("rb") as handle:
        for line in handle:
            resource = orjson.loads(line)
            grouped.setdefault(str(patient_of(resource)), []).append(resource)
    for patient in sorted(grouped):
        resources = grouped[patient]
        # Patient first, then by type and id: the same Bundle (and ids) however the export was split
        resources.sort(key=lambda r: (r.get("resourceType") != "Patient", _type_and_id(r)))
        yield patient, resources


def _type_and_id(resource: Json) -> tuple[str, str]:
    return str(resource.get("resourceType")), str(resource.get("id"))


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
    return orjson.dumps({"patient": f"Patient/{patient}", "outcome": outcome}) + b"\n"


def evaluate_partition(engine: Engine, job: PartitionJob) -> int:
    """Evaluate every patient of ``job.source`` into ``job.target`` (created); patient count."""
    job.target.mkdir(parents=True)
    files: dict[str, BinaryIO] = {
        name: (job.target / f"{name}.ndjson").open("wb") for name in [*OUTPUT_TYPES, "errors"]
    }
    count = 0
    try:
        with (job.target / "summary.csv").open("w", newline="") as summary:
            rows = csv.writer(summary)
            for patient, resources in _patients(job.source):
                count += 1
                _evaluate_patient(
                    engine, job, patient=patient, resources=resources, files=files, rows=rows
                )
    finally:
        for handle in files.values():
            handle.close()
    return count


def _evaluate_patient(  # noqa: PLR0913 - the per-partition context, kept explicit
    engine: Engine,
    job: PartitionJob,
    *,
    patient: str,
    resources: list[Json],
    files: dict[str, BinaryIO],
    rows: Any,
) -> None:
    bundle: Json = {"resourceType": "Bundle", "type": "collection"}
    bundle["entry"] = [{"resource": r} for r in resources]
    try:
        validate_bundle(bundle, max_entries=_MAX_ENTRIES, relevant=engine.relevance)
        options = TriageOptions(job.as_of, job.profile)
        seed = canonical_bytes(bundle) + f"|{job.as_of.isoformat()}|{job.profile}".encode()
        result = engine.triage(bundle, options, digest=hashlib.sha256(seed).hexdigest())
    except InputError as exc:
        files["errors"].write(_error(patient, from_error(exc)))
        return
    except EvaluationError as exc:
        files["errors"].write(orjson.dumps({"patient": f"Patient/{patient}", "error": str(exc)}))
        files["errors"].write(b"\n")
        return
    for entry in result.bundle.get("entry", ()):
        resource = entry["resource"]
        files[resource["resourceType"]].write(orjson.dumps(resource) + b"\n")
    for assessment in result.assessments:
        rows.writerow(_summary_row(assessment))
