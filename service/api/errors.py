"""Map errors to HTTP answers with an OperationOutcome body - the only place that does.

InputError kinds -> 400/406/413/415/422; NoPatientError/EvaluationError -> 422; UpstreamError (the
configured FHIR server failed) -> 502, its timeout -> 504, a patient it does not have -> 404;
request validation
by FastAPI (query parameters) -> 400; anything unexpected -> 500 with a generic
OperationOutcome (logged with the request id, never with a stack trace in the body).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from service.api.jwt_verify import AuthError
from service.api.responses import fhir_response
from service.domain.errors import EvaluationError
from service.fhir.errors import InputError, InputErrorKind
from service.fhir.outcome import from_error, issue, operation_outcome
from service.server.errors import (
    UpstreamAuthError,
    UpstreamError,
    UpstreamNotFoundError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)

__all__ = ["STATUS_BY_KIND", "install_error_handlers", "upstream_status"]

log = logging.getLogger("painpath.api")

STATUS_BY_KIND: dict[InputErrorKind, int] = {
    "invalid": 400,
    "structure": 400,
    "value": 400,
    "too-costly": 413,
    "not-supported": 415,
    "not-acceptable": 406,
    "processing": 422,
    "business-rule": 422,
    "security": 401,
    "not-implemented": 501,
}


def _outcome_response(
    status: int, code: str, diagnostics: str, headers: Mapping[str, str] | None = None
) -> Response:
    severity = "fatal" if status >= 500 else "error"
    response = fhir_response(operation_outcome(None, [issue(severity, code, diagnostics)]), status)
    response.headers.update(headers or {})
    return response


async def _input_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, InputError):
        return await _unexpected(request, exc)
    return fhir_response(from_error(exc), STATUS_BY_KIND[exc.kind])


async def _evaluation_error(_: Request, exc: Exception) -> Response:
    return _outcome_response(422, "processing", str(exc))


async def _validation_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, RequestValidationError):
        return await _unexpected(request, exc)
    problems = [
        issue(
            "error", "invalid", str(e.get("msg")), expression=".".join(map(str, e.get("loc", ())))
        )
        for e in exc.errors()
    ]
    return fhir_response(operation_outcome(None, problems), 400)


async def _http_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, HTTPException):
        return await _unexpected(request, exc)
    code = {404: "not-found", 405: "not-supported"}.get(exc.status_code, "processing")
    # keep the handler's headers: a 405 must say which methods are allowed (RFC 9110 15.5.6)
    return _outcome_response(exc.status_code, code, str(exc.detail), exc.headers)


def upstream_status(exc: UpstreamError) -> tuple[int, str]:
    """(HTTP status, OperationOutcome issue code) for a failure of the FHIR server."""
    if isinstance(exc, UpstreamNotFoundError):
        return 404, "not-found"
    if isinstance(exc, UpstreamTimeoutError):
        return 504, "timeout"
    if isinstance(exc, UpstreamAuthError):
        return 502, "security"
    if isinstance(exc, UpstreamUnavailableError) or (exc.status or 0) >= 500 or exc.status == 429:
        return 502, "transient"
    return 502, "exception"


async def _upstream_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, UpstreamError):
        return await _unexpected(request, exc)
    status, code = upstream_status(exc)
    log.warning("upstream failure on %s %s: %s", request.method, request.url.path, exc.describe())
    return _outcome_response(status, code, exc.describe())


async def _exception_group(request: Request, exc: Exception) -> Response:
    """A task group's failure (concurrent FHIR searches): answer as its first failure would."""
    leaf: BaseException = exc
    while isinstance(leaf, BaseExceptionGroup) and leaf.exceptions:
        leaf = leaf.exceptions[0]
    if isinstance(leaf, UpstreamError):
        return await _upstream_error(request, leaf)
    if isinstance(leaf, InputError):
        return await _input_error(request, leaf)
    return await _unexpected(request, exc)


async def _auth_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, AuthError):
        return await _unexpected(request, exc)
    challenge = {"WWW-Authenticate": 'Bearer error="invalid_token"'} if exc.status == 401 else {}
    return _outcome_response(exc.status, exc.code, exc.message, challenge)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.error("unexpected error on %s %s: %s", request.method, request.url.path, type(exc).__name__)
    return _outcome_response(500, "exception", "Internal error; the request was not evaluated")


def install_error_handlers(app: FastAPI) -> None:
    """Register every handler on the app."""
    app.add_exception_handler(InputError, _input_error)
    app.add_exception_handler(EvaluationError, _evaluation_error)
    app.add_exception_handler(UpstreamError, _upstream_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(AuthError, _auth_error)
    app.add_exception_handler(ExceptionGroup, _exception_group)
    app.add_exception_handler(Exception, _unexpected)
