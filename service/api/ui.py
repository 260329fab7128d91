"""The built-in web page: ``GET /`` (the page), ``GET /ui/{asset}`` (its script and style),
``GET /ui/samples/{name}`` (bundled sample Bundles) and ``POST /ui/summary`` (the decision trace
of a ``$triage`` run as JSON, for the page; see ``service.app.view``).

The assets live in ``service/web/`` (package data, no CDN). Thin routes: the summary takes the
same body, query parameters and errors as ``POST /fhir/$triage``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from importlib.resources import files
from typing import Annotated

import anyio.to_thread
import orjson
from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from service.api.deps import PipelineDep, SettingsDep
from service.api.routes import TriageQueryDep, read_body
from service.app.view import trace_view
from service.fhir.request import check_content_type
from service.fhir.types import Json

__all__ = ["page_with", "router"]

router = APIRouter(include_in_schema=False)
_WEB = files("service") / "web"
_TYPES = {"js": "text/javascript", "css": "text/css", "json": "application/json"}
# The page loads nothing from elsewhere and runs no inline script.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


@cache
def _index_html() -> bytes:
    """The page, read once (it is part of the installed package)."""
    return _WEB.joinpath("index.html").read_bytes()


def page_with(data: Json, *, status: int = 200) -> Response:
    """The web page with ``data`` for its script in a JSON data block (``#page-data``; a data
    block is not run, so the CSP stands), not cached and sent with no referrer (the SMART
    callback's URL holds the authorization code)."""
    block = orjson.dumps(data).replace(b"<", b"\\u003c").replace(b">", b"\\u003e")
    html = _index_html().replace(
        b"</body>",
        b'<script type="application/json" id="page-data">' + block + b"</script>\n</body>",
    )
    headers = {
        "Content-Security-Policy": _CSP,
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
    }
    return Response(html, status_code=status, media_type="text/html", headers=headers)


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


@router.post("/ui/summary")
async def summary(
    request: Request,
    pipeline: PipelineDep,
    settings: SettingsDep,
    query: TriageQueryDep,
) -> Response:
    """The decision trace of a ``$triage`` run (same body, options and errors as ``$triage``),
    with the result Bundle that ``$triage`` answers for the same body and options under
    ``result``: the page evaluates once per click."""
    check_content_type(request.headers.get("content-type"))
    body = await read_body(request, settings.max_body_bytes)
    result = await pipeline.run_body_async(
        body, query.options, now=datetime.now(UTC), ignored=query.ignored
    )
    view = await anyio.to_thread.run_sync(lambda: trace_view(pipeline, result))
    view["result"] = result.bundle
    return Response(orjson.dumps(view), media_type="application/json")


# Declared before the assets: the summary is POSTed, and ``GET /ui/summary`` (which the asset
# route would otherwise take, as an asset named "summary") is a 405 naming POST, as are the other
# methods (the first route matching the path gives the ``Allow``).
@router.get("/ui/summary")
async def summary_by_get() -> Response:
    """405: the summary takes a body."""
    raise HTTPException(405, "/ui/summary is invoked with POST", {"Allow": "POST"})


@router.get("/ui/samples/{name}")
async def sample(name: Annotated[str, Path(pattern=r"^[a-z0-9-]{1,80}\.json$")]) -> Response:
    """A bundled sample (``index.json`` lists them)."""
    return _asset(f"samples/{name}")


@router.get("/ui/{name}")
async def asset(name: Annotated[str, Path(pattern=r"^[a-z0-9-]{1,40}\.(js|css)$")]) -> Response:
    """The page's script or style sheet."""
    return _asset(name)
