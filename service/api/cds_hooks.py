"""CDS Hooks 2.0 endpoints (https://cds-hooks.hl7.org/2.0/): discovery, the three services and
feedback, sharing the engine and the emitter with ``$triage``.

    GET  /cds-services                    discovery (services and their prefetch templates)
    POST /cds-services/{id}               validate -> prefetch (+ fhirServer fallback) -> collection
                                          Bundle -> Engine.triage -> cards (service.cds_hooks.cards)
    POST /cds-services/{id}/feedback      accepted / overridden counts (no PHI kept)

Client trust (CDS Hooks best practice checklist): the JWT checks of ``service.api.jwt_verify``,
including, when ``cds_tenants`` is non-empty, a ``tenant`` claim on that list (checklist item 4).

fhirServer trust: the ``fhirAuthorization`` token is sent only to a ``fhirServer`` PainPath trusts
(:func:`fhir_server_trusted`): one of ``cds_fhir_servers`` or under one on a path boundary
(``service.cds_hooks.request.fhir_server_allowed``). With the list empty, any fhirServer is trusted
only while CDS client auth is off (loopback development, ``Settings.cds_auth_required`` false);
otherwise none is (fail closed). An untrusted fhirServer is never contacted: a complete prefetch
is evaluated as usual, missing data is a 412 naming the allow-list setting. A prefetch searchset's
``next`` link is rebased on the request's fhirServer and must lie under it, so the token cannot be
steered to another host through the prefetch either.

Status codes: 400 for a bad request body (OperationOutcome naming the field), 401 for a rejected
client JWT (``{"error": "invalid_token", "error_description": …}``), 404 for an unknown service,
412 when data is missing and ``fhirServer`` is absent, untrusted or cannot be read, 500 when
evaluation fails (never an empty 200). ``{"cards": []}`` means there was nothing to say. The
request's ``fhirAuthorization`` token and the client JWT are never logged; ``hookInstance``, the
client's ``tenant`` and an untrusted fhirServer's host are.
"""

from __future__ import annotations

import logging
import re
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, cast
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from service.api.deps import ConformanceDep, PipelineDep
from service.api.jwt_verify import AuthError, JtiCache, JwtVerifier
from service.api.responses import fhir_response
from service.cds_hooks.cards import (
    OVERRIDE_CODES,
    OVERRIDE_SYSTEM,
)
from service.cds_hooks.evaluate import CardLinks, cards_for
from service.cds_hooks.prefetch import fetch_missing
from service.cds_hooks.request import (
    PREFETCH_TYPES,
    SERVICES,
    CdsRequest,
    Sourced,
    discovery,
    fhir_server_allowed,
    read_cds_request,
    read_prefetch,
    under_fhir_base,
)
from service.fhir.errors import InputError
from service.fhir.outcome import issue, operation_outcome
from service.fhir.request import check_content_type, parse_json
from service.fhir.types import Json
from service.server.errors import UpstreamError
from service.server.http import Transport
from service.server.paging import rebase
from service.settings import Settings

__all__ = [
    "CdsState",
    "FeedbackCounters",
    "cds_metrics",
    "fhir_server_trusted",
    "install_cds_hooks",
    "router",
]

log = logging.getLogger("painpath.cds_hooks")
_OUTCOMES = ("accepted", "overridden")
# card and suggestion uuids as PainPath issues them: UUIDv5 (service.fhir.emit.make_id)
_ISSUED_UUID = re.compile(
    r"^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", re.IGNORECASE
)
# outcomeTimestamp: an RFC 3339 date-time (CDS Hooks 2.0), so with seconds and an offset
_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


@dataclass
class FeedbackCounters:
    """Feedback and card counts; keys are service ids, outcomes, reason codes - never PHI."""

    dedupe_size: int = 10_000
    feedback: Counter[tuple[str, str]] = field(default_factory=Counter)
    override_reasons: Counter[tuple[str, str]] = field(default_factory=Counter)
    cards: Counter[tuple[str, str]] = field(default_factory=Counter)
    _seen: OrderedDict[tuple[str, ...], None] = field(default_factory=OrderedDict)

    def record(
        self, service_id: str, card: str, outcome: str, when: str, reason: str | None
    ) -> bool:
        """Count one feedback item; False for a duplicate (the same card, outcome and time)."""
        key = (service_id, card, outcome, when)
        if key in self._seen:
            return False
        self._seen[key] = None
        while len(self._seen) > self.dedupe_size:
            self._seen.popitem(last=False)
        self.feedback[(service_id, outcome)] += 1
        if outcome == "overridden":
            self.override_reasons[(service_id, reason or "none")] += 1
        return True

    def snapshot(self) -> dict[str, dict[str, int]]:
        """Plain counts, e.g. ``{"feedback": {"painpath-patient-view/accepted": 2}, …}``."""
        return {
            name: {"/".join(k): v for k, v in sorted(counter.items())}
            for name, counter in (
                ("feedback", self.feedback),
                ("override_reasons", self.override_reasons),
                ("cards", self.cards),
            )
        }


CDS_ALGORITHMS = ("ES384", "RS384")  # CDS Hooks 2.0 "Trusting CDS Clients"


class CdsAuthError(AuthError):
    """A rejected CDS Hooks client token: 401 ``invalid_token`` (not an OperationOutcome)."""


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class CdsState:
    """What the CDS Hooks routes share, on ``app.state.cds``."""

    settings: Settings
    verifier: JwtVerifier | None
    counters: FeedbackCounters = field(default_factory=FeedbackCounters)
    fhir_transport: Transport | None = None
    clock: Callable[[], datetime] = _now  # tests pin the evaluation date


def cds_metrics(app: FastAPI) -> dict[str, dict[str, int]]:
    """The CDS Hooks counters (for the metrics endpoint of issue 7)."""
    state: CdsState = app.state.cds
    return state.counters.snapshot()


async def _auth_error(_: Request, exc: Exception) -> Response:
    return JSONResponse(
        {"error": "invalid_token", "error_description": str(exc)},
        status_code=401,
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


def install_cds_hooks(
    app: FastAPI, settings: Settings, *, fhir_transport: Transport | None = None
) -> None:
    """Mount the CDS Hooks routes, their JWT verifier, counters and CORS on ``app``."""
    verifier = (
        JwtVerifier(
            settings.cds_issuers,
            algorithms=CDS_ALGORITHMS,
            required=("iss", "aud", "exp", "iat", "jti"),
            leeway=settings.cds_leeway_seconds,
            require_kid=True,
            typ="JWT",
            replay_cache=JtiCache(settings.cds_jti_cache_size),
            tenants=settings.cds_tenants,
            refresh_seconds=settings.cds_jwks_refresh_seconds,
        )
        if settings.cds_auth_required
        else None
    )
    if settings.cds_auth_required and not settings.cds_fhir_servers:
        log.warning(
            "cds: PAINPATH_CDS_FHIR_SERVERS is empty and client auth is on: no fhirServer is "
            "trusted, calls with an incomplete prefetch answer 412"
        )
    app.state.cds = CdsState(settings, verifier, fhir_transport=fhir_transport)
    app.add_exception_handler(CdsAuthError, _auth_error)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type"],
            max_age=600,
        )
    app.include_router(router)


def get_cds_state(request: Request) -> CdsState:
    """What the CDS Hooks routes share (set by :func:`install_cds_hooks`)."""
    return cast(CdsState, request.app.state.cds)


CdsStateDep = Annotated[CdsState, Depends(get_cds_state)]


async def authorize(request: Request) -> None:
    """Verify the client JWT when CDS auth is on; ``aud`` must be the invoked service URL."""
    state = get_cds_state(request)
    if state.verifier is None:
        return
    base = (state.settings.cds_base_url or str(request.base_url)).rstrip("/")
    path = request.url.path
    audiences = [base + path]
    if path.endswith("/feedback"):  # some clients sign feedback for the service URL
        audiences.append(base + path.removesuffix("/feedback"))
    try:
        claims = await state.verifier.verify_authorization(
            request.headers.get("authorization"), audiences
        )
    except AuthError as exc:
        raise CdsAuthError(exc.status, exc.code, exc.message) from exc
    tenant = claims.get("tenant")
    request.state.cds_tenant = tenant if isinstance(tenant, str) else None  # for the logs


def fhir_server_trusted(settings: Settings, fhir_server: str) -> bool:
    """Whether PainPath may call ``fhir_server`` with the client's ``fhirAuthorization`` token:
    listed in ``cds_fhir_servers`` (or under a listed base); with an empty list, only while CDS
    client auth is off (loopback development) - fail closed otherwise."""
    if settings.cds_fhir_servers:
        return fhir_server_allowed(fhir_server, settings.cds_fhir_servers)
    return not settings.cds_auth_required


router = APIRouter(tags=["cds-hooks"], dependencies=[Depends(authorize)])


@router.get("/cds-services")
async def cds_discovery() -> JSONResponse:
    """The discovery document."""
    return JSONResponse(discovery())


async def _json_body(request: Request, settings: Settings) -> Any:
    check_content_type(request.headers.get("content-type"))
    return parse_json(
        await request.body(), max_bytes=settings.max_body_bytes, max_depth=settings.max_json_depth
    )


def _precondition_failed(text: str) -> Response:
    return fhir_response(operation_outcome(None, [issue("error", "processing", text)]), 412)


@router.post("/cds-services/{service_id}")
async def cds_service(
    request: Request,
    pipeline: PipelineDep,
    state: CdsStateDep,
    conformance: ConformanceDep,
    service_id: str,
) -> Response:
    """Evaluate one hook call and answer its cards."""
    service = SERVICES.get(service_id)
    if service is None:
        raise HTTPException(404, f"No CDS service {service_id!r}; see GET /cds-services")
    settings = state.settings
    cds = read_cds_request(await _json_body(request, settings), service)
    usable, missing = read_prefetch(cds)
    resources = [r for value in usable.values() for r in value.resources]
    next_pages = {k: v.next_url for k, v in usable.items() if v.next_url}
    if missing or next_pages:
        fetched = await _fallback(state, service_id, cds, missing, next_pages)
        if isinstance(fetched, Response):
            return fetched
        resources += fetched
    cards = await cards_for(
        pipeline,
        cds,
        resources,
        now=state.clock().astimezone(UTC),
        links=CardLinks(
            launch_url=state.settings.cds_smart_launch_url,
            questionnaire=lambda form: conformance.read("Questionnaire", form),
        ),
    )
    for card in cards:
        state.counters.cards[(service_id, card["indicator"])] += 1
    log.info("cds %s hookInstance=%s tenant=%r cards=%d", service_id, cds.hook_instance,
             getattr(request.state, "cds_tenant", None), len(cards))  # fmt: skip
    return JSONResponse({"cards": cards})


def _host(url: str) -> str:
    """The host of a URL, for logs and diagnostics (never its path, query or credentials)."""
    try:
        return urlsplit(url).hostname or "?"
    except ValueError:
        return "?"


def _pages_on(fhir_server: str, next_pages: dict[str, str]) -> dict[str, str] | None:
    """The prefetch next links rebased on ``fhir_server``; None when one would leave it."""
    try:
        rebased = {key: rebase(url, fhir_server) for key, url in next_pages.items()}
    except ValueError:  # a link urllib cannot parse
        return None
    inside = all(under_fhir_base(url, fhir_server) for url in rebased.values())
    return rebased if inside else None


async def _fallback(
    state: CdsState,
    service_id: str,
    cds: CdsRequest,
    missing: list[str],
    next_pages: dict[str, str],
) -> list[Sourced] | Response:
    """What the prefetch lacks, read from a trusted ``fhirServer``; a 412 when it cannot be."""
    lacking = ", ".join([*missing, *next_pages])
    server = cds.fhir_server
    if server is None:
        return _precondition_failed(
            f"Prefetch is incomplete ({lacking}) and the request names no fhirServer"
        )
    if not fhir_server_trusted(state.settings, server):
        log.warning("cds %s %s: fhirServer host %r is not on PAINPATH_CDS_FHIR_SERVERS; not "
                    "contacted", service_id, cds.hook_instance, _host(server))  # fmt: skip
        return _precondition_failed(
            f"Prefetch is incomplete ({lacking}) and fhirServer is not on PainPath's allow-list "
            "of FHIR servers (PAINPATH_CDS_FHIR_SERVERS); it was not contacted"
        )
    pages = _pages_on(server, next_pages)
    if pages is None:
        return _precondition_failed(
            f"Prefetch is incomplete ({lacking}) and a prefetch next link does not lie under "
            "fhirServer; it was not followed"
        )
    try:
        fetched = await fetch_missing(
            state.settings, cds, {k: PREFETCH_TYPES[k] for k in missing}, pages,
            transport=state.fhir_transport,
        )  # fmt: skip
    except UpstreamError as exc:
        log.warning("cds %s %s: fhirServer failed: %s", service_id, cds.hook_instance,
                    exc.describe())  # fmt: skip
        return _precondition_failed(f"The data could not be read from fhirServer: {exc.describe()}")
    return [
        Sourced(resource, f"fhirServer.{key}[{index}]", sent=False)
        for key, found in fetched.items()
        for index, resource in enumerate(found)
    ]


@router.post("/cds-services/{service_id}/feedback")
async def cds_feedback(
    request: Request, pipeline: PipelineDep, state: CdsStateDep, service_id: str
) -> JSONResponse:
    """Count accepted / overridden outcomes; nothing but the counts is kept."""
    if service_id not in SERVICES:
        raise HTTPException(404, f"No CDS service {service_id!r}; see GET /cds-services")
    body = await _json_body(request, state.settings)
    items = body.get("feedback") if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        raise InputError.one("invalid", "feedback must be a non-empty array", "feedback")
    known = set(pipeline.kb.catalogue.displays[OVERRIDE_CODES])
    parsed = [_feedback_item(item, f"feedback[{i}]", known) for i, item in enumerate(items)]
    for card, outcome, when, reason in parsed:
        state.counters.record(service_id, card, outcome, when, reason)
    return JSONResponse({})


def _check_feedback_rules(item: Json, outcome: str, where: str, known_reasons: set[str]) -> None:
    """The CDS Hooks 2.0 feedback invariants: an accepted card names the suggestions accepted
    (cds-fb-2: ``acceptedSuggestions``, each with the suggestion's ``id``); an override reason,
    when given, carries a reason or a comment (cds-fb-3), and only on an overridden card. The
    suggestion ids are uuids as PainPath issues them, and a reason is one the card offered."""
    accepted = item.get("acceptedSuggestions")
    if outcome == "accepted":
        if not isinstance(accepted, list) or not accepted:
            raise InputError.one(
                "invalid",
                f"{where}.acceptedSuggestions is required when the outcome is accepted",
                f"{where}.acceptedSuggestions",
            )
        for i, suggestion in enumerate(accepted):
            sid = suggestion.get("id") if isinstance(suggestion, dict) else None
            if not isinstance(sid, str) or not _ISSUED_UUID.match(sid):
                raise InputError.one(
                    "invalid",
                    f"{where}.acceptedSuggestions[{i}].id must be the uuid of a suggestion "
                    "PainPath gave on the card",
                    f"{where}.acceptedSuggestions[{i}].id",
                )
    elif accepted is not None:
        raise InputError.one(
            "invalid",
            f"{where}.acceptedSuggestions is only for an accepted outcome",
            f"{where}.acceptedSuggestions",
        )
    override = item.get("overrideReason")
    if override is None:
        return
    if outcome != "overridden":
        raise InputError.one(
            "invalid", f"{where}.overrideReason is only for an overridden outcome",
            f"{where}.overrideReason",
        )  # fmt: skip
    if not isinstance(override, dict) or not (
        override.get("reason") or override.get("userComment")
    ):
        raise InputError.one(
            "invalid", f"{where}.overrideReason needs a reason or a userComment",
            f"{where}.overrideReason",
        )  # fmt: skip
    _check_override_reason(override, f"{where}.overrideReason", known_reasons)


def _check_override_reason(override: Json, where: str, known_reasons: set[str]) -> None:
    """``reason``, when given, is a Coding PainPath offered in the card's ``overrideReasons``
    (system ``PP/CodeSystem/cds-override-reason``); ``userComment`` is a string."""
    reason = override.get("reason")
    if reason is not None and not (
        isinstance(reason, dict)
        and reason.get("system") == OVERRIDE_SYSTEM
        and reason.get("code") in known_reasons
    ):
        raise InputError.one(
            "invalid",
            f"{where}.reason must be one of the override reasons PainPath offered on the card "
            f"(a Coding of {OVERRIDE_SYSTEM}: {', '.join(sorted(known_reasons))})",
            f"{where}.reason",
        )
    comment = override.get("userComment")
    if comment is not None and not isinstance(comment, str):
        raise InputError.one(
            "invalid", f"{where}.userComment must be a string", f"{where}.userComment"
        )


def _instant(value: object) -> bool:
    """Whether ``value`` is an RFC 3339 date-time with an offset, on a real calendar day."""
    if not isinstance(value, str) or not _INSTANT.match(value):
        return False
    try:
        datetime.fromisoformat(value.upper())
    except ValueError:  # 2026-02-30, 25:00, a leap second
        return False
    return True


def _feedback_item(
    item: Any, where: str, known_reasons: set[str]
) -> tuple[str, str, str, str | None]:
    if not isinstance(item, dict):
        raise InputError.one("invalid", f"{where} must be an object", where)
    card, outcome, when = item.get("card"), item.get("outcome"), item.get("outcomeTimestamp")
    if not isinstance(card, str) or not _ISSUED_UUID.match(card):
        raise InputError.one(
            "invalid", f"{where}.card must be the uuid of a card PainPath gave", f"{where}.card"
        )
    if outcome not in _OUTCOMES:
        raise InputError.one(
            "invalid", f"{where}.outcome must be accepted or overridden", f"{where}.outcome"
        )
    if not _instant(when):
        raise InputError.one(
            "invalid",
            f"{where}.outcomeTimestamp is required: an ISO 8601 (RFC 3339) date and time with a "
            "time zone, e.g. 2026-11-24T10:05:00Z",
            f"{where}.outcomeTimestamp",
        )
    _check_feedback_rules(item, str(outcome), where, known_reasons)
    coding = (item.get("overrideReason") or {}).get("reason")
    reason = str(coding["code"]) if isinstance(coding, dict) else None  # an offered code
    return card.lower(), str(outcome), str(when), reason
