"""``RequestObserver`` (pure ASGI middleware): a request id (``X-Request-ID`` when the caller
sends a sane one, else a new UUID; echoed in the answer), then one JSON log line per request -
method, route template (never the raw path: it can hold a patient id), status, duration,
outcome (the OperationOutcome issue code of an error answer) and the patients' ids as
HMAC-SHA256 hashes - and the request counters and latency histograms."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from service.api.observability.logs import PatientHasher, request_id_var
from service.api.observability.metrics import Metrics

__all__ = ["RequestObserver"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

access_log = logging.getLogger("painpath.access")
_SANE_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_PROBES = {"/healthz", "/readyz", "/metrics"}
_MAX_CAPTURED_ERROR = 64 * 1024


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
        token = request_id_var.set(rid)
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
            request_id_var.reset(token)

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
