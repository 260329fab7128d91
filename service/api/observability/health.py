"""``GET /readyz``: 200 when the knowledge base is loaded and, when ``PAINPATH_FHIR_SERVER`` is
set, its ``/metadata`` answers within a short timeout (cached for ``readiness_cache_seconds``)."""

from __future__ import annotations

import time

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from service.server.http import Transport, probe_metadata
from service.settings import Settings

__all__ = ["router"]

router = APIRouter()


@router.get("/readyz", tags=["operations"])
async def readyz(request: Request) -> JSONResponse:
    """200 when the knowledge base is loaded and the configured FHIR server answers; else 503."""
    state = request.app.state
    checks: dict[str, str] = {}
    pipeline = getattr(state, "pipeline", None)
    checks["knowledge"] = "ok" if pipeline is not None else "not loaded"
    settings: Settings | None = getattr(state, "settings", None)
    if settings is not None and settings.fhir_server:
        checks["fhir_server"] = await _probe_fhir(request.app, settings)
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks},
                        status_code=200 if ready else 503)  # fmt: skip


async def _probe_fhir(app: FastAPI, settings: Settings) -> str:
    cached: tuple[float, str] | None = getattr(app.state, "readiness_probe", None)
    now = time.monotonic()
    if cached is not None and now - cached[0] < settings.readiness_cache_seconds:
        return cached[1]
    transport: Transport | None = getattr(app.state, "fhir_transport", None)
    result = await probe_metadata(
        str(settings.fhir_server), transport=transport, timeout=settings.readiness_timeout_seconds
    )
    app.state.readiness_probe = (now, result)
    return result
