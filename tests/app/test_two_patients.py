"""Two patients in one Bundle, one of them out of scope: the header, the explanation and the CLI
say who each is and what each gets, as the record gives it."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from fhir_testkit import AS_OF, Json, load_case

from service.app.pipeline import Pipeline
from service.app.view import trace_view
from service.cli.main import main

NOW = datetime(2026, 11, 24, tzinfo=UTC)


def _two_patients() -> Json:
    """The cauda-equina case's patient, named by HumanName.text, beside a 15-year-old."""
    adult = load_case("cauda-equina-saddle-anaesthesia")["bundle"]
    child = copy.deepcopy(load_case("age-15-out-of-scope")["bundle"])
    for entry in child["entry"]:  # a second patient: its own ids and references
        resource = entry["resource"]
        resource["id"] = f"child-{resource['id']}"
        if "subject" in resource:
            resource["subject"] = {"reference": "Patient/child-patient-1"}
        entry.pop("fullUrl", None)
    bundle: Json = copy.deepcopy(adult)
    patient = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    patient["name"] = [{"use": "official", "text": "Ana Maria Silva", "family": "Silva"}]
    patient["identifier"] = [
        {"system": "https://ehr.example.org/old"},  # no value: not shown
        {"type": {"text": "NHS number"}, "system": "https://fhir.nhs.uk/Id/nhs-number",
         "value": "9434765919"},
    ]  # fmt: skip
    bundle["entry"] += child["entry"]
    return bundle


def test_each_patient_is_named_as_the_record_names_them(pipeline: Pipeline) -> None:
    result = pipeline.run_body(orjson.dumps(_two_patients()), {"asOf": AS_OF}, now=NOW)
    view = trace_view(pipeline, result)
    people = {p["subject"]: p for p in view["patients"]}
    adult = next(p for p in people.values() if p["inScope"])
    child = next(p for p in people.values() if not p["inScope"])
    assert adult["person"]["name"] == "Ana Maria Silva"  # the HumanName's text, as given
    assert adult["person"]["identifiers"] == [
        {
            "label": "NHS number",
            "value": "9434765919",
            "system": "https://fhir.nhs.uk/Id/nhs-number",
        }
    ]
    assert adult["explanation"] is not None
    assert child["explanation"] is None  # out of scope: nothing to explain
    documents = [
        e["resource"] for e in result.bundle["entry"]
        if e["resource"]["resourceType"] == "DocumentReference"
    ]  # fmt: skip
    assert len(documents) == 1  # the adult's explanation only


def test_cli_explanation_covers_each_patient(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "two.json"
    path.write_text(json.dumps(_two_patients()))
    assert main(["explain", str(path), "--as-of", AS_OF, "--for-patient"]) == 0
    out = capsys.readouterr().out
    assert out.count("Your back pain: what we found and what happens next") == 1
    assert "outside PainPath's scope, no explanation." in " ".join(out.split())
    assert "\n\n" in out  # the two patients are apart


def test_the_emitter_explains_no_patient_out_of_scope(pipeline: Pipeline) -> None:
    from service.fhir.emit import Emitter

    result = pipeline.run_body(orjson.dumps(_two_patients()), {"asOf": AS_OF}, now=NOW)
    emitter = Emitter(pipeline.kb, "0" * 64, result.found.ref_types)
    out_of_scope = next(a for a in result.assessments if not a.in_scope)
    in_scope = next(a for a in result.assessments if a.in_scope)
    assert emitter.explanation(out_of_scope, "urn:uuid:plan") is None
    assert emitter.explanation(in_scope, "urn:uuid:plan") is not None
