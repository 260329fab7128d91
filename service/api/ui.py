"""The built-in web page: ``GET /`` (the page), ``GET /ui/{asset}`` (its script and style),
``GET /ui/samples/{name}`` (bundled sample Bundles) and ``POST /ui/summary`` (the decision trace
of a ``$triage`` run as JSON, for the page; see ``service.fhir.view``).

The assets live in ``service/web/`` (package data, no CDN). Thin routes: the summary takes the
same body, query parameters and errors as ``POST /fhir/$triage``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from importlib.resources import files
from typing import Annotated

import orjson
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from service.api.routes import _body
from service.fhir.request import check_content_type, read_triage_request
from service.fhir.triage import Engine, digest_of, resolve_options
from service.fhir.view import trace_view

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
_WEB = files("service") / "web"
_TYPES = {"js": "text/javascript", "css": "text/css", "json": "application/json"}
# The page loads nothing from elsewhere and runs no inline script.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


def _asset(name: str) -> Response:
    resource = _WEB.joinpath(*name.split("/"))
    if not resource.is_file():
        raise HTTPException(404, f"{name} is not a page asset")
    media = _TYPES.get(name.rsplit(".", 1)[-1], "text/html")
    headers = {"Content-Security-Policy": _CSP, "X-Content-Type-Options": "nosniff"}
    return Response(resource.read_bytes(), media_type=media, headers=headers)


@router.get("/")
async def page() -> Response:
    """The web page."""
    return _asset("index.html")


@router.get("/ui/samples/{name}")
async def sample(name: Annotated[str, Path(pattern=r"^[a-z0-9-]{1,80}\.json$")]) -> Response:
    """A bundled sample (``index.json`` lists them)."""
    return _asset(f"samples/{name}")


@router.get("/ui/{name}")
async def asset(name: Annotated[str, Path(pattern=r"^[a-z0-9-]{1,40}\.(js|css)$")]) -> Response:
    """The page's script or style sheet."""
    return _asset(name)


@router.post("/ui/summary")
async def summary(
    request: Request,
    as_of: Annotated[str | None, Query(alias="asOf")] = None,
    profile: Annotated[str | None, Query()] = None,
) -> Response:
    """The decision trace of a ``$triage`` run (same body and errors as ``$triage``), with the
    result Bundle that ``$triage`` answers for the same body and options under ``result``: the
    page evaluates once per click."""
    settings = request.app.state.settings
    check_content_type(request.headers.get("content-type"))
    body = await _body(request, settings.max_body_bytes)
    engine: Engine = request.app.state.engine
    parsed = read_triage_request(  # exactly as $triage reads it: same limits, same validation
        body,
        max_bytes=settings.max_body_bytes,
        max_entries=settings.max_entries,
        max_depth=settings.max_json_depth,
        relevant=engine.relevance,
    )
    raw = {"asOf": as_of, "profile": profile or settings.default_profile}
    options = resolve_options(engine.kb, {**raw, **parsed.options}, now=datetime.now(UTC))
    result = engine.triage(
        parsed.bundle, options, digest=digest_of(body, options), selected=parsed.selected
    )
    view = trace_view(
        engine.kb, parsed.bundle, result.assessments, matcher=engine.matcher, found=result.found
    )
    view["result"] = result.bundle
    return Response(orjson.dumps(view), media_type="application/json")
