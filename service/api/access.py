"""Inbound auth of the FHIR API (``PAINPATH_AUTH_MODE``).

* ``none`` (default): no check, and only allowed when the service is bound to a loopback address
  (``check_bind`` refuses to start otherwise, unless ``auth_allow_none_off_loopback`` says the
  port is published on a loopback address only, as in docker-compose.yml).
* ``jwt``: ``Authorization: Bearer <jwt>`` verified by :class:`service.api.jwt_verify.JwtVerifier`
  (the verification core shared with CDS Hooks; here any asymmetric algorithm, ``exp``/``iss``
  required, ``aud`` checked when ``auth_audience`` is set) against ``auth_issuers``; ``$triage``
  needs a SMART read scope (``system/*.read``, ``user/*.read`` or a v2 equivalent), write-back
  also ``auth_write_scope``. Missing or bad token -> 401 (with ``WWW-Authenticate: Bearer``),
  lacking scope -> 403, both OperationOutcomes.

``require_read`` is an async dependency: JWKS fetches go through httpx's async client, so they
never block the event loop.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request

from service.api.deps import get_auth_settings, get_jwt_verifier
from service.api.jwt_verify import AuthError, JwtVerifier, has_scope
from service.settings import Settings, check_bind

__all__ = ["AuthError", "check_bind", "install_auth", "require_read", "require_write"]


def install_auth(app: FastAPI, settings: Settings) -> None:
    """Build the verifier (jwt mode) and keep it on the app."""
    app.state.auth_settings = settings
    app.state.jwt_verifier = (
        JwtVerifier(
            settings.auth_issuers,
            audience=settings.auth_audience,
            leeway=settings.auth_leeway_seconds,
        )
        if settings.auth_mode == "jwt"
        else None
    )


async def _claims(request: Request) -> dict[str, Any] | None:
    verifier = get_jwt_verifier(request)
    if verifier is None:
        return None
    cached = request.scope.setdefault("state", {}).get("auth_claims")
    if cached is not None:
        return dict(cached)
    claims = await verifier.verify_authorization(request.headers.get("authorization"))
    request.scope["state"]["auth_claims"] = claims
    return claims


async def require_read(request: Request) -> None:
    """Dependency of the ``$triage`` operations: a SMART read scope."""
    claims = await _claims(request)
    if claims is not None and not has_scope(claims, "read"):
        raise AuthError(403, "forbidden", "The token grants no read scope (system/*.read)")


async def require_write(request: Request) -> None:
    """Called before a write-back: the configured PainPath write scope."""
    claims = await _claims(request)
    settings = get_auth_settings(request)
    if claims is not None and not has_scope(claims, settings.auth_write_scope):
        raise AuthError(403, "forbidden", f"Write-back needs the scope {settings.auth_write_scope}")
