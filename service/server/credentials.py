"""Outbound authorisation for the FHIR server: none, a static bearer token, or SMART Backend
Services.

SMART Backend Services (https://hl7.org/fhir/smart-app-launch/backend-services.html): the client
POSTs ``grant_type=client_credentials`` to the token endpoint with a ``private_key_jwt`` client
assertion (https://hl7.org/fhir/smart-app-launch/client-confidential-asymmetric.html) signed
RS384 or ES384 (``iss`` = ``sub`` = client id, ``aud`` = token URL, ``exp`` at most five minutes
ahead, a unique ``jti``). There are no refresh tokens: the access token is cached until shortly
before ``expires_in`` runs out, then a new one is minted. One refresh runs at a time.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import anyio
import httpx
import jwt

from service.server.errors import UpstreamAuthError, UpstreamUnavailableError
from service.server.http import json_object

__all__ = [
    "ASSERTION_TYPE",
    "Auth",
    "BearerAuth",
    "NoAuth",
    "SmartBackendAuth",
    "SmartConfig",
]

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_ASSERTION_LIFETIME_S = 300  # the SMART maximum
_EXPIRY_MARGIN_S = 30.0  # refresh this long before the server's expiry
_DEFAULT_EXPIRES_IN_S = 300


class Auth(Protocol):
    """Supplies the Authorization header of FHIR server requests."""

    async def headers(self, http: httpx.AsyncClient) -> dict[str, str]:
        """Headers to add to a FHIR request (may fetch a token)."""
        ...

    def invalidate(self) -> None:
        """Forget a cached token (the server answered 401)."""
        ...


class NoAuth:
    """No Authorization header (an open test server)."""

    async def headers(self, http: httpx.AsyncClient) -> dict[str, str]:
        """No headers."""
        return {}

    def invalidate(self) -> None:
        """Nothing cached."""


@dataclass(frozen=True, slots=True)
class BearerAuth:
    """A static bearer token from the settings."""

    token: str

    async def headers(self, http: httpx.AsyncClient) -> dict[str, str]:
        """``Authorization: Bearer …``."""
        return {"Authorization": f"Bearer {self.token}"}

    def invalidate(self) -> None:
        """A static token cannot be renewed."""


@dataclass(frozen=True, slots=True)
class SmartConfig:
    """What SMART Backend Services needs; the key is PEM (RSA for RS384, EC P-384 for ES384)."""

    client_id: str
    token_url: str
    private_key_pem: bytes
    alg: str = "RS384"
    kid: str | None = None
    scope: str = "system/*.rs"


class SmartBackendAuth:
    """client_credentials with a private_key_jwt assertion; the token is cached until expiry."""

    def __init__(self, config: SmartConfig, *, clock: Callable[[], float] = time.time) -> None:
        if config.alg not in {"RS384", "ES384"}:
            raise ValueError(f"SMART alg must be RS384 or ES384, not {config.alg}")
        self.config = config
        self._clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = anyio.Lock()
        self.tokens_fetched = 0

    def assertion(self) -> str:
        """A freshly signed client assertion JWT."""
        now = int(self._clock())
        claims = {
            "iss": self.config.client_id,
            "sub": self.config.client_id,
            "aud": self.config.token_url,
            "iat": now,
            "exp": now + _ASSERTION_LIFETIME_S,
            "jti": str(uuid.uuid4()),
        }
        headers = {"typ": "JWT", **({"kid": self.config.kid} if self.config.kid else {})}
        return jwt.encode(
            claims, self.config.private_key_pem, algorithm=self.config.alg, headers=headers
        )

    async def headers(self, http: httpx.AsyncClient) -> dict[str, str]:
        """``Authorization: Bearer <access token>``, fetching a token when none is valid."""
        async with self._lock:
            if self._token is None or self._clock() >= self._expires_at:
                await self._fetch(http)
            return {"Authorization": f"Bearer {self._token}"}

    def invalidate(self) -> None:
        """Drop the cached token; the next request mints a new one."""
        self._token = None

    async def _fetch(self, http: httpx.AsyncClient) -> None:
        form = {
            "grant_type": "client_credentials",
            "scope": self.config.scope,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": self.assertion(),
        }
        url = self.config.token_url
        try:
            response = await http.post(url, data=form, headers={"Accept": "application/json"})
        except httpx.TransportError as exc:
            raise UpstreamUnavailableError(
                f"token endpoint unreachable ({type(exc).__name__})", request=("POST", url)
            ) from exc
        body = json_object(response)
        token = body.get("access_token")
        if response.status_code != 200 or not isinstance(token, str):
            reason = body.get("error_description") or body.get("error") or "no access_token"
            raise UpstreamAuthError(
                f"token request refused: {reason}",
                request=("POST", url),
                status=response.status_code,
            )
        expires_in = body.get("expires_in")
        lifetime = float(expires_in) if isinstance(expires_in, int | float) else 0.0
        lifetime = lifetime or _DEFAULT_EXPIRES_IN_S
        self._token = token
        self._expires_at = self._clock() + max(lifetime - _EXPIRY_MARGIN_S, lifetime / 2)
        self.tokens_fetched += 1
