"""Everything an operator watches: structured logs (``logs``), Prometheus metrics (``metrics``),
the request middleware (``middleware``) and readiness (``health``)."""

from __future__ import annotations

from fastapi import FastAPI

from service.api.observability import health, metrics
from service.api.observability.logs import (
    JsonFormatter,
    PatientHasher,
    configure_logging,
    request_id,
)
from service.api.observability.metrics import Metrics, observe_triage
from service.api.observability.middleware import RequestObserver
from service.settings import Settings

__all__ = [
    "JsonFormatter",
    "Metrics",
    "PatientHasher",
    "RequestObserver",
    "configure_logging",
    "install_observability",
    "observe_triage",
    "request_id",
]


def install_observability(app: FastAPI, settings: Settings) -> PatientHasher:
    """Metrics registry, request middleware and the /metrics and /readyz routes."""
    salt = settings.log_salt.get_secret_value().encode() if settings.log_salt else None
    hasher = PatientHasher(salt)
    registry = Metrics()
    app.state.metrics = registry
    app.state.patient_hasher = hasher
    app.add_middleware(RequestObserver, metrics=registry, hasher=hasher)
    app.include_router(metrics.router)
    app.include_router(health.router)
    return hasher
