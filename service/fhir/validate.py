"""Structural validation of incoming FHIR JSON.

Two validators, each doing what it does best:

1. The official R4 JSON Schema (vendored in ``schema/fhir.r4.schema.json``), one compiled
   validator per resource type, applied to the Bundle skeleton and to every entry's resource:
   required elements, value types, date formats, required-binding codes, unknown elements.
   About 0.1 ms per resource (measured with ``make bench``).
2. fhir.resources R4B models for the resource types the rules read - it also catches a choice
   element sent twice (``valueQuantity`` and ``valueString``), which the schema misses.

Errors become :class:`~service.fhir.errors.Problem` items with a FHIRPath-style ``expression``
(``Bundle.entry[3].resource.valueQuantity.value``). Specification:
https://hl7.org/fhir/R4/json.html and https://hl7.org/fhir/R4/validation.html.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import jsonschema_rs
import orjson
from fhir.resources.R4B import get_fhir_model_class
from jsonschema import Draft6Validator
from jsonschema import exceptions as schema_errors
from pydantic import ValidationError

from service.fhir.errors import InputError, Problem
from service.fhir.ingest import READ_TYPES
from service.fhir.limits import DEFAULT_MAX_DEPTH, check_depth
from service.fhir.model_shapes import conforms

__all__ = [
    "STRICT_TYPES", "BundleCheck", "known_resource_type", "repeated_full_urls", "validate_bundle",
    "validate_resource", "without_resources",
]  # fmt: skip

_MAX_PROBLEMS = 20
# R4B models reject a few R4-only spellings; these R4 types are checked by the schema alone.
_MODEL_TYPES = READ_TYPES - {"MedicationStatement"}


@cache
def _definitions() -> dict[str, Any]:
    path = resources.files("service.fhir") / "schema" / "fhir.r4.schema.json"
    schema: dict[str, Any] = orjson.loads(path.read_bytes())
    for definition in schema["definitions"].values():
        _require_object(definition)
    return schema


def _require_object(definition: dict[str, Any]) -> None:
    """Make a complex type (a definition with ``properties``) accept JSON objects only.

    The published R4 schema leaves ``type`` out of complex-type definitions, so ``"entry": [1]``
    or ``"medicationReference": 5`` would pass its ``properties``/``additionalProperties``
    checks (they only constrain objects) and reach the readers as non-objects.
    """
    if "properties" in definition and "type" not in definition:
        definition["type"] = "object"


@cache
def _fast_definitions() -> dict[str, Any]:
    """The definitions jsonschema-rs compiles: the schema's, with two changes.

    jsonschema-rs resolves every ``$ref`` eagerly, and the published schema refers to two
    definitions it lacks (``Resource``, ``integer64``); they are made to fail, which sends such
    input down the Python path. And ``ResourceList`` (``contained``, ``Bundle.entry.resource``)
    is a ``oneOf`` over every resource type: through it each type's validator compiled the whole
    schema, 17-40 MB apiece (a server that met 20 types held 400 MB of validators). Here it only
    requires an object; ``_fast_valid`` checks each contained resource with its own type's
    validator instead, and the Bundle's entries are checked one by one anyway.
    """
    definitions = dict(_definitions()["definitions"])
    text = orjson.dumps(definitions).decode()
    for missing in set(re.findall(r"#/definitions/(\w+)", text)) - set(definitions):
        definitions[missing] = {"not": {}}
    definitions["ResourceList"] = {"type": "object"}
    return definitions


@cache
def _fast_validator(definition: str) -> jsonschema_rs.Draft6Validator:
    """The same schema compiled by jsonschema-rs (Rust, ~6 us per resource): a yes/no pre-check.

    Only a pass is trusted; on any failure the Python validator reports the problems, so messages
    and expressions stay exactly those of ``_schema_problems``. About 1-2 MB and 20 ms to compile
    per type (``_fast_definitions``).
    """
    return jsonschema_rs.Draft6Validator(
        {"$ref": f"#/definitions/{definition}", "definitions": _fast_definitions()}
    )


def _fast_valid(resource: Any) -> bool:
    """True when jsonschema-rs passes the resource and every resource it contains."""
    rtype = resource.get("resourceType") if isinstance(resource, dict) else None
    if not known_resource_type(rtype) or not _fast_validator(str(rtype)).is_valid(resource):
        return False
    contained = resource.get("contained")
    return not isinstance(contained, list) or all(_fast_valid(inner) for inner in contained)


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
    problems: list[Problem] = []
    for error in _validator(definition).iter_errors(resource):
        if (
            error.validator == "pattern"
            and error.instance is not None
            and not isinstance(error.instance, str)
        ):
            continue  # the matching "type" error says it better
        where = _path(prefix, error.absolute_path)
        for problem in _element_problems(error, where) or [Problem(_safe_message(error), where)]:
            if problem not in problems:
                problems.append(problem)
    return problems


_JSON_TYPES = ((bool, "a boolean"), (int | float, "a number"), (str, "a string"),
               (list, "an array"), (dict, "an object"))  # fmt: skip


def _safe_message(error: schema_errors.ValidationError) -> str:
    """The schema error without the offending value: it may be a name, a date of birth or an
    identifier, and error bodies end up in integration engines' logs (no PHI there)."""
    rule, expected, instance = error.validator, error.validator_value, error.instance
    got = next((name for kind, name in _JSON_TYPES if isinstance(instance, kind)), "null")
    if rule == "type":
        return f"Value ({got}) is not of type {expected!r}"
    if rule == "enum" and isinstance(expected, list):
        shown = ", ".join(repr(v) for v in expected[:12]) + (", ..." if len(expected) > 12 else "")
        return f"Value is not one of [{shown}]"
    if rule == "pattern":
        return f"Value does not match {expected!r}"
    if rule in ("const", "minItems", "maxItems", "minLength", "maxLength", "minimum", "maximum"):
        return f"Value ({got}) fails {rule} {expected!r}"
    return f"Value ({got}) is not valid here ({rule})"


def _element_problems(error: schema_errors.ValidationError, where: str) -> list[Problem]:
    """Unknown and missing elements reported at the element itself, not at its parent."""
    instance, schema, names = error.instance, error.schema, error.validator_value
    if not isinstance(instance, dict) or not isinstance(schema, dict):
        return []
    if error.validator == "additionalProperties":
        known = schema.get("properties", {})
        return [
            Problem(f"Unknown element {name!r}", f"{where}.{name}")
            for name in instance
            if name not in known
        ]
    if error.validator == "required" and isinstance(names, list):
        return [
            Problem(f"Missing required element {name!r}", f"{where}.{name}")
            for name in names
            if name not in instance
        ]
    return []


def _model_problems(resource: dict[str, Any], prefix: str) -> list[Problem]:
    rtype = resource["resourceType"]
    if rtype not in _MODEL_TYPES or conforms(resource):  # the walk's yes is the models' yes
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
        return [Problem("unknown resourceType", prefix + ".resourceType")]
    problems = _schema_problems(resource, str(rtype), prefix)
    return problems or _model_problems(resource, prefix)


# Types whose content PainPath reads: an invalid one fails the request (CONTRACT "400"). An
# invalid entry of any other type (Claim, Encounter...) is a warning unless validation is strict.
STRICT_TYPES = READ_TYPES | {"OperationOutcome"}  # a searchset's outcome entry is relayed


@dataclass(frozen=True, slots=True)
class BundleCheck:
    """What validating a Bundle found, when nothing in it refuses the request."""

    # the entries ``relevant`` accepted (so the reader need not ask again); None: not asked
    selected: frozenset[int] | None = None
    # problems of entries of types PainPath does not read (``expression`` into the request)
    warnings: tuple[Problem, ...] = ()


def _selected_model_problems(
    entries: list[Any],
    prefix: str,
    relevant: Callable[[dict[str, Any]], bool],
    skip: Collection[int],
    max_depth: int,
) -> tuple[list[Problem], frozenset[int]]:
    """Model problems of the entries ``relevant`` accepts, and those entries' indexes; those
    of a type the rules read are held to ``max_depth`` first (the models and readers recurse)."""
    problems: list[Problem] = []
    selected: list[int] = []
    for index, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and relevant(resource):
            selected.append(index)
            if resource.get("resourceType") in READ_TYPES:  # what the models and readers walk
                check_depth(resource, max_depth)
            if index not in skip:
                problems += _model_problems(resource, f"{prefix}.entry[{index}].resource")
            if len(problems) >= _MAX_PROBLEMS:
                break
    return problems, frozenset(selected)


def _every_resource(resource: dict[str, Any]) -> bool:
    return True


def without_resources(items: list[Any]) -> list[Any]:
    """The items (Bundle entries, Parameters parts) with their ``resource`` left out: what is
    checked as the container's own structure, each resource being checked on its own."""
    bare: list[Any] = []
    for item in items:  # a C-level copy and pop: ~3x a comprehension over the keys
        if isinstance(item, dict):
            item = item.copy()
            item.pop("resource", None)
        bare.append(item)
    return bare


def _skeleton_problems(
    bundle: dict[str, Any], entries: Any, prefix: str, max_depth: int
) -> list[Problem]:
    """Problems of the Bundle without its entries' resources (always fatal)."""
    skeleton = dict(bundle)
    if isinstance(entries, list):
        skeleton["entry"] = without_resources(entries)
    check_depth(skeleton, max_depth)
    problems = []
    if not _fast_validator("Bundle").is_valid(skeleton):
        problems = _schema_problems(skeleton, "Bundle", prefix)
    if "type" not in bundle:
        problems.append(Problem("Missing required element 'type'", f"{prefix}.type"))
    return problems


def _entry_problems(
    entries: list[Any], prefix: str, *, strict: bool, max_depth: int
) -> tuple[list[Problem], list[Problem], set[int]]:
    """(fatal problems, warnings, indexes of the invalid entries) of the entries' resources.

    jsonschema-rs (~6 us a resource, no recursion limit to protect) passes the valid ones; only
    a resource it fails goes through the Python validator, for messages and expressions, after
    its nesting is held to ``max_depth``.
    """
    problems: list[Problem] = []
    warnings: list[Problem] = []
    invalid: set[int] = set()
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or "resource" not in entry:
            continue
        resource = entry["resource"]
        rtype = resource.get("resourceType") if isinstance(resource, dict) else None
        known = known_resource_type(rtype)
        if known and _fast_valid(resource):
            continue
        check_depth(resource, max_depth)
        found = validate_resource(resource, f"{prefix}.entry[{index}].resource")
        if not found:
            continue
        invalid.add(index)
        if strict or not known or rtype in STRICT_TYPES:
            problems += found
            if len(problems) >= _MAX_PROBLEMS:
                break
        elif len(warnings) < _MAX_PROBLEMS:
            warnings += found[: _MAX_PROBLEMS - len(warnings)]
    return problems, warnings, invalid


def validate_bundle(  # noqa: PLR0913 - the limits and the validation policy, by keyword
    bundle: dict[str, Any],
    *,
    max_entries: int,
    prefix: str = "Bundle",
    relevant: Callable[[dict[str, Any]], bool] | None = None,
    strict: bool = False,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> BundleCheck:
    """Raise InputError (400, or 413 over ``max_entries``) unless the Bundle is valid R4 where
    it matters: its structure and every entry of a type PainPath reads (``STRICT_TYPES``).

    ``max_depth`` is the nesting the Bundle may have (the request's limit less the levels above
    it): it holds the Bundle's structure, every entry the rules may read (``relevant``) and every
    entry the Python validator has to explain, the code that recurses (413 past it). Other
    entries are checked by jsonschema-rs alone, which does not recurse in Python, so a whole
    record is not walked twice.

    An invalid entry of another type (a Claim, an Encounter) is returned as a warning, with its
    expression, and does not fail the request; ``strict`` (``validation=strict``) makes it a
    400 like the rest (CONTRACT "400").

    ``prefix`` is the Bundle's path in the request body (``Parameters.parameter[0].resource``
    when it came wrapped), so every ``expression`` points into what the client sent.

    Every resource is checked against the R4 JSON Schema (jsonschema-rs); the R4B model check
    then runs on the resources ``relevant`` accepts (all, without it): the bulk of a real record
    - vitals, labs, encounters, claims - is checked by the schema alone, like any type the rules
    never read.
    """
    entries = bundle.get("entry", [])
    if isinstance(entries, list) and len(entries) > max_entries:
        raise InputError.one(
            "too-costly",
            f"Bundle has {len(entries)} entries; the limit is {max_entries}",
            f"{prefix}.entry",
        )
    problems = _skeleton_problems(bundle, entries, prefix, max_depth)
    if not isinstance(entries, list):  # the schema has said why (an array of objects)
        raise InputError("invalid", problems[:_MAX_PROBLEMS])
    resource_depth = max_depth - 3  # Bundle, entry list, entry: the resource's own levels
    found, warnings, invalid = _entry_problems(
        entries, prefix, strict=strict, max_depth=resource_depth
    )
    _raise_if(problems + found)
    model, selected = _selected_model_problems(
        entries, prefix, relevant or _every_resource, invalid, resource_depth
    )
    _raise_if(model)
    return BundleCheck(selected if relevant is not None else None, tuple(warnings))


def repeated_full_urls(bundle: dict[str, Any], prefix: str = "Bundle") -> list[Problem]:
    """R4 invariant bdl-7: a fullUrl is unique in a Bundle, or the entries that share it carry
    different ``meta.versionId`` (a history Bundle may repeat it). Two entries under one fullUrl
    would be one resource read twice, or two resources of which a reference reaches one."""
    entries = bundle.get("entry")
    if bundle.get("type") == "history" or not isinstance(entries, list):
        return []
    seen: dict[tuple[str, object], int] = {}
    problems: list[Problem] = []
    for index, entry in enumerate(entries):
        if len(problems) >= _MAX_PROBLEMS:
            break
        url = entry.get("fullUrl") if isinstance(entry, dict) else None
        if not isinstance(url, str):
            continue
        resource = entry.get("resource")
        meta = resource.get("meta") if isinstance(resource, dict) else None
        version = meta.get("versionId") if isinstance(meta, dict) else None
        first = seen.setdefault((url, version), index)
        if first != index:
            problems.append(
                Problem(
                    f"The fullUrl of this entry is that of {prefix}.entry[{first}] (bdl-7: fullUrl "
                    "must be unique in a Bundle, or the entries differ in meta.versionId)",
                    f"{prefix}.entry[{index}].fullUrl",
                )
            )
    return problems


def _raise_if(problems: Sequence[Problem]) -> None:
    if problems:
        raise InputError("invalid", list(problems[:_MAX_PROBLEMS]))
