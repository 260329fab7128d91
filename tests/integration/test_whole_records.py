"""Whole patient records through the running service: every record accepted, nothing silent.

A population of Synthea-shaped records (``bench/make_record.py``: 1,000 to 7,700 entries, 2 to
16 MB, Claims, EOBs and Encounters dominating, SNOMED and RxNorm, drugs inline and by reference)
is posted to ``POST /fhir/$triage`` on PainPath under uvicorn. Every record must be answered 200
with a result Bundle, and every entry of a type PainPath reads must be accounted for: recognised
by a concept (used), reported as not recognised in the patient's OperationOutcome, or reported as
skipped with its reason. The same bytes run in-process give the same result (one evaluation
path), which is where the accounting reads what was recognised.

The counts are written to ``test-artifacts/whole-records.json`` for the release note.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import pytest
from live_servers import serve_app

from bench.make_record import make_record, population
from service.api.app import create_app
from service.app.pipeline import Pipeline, TriageResult
from service.fhir.types import Json
from service.fhir.unrecognised import unrecognised
from service.settings import Settings

AS_OF = "2026-11-24"
NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)
RECORDS = population(12, seed=2027)  # 1,000 .. 7,700 entries, evenly spread
ARTIFACTS = Path(__file__).parents[2] / "test-artifacts"
_COUNT = re.compile(r"(\d+) (\w+) entr(?:y|ies) with ")


@pytest.fixture(scope="module")
def service_url() -> Iterator[str]:
    app = create_app(Settings(_env_file=None))
    with serve_app(app) as url:
        yield url


def _accounting(result: TriageResult) -> Counter[tuple[str, str]]:
    """(type, "recognised" | "not recognised" | "skipped") per entry PainPath reads; fails the
    test for an entry that is none of them, or two."""
    found = result.found
    counts: Counter[tuple[str, str]] = Counter()
    skipped = {skip.expression for skip in found.skipped}
    for assessment in result.assessments:
        groups = unrecognised(found, assessment).groups
        reported = {path.split(".resource")[0] for group in groups for path in group.paths}
        for ref, index in found.read.get(assessment.subject, ()):
            where = f"Bundle.entry[{index}]"
            rtype = found.ref_types[ref]
            used = ref in assessment.recognised
            told = where in reported or where in skipped
            assert used != told, (where, rtype, used, told)
            counts[
                rtype, "recognised" if used else "skipped" if where in skipped else "reported"
            ] += 1
    return counts


def _reported_in(bundle: Json) -> int:
    """Entries the result's OperationOutcomes report as not recognised (from their text)."""
    total = 0
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] != "OperationOutcome":
            continue
        for issue in resource["issue"]:
            codes = {c["code"] for c in issue.get("details", {}).get("coding", [])}
            if "code-not-recognised" in codes:
                found = _COUNT.search(issue["diagnostics"])
                assert found, issue["diagnostics"]
                total += int(found.group(1))
    return total


def test_every_generated_record_is_accepted_and_every_read_entry_used_or_reported(
    service_url: str, pipeline: Pipeline
) -> None:
    totals: Counter[tuple[str, str]] = Counter()
    sizes = []
    with httpx.Client(base_url=service_url, timeout=120) as client:
        for seed, entries in RECORDS:
            record = make_record(entries, seed=seed)
            body = orjson.dumps(record)
            sizes.append(len(body))
            response = client.post(
                "/fhir/$triage",
                content=body,
                params={"asOf": AS_OF},
                headers={"Content-Type": "application/fhir+json"},
            )
            assert response.status_code == 200, (seed, entries, response.text[:400])
            answered = response.json()
            assert answered["resourceType"] == "Bundle"
            local = pipeline.run_body(body, {"asOf": AS_OF}, now=NOW)
            assert answered == local.bundle  # one path: what the accounting reads is what was sent
            counts = _accounting(local)
            assert _reported_in(answered) == sum(
                n for (_, how), n in counts.items() if how == "reported"
            )
            # every MedicationRequest of the record is among the entries accounted for
            requests = sum(
                e["resource"]["resourceType"] == "MedicationRequest" for e in record["entry"]
            )
            assert requests == sum(n for (t, _), n in counts.items() if t == "MedicationRequest")
            totals += counts
            totals["records", "accepted"] += 1
    # the population exercises both sides: drugs PainPath checks and drugs it does not know
    assert totals["MedicationRequest", "recognised"] > 0
    assert totals["MedicationRequest", "reported"] > 0
    assert totals["Condition", "recognised"] > 0
    assert totals["records", "accepted"] == len(RECORDS)
    ARTIFACTS.mkdir(exist_ok=True)
    summary = {
        "records": len(RECORDS),
        "entries": sum(n for _, n in RECORDS),
        "megabytes": round(sum(sizes) / 1e6, 1),
        "counts": {f"{t} {how}": n for (t, how), n in sorted(totals.items()) if t != "records"},
    }
    (ARTIFACTS / "whole-records.json").write_bytes(
        orjson.dumps(summary, option=orjson.OPT_INDENT_2)
    )
