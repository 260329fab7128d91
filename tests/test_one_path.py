"""One evaluation path: the same input gives the same result Bundle, ids included, whichever door
it comes through - HTTP $triage (a Bundle, or Parameters wrapping it), /ui/summary, the CLI, the
pipeline itself and bulk - because the digest is computed in one place from the canonical JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from service.app.pipeline import Pipeline
from service.bulk.evaluate import evaluate_patient
from service.cli.main import main

CASES = Path(__file__).parent / "golden" / "cases"
NAMES = ["cauda-equina-saddle-anaesthesia", "med-opioid-benzodiazepine", "trial-43-days-met"]
FHIR = {"Content-Type": "application/fhir+json"}
Json = dict[str, Any]


def _case(name: str) -> Json:
    case: Json = json.loads((CASES / f"{name}.json").read_text())
    return case


@pytest.mark.parametrize("name", NAMES)
def test_every_door_gives_the_same_bundle(
    name: str, client: TestClient, pipeline: Pipeline, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    case = _case(name)
    bundle, as_of = case["bundle"], case["asOf"]
    # reformatted bytes (indentation, key order) are the same input
    body = json.dumps(bundle, indent=2, sort_keys=True).encode()
    direct = pipeline.run_body(orjson.dumps(bundle), {"asOf": as_of}, now=datetime.now(UTC))
    expected = direct.bundle

    http = client.post("/fhir/$triage", content=body, headers=FHIR, params={"asOf": as_of})
    assert http.status_code == 200
    assert http.json() == expected

    parameters = {
        "resourceType": "Parameters",
        "parameter": [{"name": "bundle", "resource": bundle},
                      {"name": "asOf", "valueDateTime": as_of}],
    }  # fmt: skip
    wrapped = client.post("/fhir/$triage", content=orjson.dumps(parameters), headers=FHIR)
    assert wrapped.json() == expected

    summary = client.post("/ui/summary", content=body, headers=FHIR, params={"asOf": as_of})
    assert summary.json()["result"] == expected

    source = tmp_path / "input.json"
    source.write_bytes(body)
    assert main(["triage", str(source), "--as-of", as_of, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == expected


def test_bulk_ids_do_not_depend_on_line_order(pipeline: Pipeline) -> None:
    """bulk builds one Bundle per patient from NDJSON lines in whatever order the export gives
    them; the result (ids included) is the same for any order."""
    case = _case("trial-43-days-met")
    resources = [e["resource"] for e in case["bundle"]["entry"]]
    as_of = datetime.fromisoformat(case["asOf"])
    first = evaluate_patient(pipeline, "patient-1", resources, as_of, "nice-ng59")
    again = evaluate_patient(pipeline, "patient-1", resources[::-1], as_of, "nice-ng59")
    assert first.lines
    assert first.lines == again.lines
