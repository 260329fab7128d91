"""Step 1 of a bulk run: stream the export's NDJSON lines into per-patient-hash partition files.

Input is a Bulk Data ``$export`` directory (one ``<Type>.ndjson`` per resource type) or one mixed
NDJSON file (https://hl7.org/fhir/uv/bulkdata/export.html#file-format). Lines are copied as bytes
into ``parts/NNNN.ndjson`` by a stable hash of the patient id, so every patient's resources land in
one partition and memory never holds more than one line. Medication resources (about no
patient; MedicationRequests refer to them) are copied to ``medications.ndjson`` beside the parts,
and each partition's evaluation joins the ones its patients refer to. Other resources about no
patient, of a type the rules do not read (Practitioner, Organization, Location, Coverage...), are
counted per type in the run summary, never errors (rule set 2027.1); lines that are not JSON
resources, and resources of a type the rules read that name no patient, go to the errors file.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from service.fhir.ingest import READ_TYPES

__all__ = [
    "MEDICATIONS", "Partitioned", "input_files", "is_medication", "not_an_error",
    "partition_count", "partition_export", "patient_of", "rejection",
]  # fmt: skip

# types the rules read that must name their patient (a Medication is read through the entries
# that reference it, and carries no patient of its own)
_READ_WITH_PATIENT = READ_TYPES - {"Medication"}
_BYTES_PER_PARTITION = 4 * 1024 * 1024  # a partition is grouped in memory: keep it small
_MAX_PARTITIONS = 1024


@dataclass(frozen=True, slots=True)
class Partitioned:
    """What partitioning found."""

    partitions: int
    patients: int
    resources: int
    rejected: int
    not_used: dict[str, int] = field(default_factory=dict)  # resource type -> lines
    medications: int = 0  # Medication lines kept for the join (``MEDICATIONS``)


# beside ``parts/``: the export's Medication resources, one per line
MEDICATIONS = "medications.ndjson"


def input_files(source: Path) -> list[Path]:
    """The NDJSON files of an export directory (sorted), or the single file given."""
    if source.is_dir():
        return sorted(p for p in source.iterdir() if p.suffix == ".ndjson")
    return [source]


def partition_count(files: list[Path], *, minimum: int) -> int:
    """Enough partitions that each holds about 4 MiB, and at least one per worker."""
    size = sum(p.stat().st_size for p in files)
    return max(minimum, min(_MAX_PARTITIONS, size // _BYTES_PER_PARTITION + 1))


def patient_of(resource: Any) -> str | None:
    """The patient id a resource belongs to (the Patient itself, or its subject/patient)."""
    if not isinstance(resource, dict):
        return None
    if resource.get("resourceType") == "Patient":
        rid = resource.get("id")
        return rid if isinstance(rid, str) and rid else None
    holder = resource.get("subject") or resource.get("patient")
    reference = holder.get("reference") if isinstance(holder, dict) else None
    if not isinstance(reference, str) or "Patient/" not in reference:
        return None
    rid = reference.split("/_history/")[0].rstrip("/").rsplit("Patient/", 1)[1]
    return rid or None


def bucket(patient: str, partitions: int) -> int:
    """Stable partition number of a patient id (same on every run and every machine)."""
    digest = hashlib.blake2b(patient.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % partitions


def _lines(files: list[Path]) -> Iterator[tuple[str, int, bytes]]:
    for path in files:
        with path.open("rb") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    yield path.name, number, line.rstrip(b"\r\n")


def partition_export(
    files: list[Path], parts: Path, *, partitions: int, errors: BinaryIO
) -> Partitioned:
    """Write ``parts/NNNN.ndjson`` and ``MEDICATIONS`` beside them; rejected lines are reported
    to ``errors`` (NDJSON)."""
    parts.mkdir(parents=True, exist_ok=True)
    patients = resources = rejected = medications = 0
    not_used: Counter[str] = Counter()
    with ExitStack() as stack:
        outs = [
            stack.enter_context((parts / f"{n:04d}.ndjson").open("wb")) for n in range(partitions)
        ]
        catalogue = stack.enter_context((parts.parent / MEDICATIONS).open("wb"))
        for name, number, line in _lines(files):
            try:
                resource = orjson.loads(line)
            except orjson.JSONDecodeError:
                resource = None
            patient = patient_of(resource)
            if patient is None and is_medication(resource):
                medications += 1
                catalogue.write(line + b"\n")
                continue
            if patient is None and not_an_error(resource):
                not_used[str(resource["resourceType"])] += 1
                continue
            if patient is None:
                rejected += 1
                errors.write(rejection(f"{name}:{number}", resource) + b"\n")
                continue
            patients += resource.get("resourceType") == "Patient"
            resources += 1
            outs[bucket(patient, partitions)].write(line + b"\n")
    return Partitioned(
        partitions, patients, resources, rejected, dict(sorted(not_used.items())), medications
    )


def is_medication(resource: Any) -> bool:
    """A Medication with an id (what a ``medicationReference`` can point at)."""
    return (
        isinstance(resource, dict)
        and resource.get("resourceType") == "Medication"
        and isinstance(resource.get("id"), str)
    )


def not_an_error(resource: Any) -> bool:
    """A resource about no patient, of a type the rules never read (counted, not an error)."""
    rtype = resource.get("resourceType") if isinstance(resource, dict) else None
    return isinstance(rtype, str) and rtype not in _READ_WITH_PATIENT


def rejection(source: str, resource: Any) -> bytes:
    """The errors-file line for an input line that names no patient (``source``: where it was)."""
    reason = (
        "line is not a JSON object"
        if not isinstance(resource, dict)
        else "resource names no patient (no Patient id, subject or patient reference)"
    )
    return orjson.dumps({"source": source, "error": reason})
