"""``GET /readyz``: 200 when the knowledge base is loaded and, when ``PAINPATH_FHIR_SERVER`` is
set, its ``/metadata`` answers within a short timeout (cached for ``readiness_cache_seconds``)."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from service.api.deps import (
    get_fhir_transport,
    last_readiness_probe,
    loaded_pipeline,
    loaded_settings,
)
from service.server.http import probe_metadata
from service.settings import Settings

__all__ = ["router"]

router = APIRouter()


@router.get("/readyz", tags=["operations"])
async def readyz(request: Request) -> JSONResponse:
    """200 when the knowledge base is loaded and the configured FHIR server answers; else 503."""
    checks: dict[str, str] = {}
    checks["knowledge"] = "ok" if loaded_pipeline(request) is not None else "not loaded"
    settings = loaded_settings(request)
    if settings is not None and settings.fhir_server:
        checks["fhir_server"] = await _probe_fhir(request, settings)
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks},
                        status_code=200 if ready else 503)  # fmt: skip


async def _probe_fhir(request: Request, settings: Settings) -> str:
    cached = last_readiness_probe(request)
    now = time.monotonic()
    if cached is not None and now - cached[0] < settings.readiness_cache_seconds:
        return cached[1]
    result = await probe_metadata(
        str(settings.fhir_server),
        transport=get_fhir_transport(request),
        timeout=settings.readiness_timeout_seconds,
    )
    request.app.state.readiness_probe = (now, result)
    return result
