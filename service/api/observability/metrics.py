"""Prometheus metrics: one registry per app (tests build many apps); under several uvicorn
workers set ``PROMETHEUS_MULTIPROC_DIR`` for the aggregated view (prometheus-client's
multiprocess mode). ``GET /metrics`` serves the text exposition."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

from service.api.deps import get_metrics

__all__ = ["Metrics", "observe_triage", "router"]

router = APIRouter()
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """The app's Prometheus collectors."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "painpath_http_requests",
            "HTTP requests by method, route template and status",
            ["method", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "painpath_http_request_duration_seconds",
            "HTTP request duration by method and route template",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.evaluations = Counter(
            "painpath_evaluations",
            "Patients evaluated, by pain type and recommended stage",
            ["pain_type", "stage"],
            registry=r,
        )
        self.red_flags = Counter(
            "painpath_red_flags", "Red flags raised, by code", ["code"], registry=r
        )
        self.upstream_errors = Counter(
            "painpath_upstream_errors",
            "Failures of the configured FHIR server, by kind (OperationOutcome issue code)",
            ["kind"],
            registry=r,
        )
        # For the CDS Hooks service: feedback received, by service id and outcome.
        self.cds_feedback = Counter(
            "painpath_cds_feedback",
            "CDS Hooks feedback received, by service and outcome",
            ["service", "outcome"],
            registry=r,
        )

    def exposition(self) -> bytes:
        """The text exposition (aggregated over workers in multiprocess mode)."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)


def observe_triage(request: Request, assessments: Iterable[Any]) -> None:
    """Count one request's evaluations and red flags, and note its patients for the log line."""
    metrics = get_metrics(request)
    patients: list[str] = request.scope.setdefault("state", {}).setdefault("patients", [])
    for assessment in assessments:
        patients.append(str(assessment.subject))
        pain_type = assessment.value("pain-type") or "none"
        stage = assessment.value("recommended-stage") or "none"
        if not assessment.in_scope:
            pain_type = stage = "out-of-scope"
        metrics.evaluations.labels(pain_type, stage).inc()
        for flag in assessment.red_flags:
            metrics.red_flags.labels(flag.code).inc()


@router.get("/metrics", tags=["operations"])
async def metrics(request: Request) -> Response:
    """Prometheus text exposition."""
    return Response(get_metrics(request).exposition(), media_type=CONTENT_TYPE_LATEST)
