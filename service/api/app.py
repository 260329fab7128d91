"""Application factory: ``create_app(settings)``; nothing runs at import time.

The lifespan loads and validates the knowledge files (a bad file stops start-up), compiles the
value sets and loads ``fhir_profiles/``; with ``PAINPATH_FHIR_SERVER`` set it also opens the FHIR
server connection (``service.server.connection``) and closes it at shutdown. Routes live in
``service.api.routes``, the subscription receiver in ``service.api.subscriptions``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from service import __version__
from service.api import apply, populate, smart, subscriptions, ui
from service.api.access import check_bind, install_auth
from service.api.cds_hooks import install_cds_hooks
from service.api.docs import install_docs
from service.api.errors import install_error_handlers
from service.api.methods import HeadAsGet
from service.api.observability import configure_logging, install_observability
from service.api.routes import fhir_router, router
from service.api.smart_session import LaunchCookies
from service.app.pipeline import Pipeline
from service.conformance.store import ConformanceStore, default_profiles_dir
from service.server.http import Transport
from service.settings import Settings, get_settings
from service.subscriptions.connection import connect

__all__ = ["create_app"]


def create_app(
    settings: Settings | None = None, *, fhir_transport: Transport | None = None
) -> FastAPI:
    """Build the FastAPI application (``fhir_transport``: tests put the FHIR server client on
    another httpx transport, e.g. a fault injector)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings, hasher)
        check_bind(settings)
        pipeline = Pipeline.from_settings(settings)
        connection = connect(settings, pipeline, transport=fhir_transport)
        app.state.fhir_transport = fhir_transport
        app.state.pipeline = pipeline
        app.state.fhir_server = connection
        app.state.conformance = ConformanceStore.load(
            settings.profiles_dir or default_profiles_dir()
        )
        app.state.settings = settings
        try:
            yield
        finally:
            if connection is not None:
                await connection.aclose()

    app = FastAPI(
        title="PainPath",
        version=__version__,
        description="FHIR R4 clinical decision support for back pain.",
        lifespan=lifespan,
        docs_url=None,  # service.api.docs serves /docs and /redoc without a CDN
        redoc_url=None,
    )
    install_error_handlers(app)
    app.add_middleware(HeadAsGet)  # added first: the innermost middleware
    hasher = install_observability(app, settings)
    install_auth(app, settings)
    app.include_router(router)
    app.include_router(apply.router)
    app.include_router(populate.router)
    app.include_router(fhir_router)
    app.include_router(subscriptions.router)
    app.include_router(ui.router)
    app.include_router(smart.router)
    key = settings.smart_app_session_key
    app.state.launch_cookies = LaunchCookies(
        key.get_secret_value().encode() if key else None, ttl=settings.smart_app_launch_seconds
    )
    install_cds_hooks(app, settings, fhir_transport=fhir_transport)
    install_docs(app)
    return app
