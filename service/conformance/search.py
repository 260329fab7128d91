"""Searches of the conformance resources (``GET /fhir/{type}``): the searchset Bundle PainPath
answers, with the result parameters a FHIR client relies on (https://hl7.org/fhir/R4/search.html).

- ``url`` (``url|version``) and ``_id`` select; ``_count`` pages (with ``_offset``, PainPath's own
  paging cursor, carried in the ``next``/``previous`` links); ``_summary=count`` gives the total
  only, ``_summary=true`` the summary elements PainPath can name (``id``, ``meta``, ``url``,
  ``version``, ``name``, ``title``, ``status``); ``_elements`` keeps the listed top-level elements
  (and ``resourceType``, ``id``, ``meta``), tagged SUBSETTED as R4 asks.
- Any other parameter is not silently dropped: it is reported in an OperationOutcome entry
  (``search.mode`` ``outcome``) and ignored, or, with ``Prefer: handling=strict``, refused with a
  400 (https://hl7.org/fhir/R4/search.html#errors).

Pure: the route passes the query as (name, value) pairs and the base URL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from service.fhir.errors import InputError
from service.fhir.request import GENERAL_PARAMETERS
from service.fhir.types import Json

__all__ = ["SUPPORTED", "searchset"]

# with FHIR's general parameters, which every operation accepts (_pretty changes nothing in JSON)
SUPPORTED = ("url", "_id", "_count", "_offset", "_summary", "_elements", *GENERAL_PARAMETERS)
_SUMMARY_ELEMENTS = ("resourceType", "id", "meta", "url", "version", "name", "title", "status")
_SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
    "display": "subsetted",
}
_MAX_COUNT = 1000


@dataclass(frozen=True, slots=True)
class _Query:
    url: str | None
    ids: frozenset[str] | None
    count: int | None
    offset: int
    summary: str | None
    elements: tuple[str, ...] | None
    unsupported: tuple[str, ...]


def _integer(name: str, value: str, low: int, high: int) -> int:
    if not value.isdigit() or not low <= int(value) <= high:
        raise InputError.one("invalid", f"{name} must be an integer from {low} to {high}", name)
    return int(value)


def _read(params: Sequence[tuple[str, str]], *, strict: bool) -> _Query:
    values: dict[str, str] = {}
    unsupported: list[str] = []
    for name, value in params:
        if name not in SUPPORTED:
            unsupported.append(name)
        elif name in values:
            raise InputError.one("invalid", f"{name} is repeated", name)
        else:
            values[name] = value
    if unsupported and strict:
        raise InputError.one(
            "invalid",  # 400 (R4 search.html#errors); not-supported is the 415 of media types
            f"Search parameter(s) not supported here: {', '.join(sorted(set(unsupported)))}; "
            f"supported: {', '.join(SUPPORTED)}",
            unsupported[0],
        )
    summary = values.get("_summary")
    if summary is not None and summary not in ("true", "false", "count"):
        raise InputError.one("invalid", "_summary must be true, false or count", "_summary")
    elements = values.get("_elements")
    return _Query(
        url=values.get("url"),
        ids=frozenset(values["_id"].split(",")) if "_id" in values else None,
        count=_integer("_count", values["_count"], 0, _MAX_COUNT) if "_count" in values else None,
        offset=_integer("_offset", values.get("_offset", "0"), 0, 10**9),
        summary=summary,
        elements=tuple(e.strip() for e in elements.split(",") if e.strip()) if elements else None,
        unsupported=tuple(sorted(set(unsupported))),
    )


def _shaped(resource: Json, query: _Query) -> Json:
    keep: Sequence[str] | None = None
    if query.summary == "true":
        keep = _SUMMARY_ELEMENTS
    elif query.elements is not None:
        keep = ("resourceType", "id", "meta", *query.elements)
    if keep is None:
        return resource
    shaped = {k: v for k, v in resource.items() if k in keep}
    meta = dict(shaped.get("meta") or {})
    meta["tag"] = [*meta.get("tag", []), _SUBSETTED]
    shaped["meta"] = meta
    return shaped


def searchset(
    found: list[Json],
    params: Sequence[tuple[str, str]],
    *,
    self_url: str,
    strict: bool = False,
) -> Json:
    """The searchset Bundle for ``found`` (the resources of the type) under ``params``."""
    query = _read(params, strict=strict)
    matched = [r for r in found if query.ids is None or r.get("id") in query.ids]
    bundle: Json = {"resourceType": "Bundle", "type": "searchset", "total": len(matched)}
    kept = [(k, v) for k, v in params if k in SUPPORTED and k != "_offset"]

    def link(relation: str, offset: int) -> Json:
        extra = [("_offset", str(offset))] if offset else []
        query_string = urlencode([*kept, *extra])
        return {
            "relation": relation,
            "url": self_url + (f"?{query_string}" if query_string else ""),
        }

    bundle["link"] = [link("self", query.offset)]
    entries: list[Json] = []
    if query.summary != "count":
        page = matched[query.offset :]
        if query.count is not None:
            if query.offset + query.count < len(matched):
                bundle["link"].append(link("next", query.offset + query.count))
            if query.offset:
                bundle["link"].append(link("previous", max(0, query.offset - query.count)))
            page = page[: query.count]
        entries = [{"resource": _shaped(r, query), "search": {"mode": "match"}} for r in page]
    if query.unsupported:
        entries.append(
            {
                "resource": {
                    "resourceType": "OperationOutcome",
                    "issue": [
                        {
                            "severity": "warning",
                            "code": "not-supported",
                            "diagnostics": f"Search parameter {name!r} is not supported here "
                            "and was ignored (Prefer: handling=strict refuses it)",
                            "expression": [name],
                        }
                        for name in query.unsupported
                    ],
                },
                "search": {"mode": "outcome"},
            }
        )
    if entries:
        bundle["entry"] = entries
    return bundle
