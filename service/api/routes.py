"""HTTP routes: thin wrappers over ``service.fhir`` (no clinical logic here)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from service.api.access import require_read, require_write
from service.api.deps import (
    ConformanceDep,
    FhirIdPath,
    PipelineDep,
    SettingsDep,
    server_connection,
)
from service.api.observability import observe_triage
from service.api.responses import fhir_response
from service.conformance.capability import capability_statement
from service.conformance.search import searchset
from service.fhir.errors import InputError
from service.fhir.request import (
    PATIENT_TRIAGE_OPTIONS,
    TRIAGE_OPTIONS,
    QueryOptions,
    check_accept,
    check_content_type,
    read_patient_parameters,
    read_query_options,
    strict_handling,
)

__all__ = [
    "TriageQueryDep", "fhir_responses", "fhir_router", "negotiate", "option_parameters",
    "query_options", "read_body", "router",
]  # fmt: skip


def negotiate(
    request: Request,
    format_: Annotated[
        str | None, Query(alias="_format", description="json (the only format answered)")
    ] = None,
) -> None:
    """406 before any work when the caller cannot take FHIR JSON (``Accept``, ``_format``)."""
    check_accept(request.headers.get("accept"), format_)


router = APIRouter()  # operations endpoints (health)
fhir_router = APIRouter(dependencies=[Depends(negotiate)])  # the FHIR API: content negotiated


def fhir_responses(texts: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries whose bodies are FHIR JSON."""
    return {
        code: {"description": text, "content": {"application/fhir+json": {}}}
        for code, text in texts.items()
    }


_TRIAGE_RESPONSES = fhir_responses(
    {
        200: "Result Bundle",
        400: "Invalid input (OperationOutcome)",
        406: "Accept or _format admits no FHIR JSON (OperationOutcome)",
        413: "Too large (OperationOutcome)",
        415: "Unsupported content type (OperationOutcome)",
        422: "Cannot be evaluated (OperationOutcome)",
    }
)
_PATIENT_RESPONSES = {
    **_TRIAGE_RESPONSES,
    **fhir_responses(
        {
            404: "The FHIR server has no such Patient (OperationOutcome)",
            502: "The FHIR server failed or refused (OperationOutcome naming it)",
            504: "The FHIR server did not answer in time (OperationOutcome)",
        }
    ),
}


_OPTION_DOCS = {
    "asOf": "evaluation date: a FHIR dateTime with a time zone, or a date (default: now)",
    "profile": "guideline profile (nice-ng59 by default, or neupsig)",
    "return": "collection (default) or transaction",
    "validation": "lenient (default: an invalid entry of a type PainPath does not read is a "
    "warning) or strict (it is a 400)",
    "writeback": "true: also write the results to the FHIR server in one transaction",
}


def option_parameters(names: tuple[str, ...]) -> dict[str, Any]:
    """OpenAPI ``parameters`` (for a route's ``openapi_extra``) of an operation's options,
    which :func:`query_options` reads."""
    return {
        "parameters": [
            {"name": name, "in": "query", "required": False, "schema": {"type": "string"},
             "description": _OPTION_DOCS[name]}
            for name in names
        ]
    }  # fmt: skip


def query_options(names: tuple[str, ...]) -> Callable[[Request], QueryOptions]:
    """A dependency reading an operation's options ``names`` from the query string, the same way
    for every operation (``service.fhir.request.read_query_options``): a parameter it does not
    take is reported in the answer, or a 400 under ``Prefer: handling=strict``."""

    def read(request: Request) -> QueryOptions:
        return read_query_options(
            request.query_params.multi_items(),
            names,
            strict=strict_handling(request.headers.get("prefer")),
        )

    return read


TriageQueryDep = Annotated[QueryOptions, Depends(query_options(TRIAGE_OPTIONS))]
PatientTriageQueryDep = Annotated[QueryOptions, Depends(query_options(PATIENT_TRIAGE_OPTIONS))]


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) once it exceeds ``limit`` bytes.

    A client that writes the whole body before it reads (urllib, requests, many integration
    engines) would see a connection reset if the server answered and closed mid-upload, so an
    oversized body is read to its end and discarded - up to a bound (``_DRAIN_FACTOR`` times the
    limit) past which the connection is given up - and only then answered with the 413.
    """
    stream = request.stream().__aiter__()
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        await _drain(stream, limit * _DRAIN_FACTOR)
        raise InputError.one("too-costly", f"Body is {declared} bytes; the limit is {limit} bytes")
    chunks = bytearray()
    async for chunk in stream:
        chunks += chunk
        if len(chunks) > limit:
            await _drain(stream, limit * _DRAIN_FACTOR - len(chunks))
            raise InputError.one("too-costly", f"Body exceeds the limit of {limit} bytes")
    return bytes(chunks)


_DRAIN_FACTOR = 4  # an oversized body is read (and dropped) up to this many times the limit


async def _drain(stream: AsyncIterator[bytes], budget: int) -> None:
    """Read and drop the rest of a body, at most ``budget`` bytes."""
    async for chunk in stream:
        budget -= len(chunk)
        if budget < 0:
            return


@router.get("/healthz", tags=["operations"])
async def healthz(pipeline: PipelineDep) -> JSONResponse:
    """200 once the knowledge base is loaded and the service can evaluate."""
    return JSONResponse({"status": "ok", "ruleset": pipeline.kb.version})


@fhir_router.get("/fhir/metadata", tags=["fhir"])
async def metadata(pipeline: PipelineDep, conformance: ConformanceDep) -> Response:
    """The CapabilityStatement."""
    return fhir_response(capability_statement(pipeline.kb, conformance.types()))


@fhir_router.post(
    "/fhir/$triage",
    tags=["fhir"],
    responses=_TRIAGE_RESPONSES,
    dependencies=[Depends(require_read)],
    openapi_extra=option_parameters(TRIAGE_OPTIONS),
)
async def triage(
    request: Request, pipeline: PipelineDep, settings: SettingsDep, query: TriageQueryDep
) -> Response:
    """Evaluate a posted Bundle (or Parameters) and return the result Bundle."""
    check_content_type(request.headers.get("content-type"))
    body = await read_body(request, settings.max_body_bytes)
    result = await pipeline.run_body_async(
        body, query.options, now=datetime.now(UTC), ignored=query.ignored
    )
    observe_triage(request, result.assessments)
    return fhir_response(result.bundle)


@fhir_router.post(
    "/fhir/Patient/{patient_id}/$triage",
    tags=["fhir"],
    responses=_PATIENT_RESPONSES,
    dependencies=[Depends(require_read)],
    openapi_extra=option_parameters(PATIENT_TRIAGE_OPTIONS),
)
async def patient_triage(
    request: Request, settings: SettingsDep, patient_id: FhirIdPath, query: PatientTriageQueryDep
) -> Response:
    """Evaluate a patient from the configured FHIR server; ``writeback`` also writes the results."""
    server = server_connection(request, f"Patient/{patient_id}/$triage")
    check_content_type(request.headers.get("content-type"))
    body = read_patient_parameters(
        await read_body(request, settings.max_body_bytes),
        max_bytes=settings.max_body_bytes,
        max_depth=settings.max_json_depth,
    )
    options = server.triage.pipeline.options(query.options, body, now=datetime.now(UTC))
    writeback = body.get("writeback", query.options.get("writeback"))
    writeback = settings.writeback if writeback is None else bool(writeback)
    if writeback:
        await require_write(request)
    run = await server.triage.run(patient_id, options, writeback=writeback, ignored=query.ignored)
    observe_triage(request, run.result.assessments)
    return fhir_response(run.result.bundle)


@fhir_router.get("/fhir/{resource_type}", tags=["conformance"])
async def search_conformance(
    request: Request, conformance: ConformanceDep, resource_type: str, url: str | None = None
) -> Response:
    """Search conformance resources (searchset Bundle): ``url``, ``_id``, ``_count`` paging,
    ``_summary``, ``_elements``; other parameters reported, or refused with
    ``Prefer: handling=strict`` (``service.conformance.search``).

    ``GET /fhir/$triage`` lands here too: it is the operation's path, so 405 (POST only). A type
    PainPath does not serve is 404 (https://hl7.org/fhir/R4/http.html#search).
    """
    if resource_type.startswith("$"):
        raise HTTPException(405, f"{resource_type} is invoked with POST", {"Allow": "POST"})
    if resource_type not in conformance.types():
        raise HTTPException(404, "No conformance resources of this type are served here")
    bundle = searchset(
        conformance.search(resource_type, url),
        list(request.query_params.multi_items()),
        self_url=str(request.url.replace(query="")),
        strict=strict_handling(request.headers.get("prefer")),
    )
    return fhir_response(bundle)


_TYPE_OPERATIONS = {("PlanDefinition", "$apply"), ("Questionnaire", "$populate")}


@fhir_router.get("/fhir/{resource_type}/{resource_id}", tags=["conformance"])
async def read_conformance(
    conformance: ConformanceDep, resource_type: str, resource_id: str
) -> Response:
    """Read one conformance resource from ``fhir_profiles/``.

    The type-level operations (``PlanDefinition/$apply``, ``Questionnaire/$populate``) land here
    for any method their POST route does not take: 405, as for ``GET /fhir/$triage``."""
    if (resource_type, resource_id) in _TYPE_OPERATIONS:
        raise HTTPException(405, f"{resource_id} is invoked with POST", {"Allow": "POST"})
    found = conformance.read(resource_type, resource_id)
    if found is None:
        raise HTTPException(404, "No such conformance resource is served here")
    return fhir_response(found)
