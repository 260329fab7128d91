"""CDS Hooks 2.0 requests: the services PainPath offers, request validation, prefetch -> Bundle.

Specification: https://cds-hooks.hl7.org/2.0/ (discovery, HTTP request, prefetch). Pure: no web
framework and no HTTP client; ``service.api.cds_hooks`` fetches what the prefetch lacks through
``service.cds_hooks.prefetch`` and hands everything to :func:`cds_bundle`, whose collection Bundle
goes to ``Engine.triage`` exactly like a ``$triage`` body.

Prefetch semantics (spec "Prefetch"): a key the client chose not to satisfy is omitted (PainPath
fetches it from ``fhirServer``); ``null`` means no data; an OperationOutcome value is an error on
the client's side (fetched again); a searchset with a ``next`` link is completed from the server.

fhirServer trust (:func:`fhir_server_allowed`, :func:`under_fhir_base`): the ``fhirAuthorization``
token may only go to a FHIR base PainPath was configured to call (``cds_fhir_servers``). URLs are
compared after normalisation - scheme and host lowercased, default ports made explicit, a trailing
slash ignored - and a path matches a base only on a segment boundary, so
``https://ehr.example.org/fhir`` covers ``…/fhir/`` and ``…/fhir/r4`` but not ``…/fhirx`` nor
``https://ehr.example.org.evil.com/fhir``. URLs with credentials, a malformed port, whitespace,
dot segments or encoded slashes never match (fail closed). What an empty list means is the API's
policy (``service.api.cds_hooks.fhir_server_trusted``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import unquote, urlsplit

import orjson

from service.fhir.errors import InputError, Problem
from service.fhir.ids import ID_RULE, is_fhir_id
from service.fhir.ingest import READ_TYPES
from service.fhir.types import Json
from service.fhir.validate import validate_resource
from service.server.pull import subject_patient_id
from service.server.writeback import is_painpath_result

__all__ = [
    "HOOK_CONTEXT",
    "PREFETCH",
    "PREFETCH_TYPES",
    "SERVICES",
    "CdsBundle",
    "CdsRequest",
    "CdsService",
    "PrefetchValue",
    "Sourced",
    "cds_bundle",
    "discovery",
    "fhir_server_allowed",
    "read_cds_request",
    "read_prefetch",
    "under_fhir_base",
]

_DEFAULT_PORTS = {"http": 80, "https": 443}
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

# key -> (template, resource type); only the recommended subset (read, type search, reference)
PREFETCH: dict[str, str] = {
    "patient": "Patient/{{context.patientId}}",
    "conditions": "Condition?patient={{context.patientId}}",
    "observations": "Observation?patient={{context.patientId}}",
    "procedures": "Procedure?patient={{context.patientId}}",
    "medications": "MedicationRequest?patient={{context.patientId}}",
    "medicationStatements": "MedicationStatement?patient={{context.patientId}}",
    "medicationDispenses": "MedicationDispense?patient={{context.patientId}}",
    "medicationAdministrations": "MedicationAdministration?patient={{context.patientId}}",
    "imagingReports": "DiagnosticReport?patient={{context.patientId}}",
    "devices": "Device?patient={{context.patientId}}",
    "questionnaireResponses": "QuestionnaireResponse?patient={{context.patientId}}",
}
PREFETCH_TYPES: dict[str, str] = {key: t.split("/")[0].split("?")[0] for key, t in PREFETCH.items()}

# hook -> (required context fields, optional context fields)
HOOK_CONTEXT: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "patient-view": (("userId", "patientId"), ("encounterId",)),
    "order-select": (("userId", "patientId", "selections", "draftOrders"), ("encounterId",)),
    "order-sign": (("userId", "patientId", "draftOrders"), ("encounterId",)),
}
ORDER_TYPES = frozenset(
    {"ServiceRequest", "MedicationRequest", "NutritionOrder", "VisionPrescription", "DeviceRequest",
     "CommunicationRequest"}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class CdsService:
    """One entry of the discovery document."""

    id: str
    hook: str
    title: str
    description: str

    def discovery(self) -> Json:
        """The service as the discovery endpoint lists it."""
        return {
            "hook": self.hook,
            "title": self.title,
            "description": self.description,
            "id": self.id,
            "prefetch": dict(PREFETCH),
        }


SERVICES: dict[str, CdsService] = {
    s.id: s
    for s in (
        CdsService(
            "painpath-patient-view",
            "patient-view",
            "PainPath back pain triage",
            "Back pain: pain type (mechanical / neuropathic / mixed), red flags and the "
            "treatment stage the guideline supports, with a proposed CarePlan and ServiceRequests.",
        ),
        CdsService(
            "painpath-order-select",
            "order-select",
            "PainPath back pain order check",
            "Checks the selected lumbar imaging, injection, referral and gabapentinoid orders "
            "against the back pain rules (imaging without indication, epidural for axial pain, "
            "MRI with an MRI-unsafe implant, gabapentinoids for sciatica).",
        ),
        CdsService(
            "painpath-order-sign",
            "order-sign",
            "PainPath back pain order check at signing",
            "The same checks as painpath-order-select on every draft order before signing.",
        ),
    )
}


# the CDS Hooks version these services implement, advertised as a discovery extension (2.0 allows
# reverse-domain-named extensions on the response and on each service)
SPEC_VERSION = "2.0"
SPEC_VERSION_EXTENSION = "dev.painpath.cds-hooks-spec-version"


def discovery() -> Json:
    """The ``GET /cds-services`` document."""
    services = [s.discovery() | {"extension": {SPEC_VERSION_EXTENSION: SPEC_VERSION}}
                for s in SERVICES.values()]  # fmt: skip
    return {"services": services, "extension": {SPEC_VERSION_EXTENSION: SPEC_VERSION}}


@dataclass(frozen=True, slots=True)
class CdsRequest:
    """A validated hook call."""

    hook: str
    hook_instance: str
    patient_id: str
    user_id: str
    fhir_server: str | None = None
    access_token: str | None = field(default=None, repr=False)  # never logged
    selections: tuple[str, ...] = ()
    draft_orders: tuple[Json, ...] = ()
    prefetch: dict[str, Any] = field(default_factory=dict)


def _bad(text: str, where: str) -> InputError:
    return InputError.one("invalid", text, where)


def _string(holder: Json, key: str, where: str, *, required: bool = True) -> str | None:
    value = holder.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _bad(f"{where} is required and must be a non-empty string", where)
    return value


def read_cds_request(body: Any, service: CdsService) -> CdsRequest:
    """Validate a hook request body for ``service``; 400 (InputError ``invalid``) naming the
    offending field otherwise."""
    if not isinstance(body, dict):
        raise _bad("The request body must be a JSON object (a CDS Hooks request)", "$")
    hook = _string(body, "hook", "hook")
    if hook != service.hook:
        raise _bad(f"hook is {hook!r} but {service.id} answers {service.hook!r}", "hook")
    instance = str(_string(body, "hookInstance", "hookInstance"))
    if not _UUID.match(instance):
        raise _bad("hookInstance must be a UUID (CDS Hooks 2.0: one per hook call)", "hookInstance")
    server, token = _fhir_access(body)
    context = body.get("context")
    if not isinstance(context, dict):
        raise _bad("context is required and must be an object", "context")
    patient_id = str(_string(context, "patientId", "context.patientId"))
    if not is_fhir_id(patient_id):
        raise _bad(f"context.patientId must be {ID_RULE}", "context.patientId")
    user_id = str(_string(context, "userId", "context.userId"))
    required, _ = HOOK_CONTEXT[hook]
    selections: tuple[str, ...] = ()
    orders: tuple[Json, ...] = ()
    if "draftOrders" in required:
        orders = _draft_orders(context.get("draftOrders"))
    if "selections" in required:
        selections = _selections(context.get("selections"), orders)
    prefetch = body.get("prefetch", {})
    if not isinstance(prefetch, dict):
        raise _bad("prefetch must be an object of key -> resource (or null)", "prefetch")
    return CdsRequest(
        hook, instance, patient_id, user_id, server, token, selections, orders, prefetch
    )


def _fhir_access(body: Json) -> tuple[str | None, str | None]:
    server = _string(body, "fhirServer", "fhirServer", required=False)
    if server is not None and _scheme(server) not in {"http", "https"}:
        raise _bad("fhirServer must be an http(s) URL", "fhirServer")
    auth = body.get("fhirAuthorization")
    if auth is None:
        return server, None
    if server is None:
        raise _bad("fhirServer is required when fhirAuthorization is present", "fhirServer")
    if not isinstance(auth, dict):
        raise _bad("fhirAuthorization must be an object", "fhirAuthorization")
    token = _string(auth, "access_token", "fhirAuthorization.access_token")
    kind = _string(auth, "token_type", "fhirAuthorization.token_type")
    if str(kind).lower() != "bearer":
        raise _bad("fhirAuthorization.token_type must be 'Bearer'", "fhirAuthorization.token_type")
    return server, token


def _draft_orders(value: Any) -> tuple[Json, ...]:
    where = "context.draftOrders"
    if not isinstance(value, dict) or value.get("resourceType") != "Bundle":
        raise _bad(f"{where} is required and must be a FHIR Bundle", where)
    entries = value.get("entry", [])
    if not isinstance(entries, list):
        raise _bad(f"{where}.entry must be an array", f"{where}.entry")
    orders = []
    problems: list[Problem] = []
    for index, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        path = f"{where}.entry[{index}].resource"
        if not isinstance(resource, dict) or resource.get("resourceType") not in ORDER_TYPES:
            raise _bad(
                f"{path} must be an order resource (ServiceRequest, MedicationRequest…)", path
            )
        if not isinstance(resource.get("id"), str):
            raise _bad(f"{path}.id is required: selections and suggestions refer to it", path)
        problems += validate_resource(resource, path)  # R4, as a prefetch resource is held to
        orders.append(resource)
    if problems:
        raise InputError("invalid", problems[:_MAX_PROBLEMS])
    return tuple(orders)


def _selections(value: Any, orders: tuple[Json, ...]) -> tuple[str, ...]:
    where = "context.selections"
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(f"{where} is required and must be an array of references", where)
    known = {f"{o['resourceType']}/{o['id']}" for o in orders}
    unknown = [v for v in value if v not in known]
    if unknown:
        raise _bad(f"{where} names orders not in draftOrders: {', '.join(unknown)}", where)
    return tuple(value)


def _scheme(url: str) -> str | None:
    try:
        return urlsplit(url).scheme.lower()
    except ValueError:  # e.g. an unbalanced IPv6 bracket
        return None


def _normalised(url: str) -> tuple[str, str, int, str] | None:
    """(scheme, host, port, path without trailing slash), or None for a URL that can never be
    trusted: not http(s), no host, credentials, a bad port, whitespace or control characters, dot
    segments or encoded slashes."""
    if any(c.isspace() or not c.isprintable() for c in url):
        return None  # urlsplit drops tabs and newlines an HTTP client might read otherwise
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS or not parts.hostname or "@" in parts.netloc:
            return None
        port = parts.port or _DEFAULT_PORTS[scheme]
    except ValueError:  # a malformed port or IPv6 literal
        return None
    path = parts.path
    lowered = path.lower()
    if "\\" in path or "%2f" in lowered or "%5c" in lowered:
        return None
    if any(unquote(segment) in {".", ".."} for segment in path.split("/")):
        return None
    return scheme, parts.hostname.lower(), port, path.rstrip("/")


def under_fhir_base(url: str, base: str) -> bool:
    """Whether ``url`` is ``base`` or lies under it on a path boundary (same scheme, host and
    port); ``url`` may carry a query (a search or a next link)."""
    target, home = _normalised(url), _normalised(base)
    if target is None or home is None or target[:3] != home[:3]:
        return False
    return target[3] == home[3] or target[3].startswith(home[3] + "/")


def fhir_server_allowed(fhir_server: str, bases: Iterable[str]) -> bool:
    """Whether a request's ``fhirServer`` (a base URL: no query or fragment) is one of ``bases``
    or under one of them."""
    if "?" in fhir_server or "#" in fhir_server:
        return False
    return any(under_fhir_base(fhir_server, base) for base in bases)


@dataclass(frozen=True, slots=True)
class Sourced:
    """A resource and where it came from: its path in the request
    (``prefetch.conditions.entry[0].resource``, ``prefetch.patient``) or, for one PainPath read
    from ``fhirServer``, ``fhirServer.<key>[i]`` (``sent`` false)."""

    resource: Json
    where: str
    sent: bool = True


@dataclass(frozen=True, slots=True)
class PrefetchValue:
    """What one prefetch key supplied: its resources, and a next page still to read."""

    resources: tuple[Sourced, ...]
    next_url: str | None = None


def read_prefetch(request: CdsRequest) -> tuple[dict[str, PrefetchValue], list[str]]:
    """(usable prefetch values, keys to fetch from ``fhirServer``) for the service's templates.

    Omitted keys and OperationOutcome values are to be fetched; ``null`` is no data.
    """
    usable: dict[str, PrefetchValue] = {}
    missing: list[str] = []
    for key in PREFETCH:
        if key not in request.prefetch:
            missing.append(key)
            continue
        value = request.prefetch[key]
        where = f"prefetch.{key}"
        if value is None:
            usable[key] = PrefetchValue(())
        elif not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
            raise _bad(f"{where} must be a FHIR resource or null", where)
        elif value["resourceType"] == "OperationOutcome":
            missing.append(key)
        elif value["resourceType"] == "Bundle":
            usable[key] = _from_bundle(where, value)
        else:
            usable[key] = PrefetchValue((Sourced(value, where),))
    return usable, missing


def _from_bundle(where: str, bundle: Json) -> PrefetchValue:
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        raise _bad(f"{where}.entry must be an array", f"{where}.entry")
    found = []
    for index, entry in enumerate(entries):
        path = f"{where}.entry[{index}].resource"
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            raise _bad(f"{path} is required and must be a FHIR resource", path)
        if (entry.get("search") or {}).get("mode") != "outcome":
            found.append(Sourced(resource, path))
    links = bundle.get("link", [])
    nxt = next(
        (
            str(link["url"])
            for link in (links if isinstance(links, list) else [])
            if isinstance(link, dict) and link.get("relation") == "next" and link.get("url")
        ),
        None,
    )
    return PrefetchValue(tuple(found), nxt)


_MAX_PROBLEMS = 20
_PATIENT_HOLDER = {"Device": "patient"}  # where a type names its patient, if not ``subject``


def _patient_problem(item: Sourced, patient_id: str) -> Problem | None:
    """Why a resource the caller sent is not about ``context.patientId`` (None when it is, or
    when it names no patient and PainPath does not read its type, or it is a Medication)."""
    resource = item.resource
    rtype = resource.get("resourceType")
    if rtype == "Medication":
        return None
    if rtype == "Patient":
        if resource.get("id") in (None, patient_id):
            return None
        return Problem(
            "This Patient is not the one the hook is about: its id differs from "
            "context.patientId (the prefetch is about the context patient only)",
            f"{item.where}.id",
        )
    named = subject_patient_id(resource)
    if named == patient_id or (named is None and rtype not in READ_TYPES):
        return None
    holder = next(
        (k for k in ("subject", "patient") if k in resource),
        _PATIENT_HOLDER.get(str(rtype), "subject"),
    )
    what = "another patient than" if named else "no patient as Patient/<id>; it must name"
    return Problem(
        f"This {rtype} names {what} context.patientId (the prefetch is about the context "
        "patient only)",
        f"{item.where}.{holder}",
    )


def _about(resource: Json, patient_id: str) -> bool:
    """Whether a resource read from fhirServer is about the patient (a search by patient
    returns nothing else; anything else is left out)."""
    rtype = resource.get("resourceType")
    if rtype == "Medication":
        return True
    if rtype == "Patient":
        return resource.get("id") == patient_id
    return subject_patient_id(resource) == patient_id


def _content_key(resource: Json) -> str:
    """A name for a resource without id, from its content: the same whatever the prefetch order,
    and the same for two identical copies."""
    return hashlib.sha256(orjson.dumps(resource, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(frozen=True, slots=True)
class CdsBundle:
    """The collection Bundle to evaluate, and where each entry's resource came from (entry index
    -> :attr:`Sourced.where`), so that a problem is named by its path in the request."""

    bundle: Json
    paths: tuple[str, ...]

    def in_request(self, problems: Iterable[Problem]) -> list[Problem]:
        """``problems`` of ``validate_bundle(bundle, prefix="Bundle")`` with each expression
        into an entry turned into the resource's path in the request."""
        return [replace(p, expression=self._path(p.expression)) for p in problems]

    def _path(self, expression: str | None) -> str | None:
        """An entry's path in the request; a problem of the Bundle PainPath built itself (no
        entry) is named ``prefetch``, or keeps no expression when it had none."""
        found = _ENTRY.match(expression or "")
        if found is not None:
            return self.paths[int(found[1])] + found[2]
        return expression and "prefetch"


_ENTRY = re.compile(r"^Bundle\.entry\[(\d+)\]\.resource(.*)$")


def cds_bundle(patient_id: str, fhir_server: str | None, resources: Sequence[Sourced]) -> CdsBundle:
    """The collection Bundle to evaluate: the patient's resources, deduplicated and sorted (so the
    digest, and the result ids, do not depend on prefetch order).

    Everything the caller sent is used or refused: a resource about another patient than
    ``context.patientId`` (or a record resource naming no patient) is a 400 naming its prefetch
    key and entry. A resource without ``id`` - a hand-built prefetch - is used without a fullUrl,
    so it gets the Bundle-local name ``$triage`` gives such entries; a Patient without ``id`` is
    the context patient (every prefetch template is about it). PainPath's own earlier results
    are left out (they are its output, not evidence), and so are resources ``fhirServer``
    returned about another patient.
    """
    problems = [
        p
        for item in resources
        if item.sent and not is_painpath_result(item.resource)
        for p in [_patient_problem(item, patient_id)]
        if p is not None
    ]
    if problems:
        raise InputError("invalid", problems[:_MAX_PROBLEMS])
    kept: dict[tuple[str, str, str], Sourced] = {}
    for item in resources:
        resource = item.resource
        if is_painpath_result(resource) or not (item.sent or _about(resource, patient_id)):
            continue
        rtype, rid = str(resource["resourceType"]), resource.get("id")
        if rtype == "Patient" and rid is None:
            item = replace(item, resource={"resourceType": rtype, "id": patient_id, **resource})
            rid = patient_id
        key = (rtype, rid, "") if isinstance(rid, str) else (rtype, "", _content_key(resource))
        kept.setdefault(key, item)
    base = fhir_server.rstrip("/") if fhir_server else None
    order = sorted(kept, key=lambda k: (k[0] != "Patient", k))
    entries = []
    for key in order:
        rtype, rid, _ = key
        entry: Json = {"resource": kept[key].resource}
        if base and rid:  # a resource without id has no URL on the server: no fullUrl
            entry = {"fullUrl": f"{base}/{rtype}/{rid}", **entry}
        entries.append(entry)
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": entries}
    return CdsBundle(bundle, tuple(kept[k].where for k in order))
