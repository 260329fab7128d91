"""The API documentation pages and what they show.

``/docs`` (Swagger UI) and ``/redoc`` load their scripts and styles from ``/docs-assets``, the
files the ``fastapi-offline`` package installs (no CDN: the pages work without internet). The
operations PainPath reads raw bytes for (``$triage``, ``Patient/{id}/$triage``, the CDS
services) get their request bodies documented here, in the OpenAPI document, with real examples:
the web page's sample patients (``service/web/samples``) and one call of each CDS hook on a
sample patient (``service/web/examples``), so "Try it out" sends a request that works.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from service.cds_hooks.request import HOOK_CONTEXT, SERVICES
from service.fhir.types import Json

__all__ = ["ASSETS", "install_docs", "request_bodies"]

ASSETS = "/docs-assets"
_WEB = files("service") / "web"
_FHIR_JSON = "application/fhir+json"


def _assets_dir() -> Path:
    """Swagger UI's and ReDoc's files as fastapi-offline installs them."""
    return Path(str(files("fastapi_offline") / "static"))


def _load(name: str) -> Any:
    return orjson.loads((_WEB / name).read_bytes())


def _triage_body() -> Json:
    """``$triage``: a Bundle (or Parameters with a ``bundle`` part); the sample patients."""
    index = _load("samples/index.json")["samples"]
    examples = {
        sample["id"]: {
            "summary": sample["title"],
            "description": f"{sample['description']}. Documented result with "
            f"`asOf={sample['asOf']}` and `profile={sample['profile']}`.",
            "value": _load(f"samples/{sample['id']}.json"),
        }
        for sample in index
    }
    schema = {
        "type": "object",
        "description": "A FHIR R4 Bundle of one or more patients' resources, or a Parameters "
        "resource with a `bundle` part and option parts (`asOf`, `profile`, `return`, "
        "`validation`). Each entry is validated against the R4 schema.",
        "required": ["resourceType"],
        "properties": {
            "resourceType": {"type": "string", "enum": ["Bundle", "Parameters"]},
            "type": {"type": "string", "example": "collection"},
            "entry": {"type": "array", "items": {"type": "object"}},
            "parameter": {"type": "array", "items": {"type": "object"}},
        },
    }
    return {
        "required": True,
        "description": "The patient record to evaluate.",
        "content": {_FHIR_JSON: {"schema": schema, "examples": examples}},
    }


def _patient_triage_body() -> Json:
    """``Patient/{id}/$triage``: an empty body or Parameters with options."""
    schema = {
        "type": "object",
        "description": "Optional Parameters: `asOf`, `profile`, `return`, `validation` and "
        "`writeback` parts (the data comes from the FHIR server).",
        "required": ["resourceType"],
        "properties": {
            "resourceType": {"type": "string", "enum": ["Parameters"]},
            "parameter": {"type": "array", "items": {"type": "object"}},
        },
    }
    example = {
        "summary": "Options as Parameters",
        "value": _load("examples/patient-triage-parameters.json"),
    }
    return {
        "required": False,
        "description": "Empty, or the options as a Parameters resource.",
        "content": {_FHIR_JSON: {"schema": schema, "examples": {"options": example}}},
    }


def _cds_body() -> Json:
    """A CDS Hooks 2.0 request; one example per PainPath service (the path names it)."""
    hooks = sorted(HOOK_CONTEXT)
    schema = {
        "type": "object",
        "description": "A CDS Hooks 2.0 request. `context` holds the hook's fields "
        "(patient-view: userId, patientId; order-select: also selections and draftOrders; "
        "order-sign: also draftOrders). Prefetch keys PainPath asks for are listed by "
        "GET /cds-services; missing ones are fetched from `fhirServer`.",
        "required": ["hook", "hookInstance", "context"],
        "properties": {
            "hook": {"type": "string", "enum": hooks},
            "hookInstance": {"type": "string", "format": "uuid"},
            "fhirServer": {"type": "string", "format": "uri"},
            "fhirAuthorization": {"type": "object"},
            "context": {"type": "object", "required": ["userId", "patientId"]},
            "prefetch": {"type": "object"},
        },
    }
    examples = {
        service.id: {
            "summary": f"{service.hook}: POST /cds-services/{service.id}",
            "description": f"{service.title}, on the routine sample patient (mechanical low "
            "back pain)"
            + (", with a draft lumbar MRI order" if service.hook != "patient-view" else ""),
            "value": _load(f"examples/cds-{service.hook}.json"),
        }
        for service in SERVICES.values()
    }
    return {
        "required": True,
        "content": {"application/json": {"schema": schema, "examples": examples}},
    }


def request_bodies() -> dict[str, Json]:
    """The documented request body of each raw-body operation, by path (all POST)."""
    return {
        "/fhir/$triage": _triage_body(),
        "/fhir/Patient/{patient_id}/$triage": _patient_triage_body(),
        "/cds-services/{service_id}": _cds_body(),
    }


def install_docs(app: FastAPI) -> None:
    """Serve ``/docs``, ``/redoc`` and their assets; add the request bodies to the OpenAPI
    document (built once, on the first ``/openapi.json``). The app must be created with
    ``docs_url=None, redoc_url=None``."""
    app.mount(ASSETS, StaticFiles(directory=_assets_dir()), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"
    title = app.title
    redirect = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            for path, body in request_bodies().items():
                operation = schema["paths"].get(path, {}).get("post")
                if operation is not None:
                    operation["requestBody"] = body
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{title}: API",
            oauth2_redirect_url=redirect,
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon.png",
            swagger_ui_parameters={"defaultModelsExpandDepth": 0},
        )

    @app.get(redirect, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{title}: API",
            redoc_js_url=f"{ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS}/favicon.png",
            with_google_fonts=False,
        )
