"""Structural validation of incoming FHIR JSON.

Two validators, each doing what it does best:

1. The official R4 JSON Schema (vendored in ``schema/fhir.r4.schema.json``), one compiled
   validator per resource type, applied to the Bundle skeleton and to every entry's resource:
   required elements, value types, date formats, required-binding codes, unknown elements.
   About 0.1 ms per resource (reference/TOOLS.md Q2/Q3).
2. fhir.resources R4B models for the resource types the rules read - it also catches a choice
   element sent twice (``valueQuantity`` and ``valueString``), which the schema misses.

Errors become :class:`~service.fhir.errors.Problem` items with a FHIRPath-style ``expression``
(``Bundle.entry[3].resource.valueQuantity.value``). Specification:
https://hl7.org/fhir/R4/json.html and https://hl7.org/fhir/R4/validation.html.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cache
from importlib import resources
from typing import Any

import orjson
from fhir.resources.R4B import get_fhir_model_class
from jsonschema import Draft6Validator
from pydantic import ValidationError

from service.fhir.errors import InputError, Problem
from service.fhir.ingest import READ_TYPES

__all__ = ["known_resource_type", "validate_bundle", "validate_resource"]

_MAX_PROBLEMS = 20
# R4B models reject a few R4-only spellings; these R4 types are checked by the schema alone.
_MODEL_TYPES = READ_TYPES - {"MedicationStatement"}


@cache
def _definitions() -> dict[str, Any]:
    path = resources.files("service.fhir") / "schema" / "fhir.r4.schema.json"
    schema: dict[str, Any] = orjson.loads(path.read_bytes())
    return schema


@cache
def _resource_types() -> frozenset[str]:
    mapping = _definitions()["discriminator"]["mapping"]
    return frozenset(mapping)


@cache
def _validator(definition: str) -> Draft6Validator:
    return Draft6Validator(
        {"$ref": f"#/definitions/{definition}", "definitions": _definitions()["definitions"]}
    )


def known_resource_type(name: object) -> bool:
    """True for an R4 resource type name."""
    return isinstance(name, str) and name in _resource_types()


def _path(prefix: str, parts: Iterable[Any]) -> str:
    text = prefix
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _schema_problems(resource: dict[str, Any], definition: str, prefix: str) -> list[Problem]:
    problems = []
    for error in _validator(definition).iter_errors(resource):
        if (
            error.validator == "pattern"
            and error.instance is not None
            and not isinstance(error.instance, str)
        ):
            continue  # the matching "type" error says it better
        problems.append(Problem(error.message, _path(prefix, error.absolute_path)))
    return problems


def _model_problems(resource: dict[str, Any], prefix: str) -> list[Problem]:
    rtype = resource["resourceType"]
    if rtype not in _MODEL_TYPES:
        return []
    try:
        get_fhir_model_class(rtype).model_validate(resource)
    except ValidationError as exc:
        return [
            Problem(str(error["msg"]), _path(prefix, error["loc"]))
            for error in exc.errors()
            if error["type"] != "extra_forbidden"  # already reported by the schema
        ]
    return []


def validate_resource(resource: Any, prefix: str) -> list[Problem]:
    """Problems of one resource (empty when valid)."""
    if not isinstance(resource, dict):
        return [Problem("not a FHIR resource (expected a JSON object)", prefix)]
    rtype = resource.get("resourceType")
    if not known_resource_type(rtype):
        return [Problem(f"unknown resourceType {rtype!r}", prefix + ".resourceType")]
    problems = _schema_problems(resource, str(rtype), prefix)
    return problems or _model_problems(resource, prefix)


def validate_bundle(bundle: dict[str, Any], *, max_entries: int) -> None:
    """Raise InputError (400, or 413 over ``max_entries``) unless the Bundle is valid R4."""
    entries = bundle.get("entry", [])
    if isinstance(entries, list) and len(entries) > max_entries:
        raise InputError.one(
            "too-costly",
            f"Bundle has {len(entries)} entries; the limit is {max_entries}",
            "Bundle.entry",
        )
    skeleton = dict(bundle)
    if isinstance(entries, list):
        skeleton["entry"] = [
            {k: v for k, v in e.items() if k != "resource"} if isinstance(e, dict) else e
            for e in entries
        ]
    problems = _schema_problems(skeleton, "Bundle", "Bundle")
    if isinstance(entries, list):
        for index, entry in enumerate(entries):
            if isinstance(entry, dict) and "resource" in entry:
                problems += validate_resource(entry["resource"], f"Bundle.entry[{index}].resource")
            if len(problems) >= _MAX_PROBLEMS:
                break
    _raise_if(problems)


def _raise_if(problems: Sequence[Problem]) -> None:
    if problems:
        raise InputError("invalid", list(problems[:_MAX_PROBLEMS]))
