"""Reading a ``$triage`` request body: content type, size, JSON, Bundle or Parameters.

``read_triage_request`` returns the input Bundle and the options carried in a Parameters body
(``asOf``, ``profile``, ``return``, ``writeback``). Everything wrong with the body becomes an
:class:`InputError` whose ``kind`` the API maps to 400/413/415/422 (docs/interface.md "Errors").
Operation definition: https://hl7.org/fhir/R4/operations.html#request.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from service.fhir.errors import InputError, Problem
from service.fhir.limits import DEFAULT_MAX_DEPTH, check_depth
from service.fhir.validate import (
    BundleCheck,
    known_resource_type,
    repeated_full_urls,
    validate_bundle,
    validate_resource,
    without_resources,
)

__all__ = [
    "ACCEPTED_BUNDLE_TYPES",
    "GENERAL_PARAMETERS",
    "OPTION_VALUES",
    "PATIENT_TRIAGE_OPTIONS",
    "TRIAGE_OPTIONS",
    "VALIDATION_MODES",
    "QueryOptions",
    "Relevant",
    "TriageRequest",
    "check_accept",
    "check_content_type",
    "checked_bundle",
    "checked_parameters",
    "option_value",
    "parse_json",
    "read_patient_parameters",
    "read_query_options",
    "read_triage_request",
    "strict_handling",
    "validation_mode",
]

Relevant = Callable[[dict[str, Any]], bool]
ACCEPTED_BUNDLE_TYPES = ("collection", "transaction", "batch", "searchset", "document")
_JSON_TYPES = {"application/fhir+json", "application/json", "application/json+fhir"}
_ACCEPTABLE = _JSON_TYPES | {"*/*", "application/*"}
_FORMATS = _JSON_TYPES | {"json"}
_FHIR_VERSIONS = {"4.0", "4.0.0", "4.0.1", "4.3", "4.3.0"}  # R4, and R4B (docs/interface.md)
OPTION_VALUES = {
    "asOf": ("valueDateTime", "valueDate", "valueInstant"),
    "profile": ("valueCode", "valueString"),
    "return": ("valueCode", "valueString"),
    "writeback": ("valueBoolean",),
    "validation": ("valueCode", "valueString"),
}
# ``validation``: lenient (default) reports an invalid entry of a type PainPath does not read as
# a warning; strict refuses it with a 400 like any other (CONTRACT "400").
VALIDATION_MODES = ("lenient", "strict")
TRIAGE_OPTIONS = ("asOf", "profile", "return", "validation")  # POST $triage, /ui/summary
PATIENT_TRIAGE_OPTIONS = (*TRIAGE_OPTIONS, "writeback")  # Patient/{id}/$triage
# FHIR's general parameters (https://hl7.org/fhir/R4/http.html#parameters), accepted on every
# operation: ``_format`` is checked by content negotiation, ``_pretty`` asks for whitespace
# that changes nothing in a JSON answer.
GENERAL_PARAMETERS = ("_format", "_pretty")
_PARAMETER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:\-]{0,63}")


@dataclass(frozen=True, slots=True)
class QueryOptions:
    """An operation's options as sent in the query string, and what was not understood."""

    options: dict[str, str | bool]
    # query parameters the operation does not take, accepted under lenient handling and reported
    # in the answer's OperationOutcome (a warning each: nothing sent is silently dropped)
    ignored: tuple[Problem, ...] = ()


@dataclass(frozen=True, slots=True)
class TriageRequest:
    """The Bundle to evaluate and the options sent in the body."""

    bundle: dict[str, Any]
    options: dict[str, str | bool]
    # entries the ``relevant`` test accepted during validation (for ``Engine.triage``)
    selected: frozenset[int] | None = None
    # invalid entries of types PainPath does not read (lenient validation), for the outcome
    warnings: tuple[Problem, ...] = ()


def _media_type(value: str) -> tuple[str, dict[str, str]]:
    """``type/subtype`` in lower case and its parameters (names in lower case)."""
    media, *parts = value.split(";")
    params: dict[str, str] = {}
    for part in parts:
        name, sep, text = part.partition("=")
        if sep:
            params[name.strip().lower()] = text.strip().strip('"')
    return media.strip().lower(), params


def _version_ok(params: dict[str, str]) -> bool:
    version = params.get("fhirversion")
    return version is None or version in _FHIR_VERSIONS


def check_content_type(content_type: str | None) -> None:
    """415 unless the content type is FHIR JSON or JSON (absent is taken as JSON), in UTF-8 (the
    only charset FHIR allows) and, if it names one, of FHIR version R4 (4.0) or R4B (4.3)."""
    if content_type is None or not content_type.strip():
        return
    media, params = _media_type(content_type)
    if media not in _JSON_TYPES:
        raise InputError.one(
            "not-supported",
            "Content-Type is not supported; send application/fhir+json (or application/json)",
        )
    charset = params.get("charset")
    if charset is not None and charset.lower() not in {"utf-8", "utf8"}:
        raise InputError.one(
            "not-supported", "The Content-Type charset is not supported; FHIR JSON is UTF-8"
        )
    if not _version_ok(params):
        raise InputError.one(
            "not-supported",
            "The Content-Type fhirVersion is not supported; PainPath reads R4 (4.0) and R4B (4.3)",
        )


def check_accept(accept: str | None, format_: str | None = None) -> None:
    """406 unless the caller takes what PainPath answers (FHIR JSON, R4): ``_format``, which
    overrides ``Accept`` (FHIR http.html), must name JSON; otherwise ``Accept``, when sent, must
    admit JSON (``*/*`` and ``application/*`` do) with a q above 0 and no other fhirVersion."""
    if format_ is not None and format_.strip():
        # an unencoded "+" in a query string arrives as a space: application/fhir json
        media, params = _media_type(format_.strip().replace(" ", "+"))
        if media not in _FORMATS or not _version_ok(params):
            raise InputError.one(
                "not-acceptable",
                "_format is not supported; PainPath answers application/fhir+json (_format=json)",
            )
        return
    if accept is None or not accept.strip():
        return
    for entry in accept.split(","):
        media, params = _media_type(entry)
        if media in _ACCEPTABLE and _version_ok(params) and _quality(params) > 0:
            return
    raise InputError.one(
        "not-acceptable",
        "Accept admits nothing PainPath answers in; ask for application/fhir+json (FHIR R4)",
    )


def strict_handling(prefer: str | None) -> bool:
    """Whether a ``Prefer`` header asks ``handling=strict`` (https://hl7.org/fhir/R4/http.html#
    prefer): an unknown parameter is then an error instead of being reported and ignored."""
    for preference in (prefer or "").split(","):
        for token in preference.split(";"):
            name, _, value = token.partition("=")
            if name.strip().lower() == "handling" and value.strip().strip('"').lower() == "strict":
                return True
    return False


def read_query_options(
    params: Iterable[tuple[str, str]], names: Collection[str], *, strict: bool
) -> QueryOptions:
    """An operation's options (``names``) from its query string, as ``$triage``, ``$apply``,
    ``$populate`` and ``/ui/summary`` all read them: each at most once (400 when repeated, as a
    repeated Parameters part is); a boolean option is ``true`` or ``false``; other values are
    checked where every option is (``service.app.options``), so an empty one is a 400 there.
    Another parameter is reported (``QueryOptions.ignored``), or refused with ``strict``
    (``Prefer: handling=strict``); ``_format`` and ``_pretty`` are always accepted."""
    options: dict[str, str | bool] = {}
    ignored: list[Problem] = []
    for name, value in params:
        if name in GENERAL_PARAMETERS:
            continue
        if name not in names:
            ignored.append(_not_taken(name, names))
        elif name in options:
            raise InputError.one(
                "invalid", f"Query parameter {name} is repeated; send it once", name
            )
        elif OPTION_VALUES[name] == ("valueBoolean",):
            if value not in ("true", "false"):
                raise InputError.one("invalid", f"{name} must be true or false", name)
            options[name] = value == "true"
        else:
            options[name] = value
    if ignored and strict:
        raise InputError("invalid", ignored)
    return QueryOptions(options, tuple(ignored))


def _not_taken(name: str, names: Collection[str]) -> Problem:
    """The report of a query parameter the operation does not take. Its name is the expression
    when it looks like a parameter name; anything else the caller sent is not repeated."""
    known = ", ".join((*names, *GENERAL_PARAMETERS))
    expression = name if _PARAMETER_NAME.fullmatch(name) else None
    what = "This query parameter" if expression else "A query parameter (its name is not shown)"
    return Problem(
        f"{what} is not a parameter of this operation and was ignored (Prefer: handling=strict "
        f"refuses it); the parameters are {known}",
        expression,
    )


def _quality(params: dict[str, str]) -> float:
    try:
        return float(params.get("q", "1"))
    except ValueError:
        return 0.0


# orjson refuses arrays and objects nested past 1024 levels with this message
# (https://github.com/ijl/orjson#deserialize): a cost, like PAINPATH_MAX_JSON_DEPTH, not bad JSON
_PARSER_DEPTH_ERROR = "depth limit exceeded"
_PARSER_MAX_DEPTH = 1024


def parse_json(body: bytes, *, max_bytes: int, max_depth: int | None = DEFAULT_MAX_DEPTH) -> Any:
    """The parsed body; 413 over the size or nesting limit, 400 when it is not JSON.

    ``max_depth`` None: the caller holds the nesting where it matters (a ``$triage`` body: the
    Bundle's structure and the entries that are read, ``validate_bundle``)."""
    if len(body) > max_bytes:
        raise InputError.one(
            "too-costly", f"Body is {len(body)} bytes; the limit is {max_bytes} bytes"
        )
    if not body.strip():
        raise InputError.one("invalid", "Body is empty; send a FHIR Bundle or Parameters")
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if exc.msg.startswith(_PARSER_DEPTH_ERROR):
            # valid or not further on, the nesting alone is past what is read: its cost
            raise InputError.one(
                "too-costly",
                f"Body nests JSON deeper than {_PARSER_MAX_DEPTH} levels, the most the "
                "service parses (and more than PAINPATH_MAX_JSON_DEPTH allows)",
            ) from exc
        raise InputError.one("invalid", f"Body is not valid JSON: {exc}") from exc
    if max_depth is not None:
        check_depth(parsed, max_depth)
    return parsed


def read_triage_request(  # noqa: PLR0913 - the limits and the validation policy, by keyword
    body: bytes,
    *,
    max_bytes: int,
    max_entries: int,
    max_depth: int = DEFAULT_MAX_DEPTH,
    relevant: Relevant | None = None,
    strict: bool = False,
) -> TriageRequest:
    """Parse and validate a ``$triage`` body (a Bundle, or Parameters wrapping one).

    ``relevant`` (``Engine.relevance``) limits the R4B model check to the resources the rules can
    use; the R4 JSON Schema still checks every entry (``validate_bundle``). ``strict``
    (``validation=strict`` as a query parameter; a Parameters ``validation`` part overrides it)
    refuses an invalid entry of a type PainPath does not read instead of reporting it.
    """
    resource = parse_json(body, max_bytes=max_bytes, max_depth=None)
    if not isinstance(resource, dict) or "resourceType" not in resource:
        raise InputError.one("structure", "Body is not a FHIR resource (no resourceType)")
    rtype = resource["resourceType"]
    if rtype == "Parameters":
        return _from_parameters(
            resource, max_entries=max_entries, relevant=relevant, strict=strict, max_depth=max_depth
        )
    if rtype != "Bundle":
        if known_resource_type(rtype):
            raise InputError.one(
                "processing",
                f"A {rtype} cannot be evaluated: send a Bundle, or Parameters with a bundle part",
                "resourceType",
            )
        raise InputError.one(
            "structure", "Unknown resourceType; send a Bundle, or a Parameters", "resourceType"
        )
    check = checked_bundle(
        resource, max_entries=max_entries, relevant=relevant, strict=strict, max_depth=max_depth
    )
    return TriageRequest(resource, {}, check.selected, check.warnings)


def read_patient_parameters(
    body: bytes, *, max_bytes: int, max_depth: int = DEFAULT_MAX_DEPTH
) -> dict[str, str | bool]:
    """Options of ``Patient/{id}/$triage``: an empty body, or Parameters with ``asOf``,
    ``profile``, ``return`` and ``writeback`` parts (no ``bundle``: the server has the data)."""
    if not body.strip():
        return {}
    resource = parse_json(body, max_bytes=max_bytes, max_depth=max_depth)
    if not isinstance(resource, dict) or resource.get("resourceType") != "Parameters":
        raise InputError.one(
            "processing", "Send an empty body or a Parameters resource", "resourceType"
        )
    problems = validate_resource(resource, "Parameters")
    if problems:
        raise InputError("invalid", problems)
    options: dict[str, str | bool] = {}
    for index, part in enumerate(resource.get("parameter", [])):
        where = f"Parameters.parameter[{index}]"
        name = part.get("name")
        if name not in PATIENT_TRIAGE_OPTIONS:
            raise InputError.one("invalid", _unknown_part(PATIENT_TRIAGE_OPTIONS), where + ".name")
        if name in options:
            raise InputError.one("invalid", f"Parameter {name!r} is repeated", where + ".name")
        options[name] = option_value(part, name, where)
    return options


def checked_bundle(  # noqa: PLR0913 - the limits and the validation policy, by keyword
    bundle: dict[str, Any],
    *,
    max_entries: int,
    prefix: str = "Bundle",
    relevant: Relevant | None = None,
    strict: bool = False,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> BundleCheck:
    check = validate_bundle(
        bundle,
        max_entries=max_entries,
        prefix=prefix,
        relevant=relevant,
        strict=strict,
        max_depth=max_depth,
    )
    repeated = repeated_full_urls(bundle, prefix)
    if repeated:
        raise InputError("invalid", repeated)
    if bundle.get("type") not in ACCEPTED_BUNDLE_TYPES:
        raise InputError.one(
            "processing",
            f"This Bundle type cannot be evaluated; accepted: {', '.join(ACCEPTED_BUNDLE_TYPES)}",
            f"{prefix}.type",
        )
    return check


def checked_parameters(parameters: dict[str, Any], max_depth: int) -> Any:
    """The ``parameter`` parts of a Parameters resource whose own structure (everything but the
    parts' resources, which are checked where they are read) is valid R4 within ``max_depth``;
    400 (or 413 past the depth) otherwise."""
    parts = parameters.get("parameter", [])
    shell = dict(parameters)
    if isinstance(parts, list):
        shell["parameter"] = without_resources(parts)
    check_depth(shell, max_depth)
    problems = validate_resource(shell, "Parameters")
    if problems:
        raise InputError("invalid", problems)
    return parts


def _from_parameters(
    parameters: dict[str, Any],
    *,
    max_entries: int,
    relevant: Relevant | None,
    strict: bool,
    max_depth: int,
) -> TriageRequest:
    parts = checked_parameters(parameters, max_depth)
    bundle: tuple[dict[str, Any], str] | None = None
    options: dict[str, str | bool] = {}
    seen: set[str] = set()
    for index, part in enumerate(parts):
        where = f"Parameters.parameter[{index}]"
        name = part.get("name")
        if name is None:
            raise InputError.one("invalid", "Missing required element 'name'", where + ".name")
        if name != "bundle" and name not in TRIAGE_OPTIONS:  # writeback: Patient/{id}/$triage
            raise InputError.one(
                "invalid", _unknown_part(("bundle", *TRIAGE_OPTIONS)), where + ".name"
            )
        if name in seen:
            raise InputError.one("invalid", f"Parameter {name!r} is repeated", where + ".name")
        seen.add(str(name))
        if name == "bundle":
            bundle = _bundle_part(part, where), where + ".resource"
        else:
            options[name] = option_value(part, name, where)
    if bundle is None:
        raise InputError.one(
            "processing", "Parameters has no 'bundle' part", "Parameters.parameter"
        )
    resource, prefix = bundle
    if "validation" in options:
        strict = options["validation"] == "strict"
    check = checked_bundle(
        resource,
        max_entries=max_entries,
        prefix=prefix,
        relevant=relevant,
        strict=strict,
        max_depth=max_depth - 3,  # Parameters, parameter list, part: the Bundle's levels
    )
    return TriageRequest(resource, options, check.selected, check.warnings)


def _unknown_part(names: Iterable[str]) -> str:
    """The message for a Parameters part this operation does not take (its name, which the
    expression locates, is not repeated)."""
    return f"Unknown parameter; this operation takes {', '.join(names)}"


def _bundle_part(part: dict[str, Any], where: str) -> dict[str, Any]:
    resource = part.get("resource")
    if not isinstance(resource, dict) or resource.get("resourceType") != "Bundle":
        raise InputError.one(
            "invalid", "The 'bundle' part must carry a Bundle", where + ".resource"
        )
    return resource


def validation_mode(value: object, where: str = "validation") -> str:
    """The ``validation`` option checked: ``lenient`` or ``strict`` (400 otherwise)."""
    if value in VALIDATION_MODES:
        return str(value)
    raise InputError.one(
        "invalid", f"validation must be one of {', '.join(VALIDATION_MODES)}", where
    )


def option_value(part: dict[str, Any], name: str, where: str) -> str | bool:
    for key in OPTION_VALUES[name]:
        if key in part:
            value = part[key]
            if name == "validation":
                return validation_mode(value, where)
            return value if isinstance(value, bool) else str(value)
    allowed = " or ".join(OPTION_VALUES[name])
    raise InputError("invalid", [Problem(f"Parameter {name!r} needs {allowed}", where)])
