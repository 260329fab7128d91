"""HTTP routes: thin wrappers over ``service.fhir`` (no clinical logic here)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from service.api.responses import fhir_response
from service.fhir.capability import capability_statement
from service.fhir.errors import InputError
from service.fhir.request import check_content_type, read_triage_request
from service.fhir.triage import Engine, digest_of, resolve_options

__all__ = ["router"]

router = APIRouter()
_TRIAGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"description": text, "content": {"application/fhir+json": {}}}
    for code, text in {
        200: "Result Bundle",
        400: "Invalid input (OperationOutcome)",
        413: "Too large (OperationOutcome)",
        415: "Unsupported content type (OperationOutcome)",
        422: "Cannot be evaluated (OperationOutcome)",
    }.items()
}


async def _body(request: Request, limit: int) -> bytes:
    """The request body, refusing early (413) once it exceeds ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise InputError.one("too-costly", f"Body is {declared} bytes; the limit is {limit} bytes")
    chunks = bytearray()
    async for chunk in request.stream():
        chunks += chunk
        if len(chunks) > limit:
            raise InputError.one("too-costly", f"Body exceeds the limit of {limit} bytes")
    return bytes(chunks)


@router.get("/healthz", tags=["operations"])
async def healthz(request: Request) -> JSONResponse:
    """200 once the knowledge base is loaded and the service can evaluate."""
    engine: Engine = request.app.state.engine
    return JSONResponse({"status": "ok", "ruleset": engine.kb.version})


@router.get("/fhir/metadata", tags=["fhir"])
async def metadata(request: Request) -> Response:
    """The CapabilityStatement."""
    engine: Engine = request.app.state.engine
    return fhir_response(capability_statement(engine.kb, request.app.state.conformance.types()))


@router.post("/fhir/$triage", tags=["fhir"], responses=_TRIAGE_RESPONSES)
async def triage(
    request: Request,
    as_of: Annotated[str | None, Query(alias="asOf")] = None,
    profile: Annotated[str | None, Query()] = None,
    return_mode: Annotated[str | None, Query(alias="return")] = None,
) -> Response:
    """Evaluate a posted Bundle (or Parameters) and return the result Bundle."""
    settings = request.app.state.settings
    check_content_type(request.headers.get("content-type"))
    body = await _body(request, settings.max_body_bytes)
    parsed = read_triage_request(
        body, max_bytes=settings.max_body_bytes, max_entries=settings.max_entries
    )
    engine: Engine = request.app.state.engine
    raw = {"asOf": as_of, "profile": profile or settings.default_profile, "return": return_mode}
    options = resolve_options(engine.kb, {**raw, **parsed.options}, now=datetime.now(UTC))
    result = engine.triage(parsed.bundle, options, digest=digest_of(body, options))
    return fhir_response(result.bundle)


@router.post("/fhir/Patient/{patient_id}/$triage", tags=["fhir"], responses=_TRIAGE_RESPONSES)
async def patient_triage(request: Request, patient_id: str) -> Response:
    """Evaluate a patient from the configured FHIR server."""
    if not request.app.state.settings.fhir_server:
        raise InputError.one(
            "processing",
            "No FHIR server is configured (set PAINPATH_FHIR_SERVER); "
            f"Patient/{patient_id}/$triage needs one",
        )
    raise InputError.one(
        "not-implemented",
        "Evaluating a patient from a FHIR server is not available in this version",
    )


@router.get("/fhir/{resource_type}", tags=["conformance"])
async def search_conformance(
    request: Request, resource_type: str, url: str | None = None
) -> Response:
    """Search conformance resources by canonical url (searchset Bundle)."""
    found = request.app.state.conformance.search(resource_type, url)
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(found),
        "entry": [{"resource": r, "search": {"mode": "match"}} for r in found],
    }
    return fhir_response(bundle)


@router.get("/fhir/{resource_type}/{resource_id}", tags=["conformance"])
async def read_conformance(request: Request, resource_type: str, resource_id: str) -> Response:
    """Read one conformance resource from ``fhir_profiles/``."""
    found = request.app.state.conformance.read(resource_type, resource_id)
    if found is None:
        raise HTTPException(404, f"{resource_type}/{resource_id} is not known")
    return fhir_response(found)
