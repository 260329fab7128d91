"""Helpers for the conformance package tests (tests/profiles): the package, the R4 JSON Schema
and the golden outputs. On the pytest pythonpath (``tests/support``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import orjson
from jsonschema import Draft6Validator

from service.app.pipeline import Pipeline

Json = dict[str, Any]

ROOT = Path(__file__).resolve().parents[2]
PROFILES = ROOT / "fhir_profiles"
SAMPLES = ROOT / "samples"
CASES = sorted((ROOT / "tests" / "golden" / "cases").glob("*.json"))
SCHEMA = ROOT / "service" / "fhir" / "schema" / "fhir.r4.schema.json"
PP = "https://painpath.dev/fhir"


def load_package() -> dict[str, Json]:
    """Every resource of ``fhir_profiles/`` by ``Type/id`` (package.json aside)."""
    found = {}
    for path in sorted(PROFILES.rglob("*.json")):
        if path.name != "package.json":
            resource = json.loads(path.read_bytes())
            found[f"{resource['resourceType']}/{resource['id']}"] = resource
    return found


@cache
def _definitions() -> Json:
    loaded: Json = json.loads(SCHEMA.read_bytes())["definitions"]
    return loaded


@cache
def _validator(rtype: str) -> Draft6Validator:
    return Draft6Validator({"$ref": f"#/definitions/{rtype}", "definitions": _definitions()})


def schema_errors(resource: Json) -> list[str]:
    """R4 JSON Schema errors of a resource (the vendored official schema, draft-06)."""
    rtype = resource.get("resourceType", "")
    if rtype not in _definitions():
        return [f"unknown resourceType {rtype!r}"]
    return [
        f"{rtype}.{'.'.join(map(str, e.absolute_path))}: {e.message[:200]}"
        for e in _validator(rtype).iter_errors(resource)
    ]


def golden_output(pipeline: Pipeline, path: Path) -> tuple[Json, Json]:
    """A golden case's input Bundle and the result Bundle, evaluated as the API does."""
    case = orjson.loads(path.read_bytes())
    body = orjson.dumps(case["bundle"])
    raw = {"asOf": case["asOf"], "profile": case.get("profile")}
    result = pipeline.run_body(body, raw, now=datetime(2026, 11, 24, tzinfo=UTC)).bundle
    return case["bundle"], result


def reference_types(*bundles: Json) -> dict[str, str]:
    """fullUrl -> resourceType over the entries of the given Bundles (resolves urn:uuid refs)."""
    return {
        entry["fullUrl"]: entry["resource"]["resourceType"]
        for bundle in bundles
        for entry in bundle.get("entry", [])
        if "fullUrl" in entry and "resource" in entry
    }
