"""Edges of the page's view and the CLI explanation that the golden cases do not reach: a name
given as text, an identifier without a value, several patients one of them out of scope, and the
emitter asked for the explanation of a patient out of scope."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from io import StringIO

import orjson
from fhir_testkit import CAUDA, OUT_OF_SCOPE, Json, case_bundle, load_case
from rich.console import Console

from service.app.pipeline import Pipeline
from service.app.view import trace_view
from service.cli.render import print_explanation
from service.fhir.emit import Emitter

NOW = datetime(2026, 11, 24, tzinfo=UTC)


def _two_patients() -> Json:
    inside = copy.deepcopy(case_bundle(CAUDA))
    outside = case_bundle(OUT_OF_SCOPE)
    text = orjson_replace(outside, "patient-1", "patient-2")
    patient = inside["entry"][0]["resource"]
    patient["name"] = [{"use": "official", "text": "Ada Example"}]
    patient["identifier"] = [{"system": "https://x"}, *patient.get("identifier", [])]
    entries = inside["entry"] + text["entry"]
    for i, entry in enumerate(entries):
        entry["fullUrl"] = f"urn:uuid:00000000-0000-4000-8000-{i:012d}"
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def orjson_replace(bundle: Json, old: str, new: str) -> Json:
    loaded: Json = orjson.loads(orjson.dumps(bundle).replace(old.encode(), new.encode()))
    return loaded


def test_name_text_identifier_without_value_and_an_out_of_scope_explanation(
    pipeline: Pipeline,
) -> None:
    options = pipeline.options({"asOf": load_case(CAUDA)["asOf"]}, now=NOW)
    result = pipeline.evaluate(_two_patients(), options)
    view = trace_view(pipeline, result)
    first = view["patients"][0]
    assert first["person"]["name"] == "Ada Example"
    assert all(i.get("value") for i in first["person"]["identifiers"])
    out = StringIO()
    print_explanation(Console(file=out, width=200), view)
    assert "outside PainPath's scope, no explanation." in out.getvalue()
    outside = next(a for a in result.assessments if not a.in_scope)
    assert Emitter(pipeline.kb, "digest", result.found.ref_types).explanation(outside, "x") is None
