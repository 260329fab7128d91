"""Structured logs, Prometheus metrics and readiness: everything an operator watches.

* ``RequestObserver`` (pure ASGI middleware): a request id (``X-Request-ID`` when the caller
  sends a sane one, else a new UUID; echoed in the answer), then one JSON log line per request
  - method, route template (never the raw path: it can hold a patient id), status, duration,
  outcome (the OperationOutcome issue code of an error answer) and the patients' ids as
  HMAC-SHA256 hashes - and the request counters/latency histograms.
* ``JsonFormatter``: every log line as one JSON object, with the request id of the request being
  served and any ``Patient/<id>`` in the message replaced by its hash (a second line of defence:
  no log call should carry one in the first place).
* ``GET /metrics`` (Prometheus text format) and ``GET /readyz`` (knowledge loaded and, when
  ``PAINPATH_FHIR_SERVER`` is set, its ``/metadata`` answers within a short timeout; the probe
  is cached for ``readiness_cache_seconds``).

Metrics live in one registry per app (tests build many apps). Under several uvicorn workers each
worker counts its own requests; set ``PROMETHEUS_MULTIPROC_DIR`` for the aggregated view
(prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import contextvars
import hashlib
import hmac
import logging
import os
import re
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

from service.server.http import Transport, probe_metadata
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

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

access_log = logging.getLogger("painpath.access")
_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "painpath_request_id", default=None
)
_SANE_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_PATIENT_REF = re.compile(r"\bPatient/([A-Za-z0-9\-.]{1,64})")
_PROBES = {"/healthz", "/readyz", "/metrics"}
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_MAX_CAPTURED_ERROR = 64 * 1024


def request_id() -> str | None:
    """The id of the request being served (None outside a request)."""
    return _request_id.get()


class PatientHasher:
    """HMAC-SHA256 of patient ids: the same id gives the same short hash within one key."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)

    def __call__(self, patient: str) -> str:
        digest = hmac.new(self._key, patient.encode("utf-8", "replace"), hashlib.sha256)
        return digest.hexdigest()[:16]

    def redact(self, text: str) -> str:
        """``text`` with every ``Patient/<id>`` replaced by ``Patient/#<hash>``."""
        return _PATIENT_REF.sub(lambda m: f"Patient/#{self(m.group(1))}", text)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, request_id and the record's ``event``."""

    def __init__(self, hasher: PatientHasher) -> None:
        super().__init__()
        self.hasher = hasher

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": self.hasher.redact(record.getMessage()),
        }
        rid = getattr(record, "request_id", None) or request_id()
        if rid:
            line["request_id"] = rid
        event = getattr(record, "event", None)
        if isinstance(event, dict):
            line.update(event)
        if record.exc_info and record.exc_info[0] is not None:
            line["error"] = record.exc_info[0].__name__  # the type only: no trace, no values
        return orjson.dumps(line, default=str).decode()


_HANDLER_MARK = "_painpath_handler"


def configure_logging(settings: Settings, hasher: PatientHasher) -> None:
    """Install (or replace) PainPath's root handler: JSON lines on stderr, or plain text."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(handler)
    handler = logging.StreamHandler()
    setattr(handler, _HANDLER_MARK, True)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter(hasher))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())


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
    metrics: Metrics | None = getattr(request.app.state, "metrics", None)
    patients: list[str] = request.scope.setdefault("state", {}).setdefault("patients", [])
    for assessment in assessments:
        patients.append(str(assessment.subject))
        if metrics is None:
            continue
        pain_type = assessment.value("pain-type") or "none"
        stage = assessment.value("recommended-stage") or "none"
        if not assessment.in_scope:
            pain_type = stage = "out-of-scope"
        metrics.evaluations.labels(pain_type, stage).inc()
        for flag in assessment.red_flags:
            metrics.red_flags.labels(flag.code).inc()


class RequestObserver:
    """ASGI middleware: request id, one access log line and the request metrics."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, hasher: PatientHasher) -> None:
        self.app = app
        self.metrics = metrics
        self.hasher = hasher

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = _incoming_id(scope) or uuid.uuid4().hex
        token = _request_id.set(rid)
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        started = time.perf_counter()
        seen: dict[str, Any] = {"status": 500, "body": bytearray()}

        async def send_observed(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", rid.encode()))
                message["headers"] = headers
            elif (
                message["type"] == "http.response.body"
                and seen["status"] >= 400
                and len(seen["body"]) < _MAX_CAPTURED_ERROR
            ):
                seen["body"] += message.get("body", b"")
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        finally:
            self._record(scope, state, seen, time.perf_counter() - started)
            _request_id.reset(token)

    def _record(
        self, scope: Scope, state: dict[str, Any], seen: dict[str, Any], elapsed: float
    ) -> None:
        route = getattr(scope.get("route"), "path", None) or "<unmatched>"
        method, status = scope["method"], int(seen["status"])
        outcome = "ok" if status < 400 else _issue_code(bytes(seen["body"]))
        self.metrics.requests.labels(method, route, str(status)).inc()
        self.metrics.latency.labels(method, route).observe(elapsed)
        if status in (502, 504):
            self.metrics.upstream_errors.labels(outcome).inc()
        patients = list(state.get("patients", ()))
        path_patient = (scope.get("path_params") or {}).get("patient_id")
        if path_patient and f"Patient/{path_patient}" not in patients:
            patients.insert(0, f"Patient/{path_patient}")
        event = {
            "event": "request",
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": round(elapsed * 1000, 2),
            "outcome": outcome,
            "patients": sorted({self.hasher(p) for p in patients}),
        }
        level = logging.DEBUG if route in _PROBES and status < 400 else logging.INFO
        if status >= 500:
            level = logging.WARNING
        access_log.log(level, "%s %s %s", method, route, status, extra={"event": event})


def _incoming_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            return text if _SANE_ID.match(text) else None
    return None


def _issue_code(body: bytes) -> str:
    try:
        outcome = orjson.loads(body)
        code = outcome["issue"][0]["code"]
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
        return "error"
    return str(code) if isinstance(code, str) and len(code) <= 32 else "error"


# --- /metrics and /readyz -----------------------------------------------------------------

router = APIRouter()


@router.get("/metrics", tags=["operations"])
async def metrics(request: Request) -> Response:
    """Prometheus text exposition."""
    found: Metrics = request.app.state.metrics
    return Response(found.exposition(), media_type=CONTENT_TYPE_LATEST)


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


def install_observability(app: FastAPI, settings: Settings) -> PatientHasher:
    """Metrics registry, request middleware and the /metrics and /readyz routes."""
    salt = settings.log_salt.get_secret_value().encode() if settings.log_salt else None
    hasher = PatientHasher(salt)
    app.state.metrics = Metrics()
    app.state.patient_hasher = hasher
    app.add_middleware(RequestObserver, metrics=app.state.metrics, hasher=hasher)
    app.include_router(router)
    return hasher
