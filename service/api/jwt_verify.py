"""Bearer JWT verification against an allow-list of issuers, each with its own JWKS.

Shared by the FHIR API's inbound auth (``service.api.auth``) and meant for the CDS Hooks side
too. ``JwtVerifier.verify(token)`` returns the claims or raises :class:`AuthError` (401 for a
missing/bad/expired token, 403 for a valid token lacking a scope). Rules:

* only asymmetric algorithms (RS256/384/512, ES256/384/512, PS256/384); ``none`` and HMAC are
  refused, so a public key can never be used as an HMAC secret;
* ``iss`` must be in the allow-list *before* any key is fetched (no fetching from a URL a
  caller chose), and the key comes from that issuer's JWKS: an ``https://``/``http://`` URL
  (cached by PyJWT's ``PyJWKClient``, refetched on an unknown ``kid``) or a local JSON file;
* ``exp`` is required, ``nbf``/``iat`` honoured with ``leeway`` seconds; ``aud`` checked when an
  audience is configured.

Nothing here logs the token or its claims.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from jwt import PyJWK, PyJWKClient, PyJWKSet

__all__ = ["ALGORITHMS", "AuthError", "JwtVerifier", "has_scope"]

ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384")


class AuthError(Exception):
    """The request is not authorised: ``status`` 401 or 403, ``code`` an issue code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass
class _Keys:
    source: str
    client: PyJWKClient | None = None
    keyset: PyJWKSet | None = None

    def key_for(self, kid: str | None) -> PyJWK:
        if self.client is not None:
            if kid is None:
                keys = self.client.get_signing_keys()
                if len(keys) != 1:
                    raise AuthError(401, "login", "Token has no 'kid' and the issuer has many keys")
                return keys[0]
            return self.client.get_signing_key(kid)
        assert self.keyset is not None  # noqa: S101 - one of the two is always set
        keys = [k for k in self.keyset.keys if kid is None or k.key_id == kid]
        if len(keys) != 1:
            raise AuthError(401, "login", "No signing key of the issuer matches the token")
        return keys[0]


class JwtVerifier:
    """Verifies bearer JWTs from ``issuers`` (issuer -> JWKS URL or file path)."""

    def __init__(
        self,
        issuers: Mapping[str, str],
        *,
        audience: str | None = None,
        leeway: int = 30,
        jwks_timeout: float = 5.0,
    ) -> None:
        self.audience = audience
        self.leeway = leeway
        self._keys: dict[str, _Keys] = {}
        for issuer, source in issuers.items():
            if source.startswith(("https://", "http://")):
                client = PyJWKClient(source, cache_keys=True, lifespan=300, timeout=jwks_timeout)
                self._keys[issuer] = _Keys(source, client=client)
            else:
                text = Path(source.removeprefix("file://")).read_text(encoding="utf-8")
                self._keys[issuer] = _Keys(source, keyset=PyJWKSet.from_json(text))

    def verify(self, token: str) -> dict[str, Any]:
        """The verified claims; AuthError(401) when the token cannot be trusted."""
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise AuthError(401, "login", "Bearer token is not a well-formed JWT") from exc
        if header.get("alg") not in ALGORITHMS:
            raise AuthError(401, "login", "Token algorithm is not accepted")
        issuer = unverified.get("iss")
        keys = self._keys.get(issuer) if isinstance(issuer, str) else None
        if keys is None:
            raise AuthError(401, "login", "Token issuer is not trusted")
        try:
            key = keys.key_for(header.get("kid"))
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=list(ALGORITHMS),
                issuer=issuer,
                audience=self.audience,
                leeway=self.leeway,
                options={"require": ["exp", "iss"], "verify_aud": self.audience is not None},
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthError(401, "expired", "Bearer token has expired") from exc
        except jwt.PyJWKClientError as exc:
            raise AuthError(401, "login", "No signing key of the issuer matches the token") from exc
        except jwt.PyJWTError as exc:
            raise AuthError(401, "login", f"Bearer token rejected: {type(exc).__name__}") from exc
        return claims


def _granted(scope: str) -> tuple[str, str, str] | None:
    """(context, resource type, permissions) of a SMART scope such as ``system/*.read``."""
    context, _, rest = scope.partition("/")
    resource, _, permissions = rest.partition(".")
    if not context or not resource or not permissions:
        return None
    return context, resource, permissions.split("?", 1)[0]


def _v2_read(permissions: str) -> bool:
    """SMART v2 permissions (a subset of ``cruds``) that include read."""
    return "r" in permissions and set(permissions) <= set("cruds")


def has_scope(claims: Mapping[str, Any], wanted: str) -> bool:
    """Whether the token's ``scope`` grants ``wanted``.

    ``wanted`` is ``"read"`` (any of ``system/*.read``, ``user/*.read``, their SMART v2 forms
    ``*.r``/``*.rs``/``*.cruds`` and ``*.*``) or an exact scope string (the write scope).
    """
    raw = claims.get("scope") or claims.get("scp") or ""
    scopes = raw.split() if isinstance(raw, str) else [str(s) for s in raw]
    if wanted != "read":
        return wanted in scopes
    for scope in scopes:
        parts = _granted(scope)
        if parts is None:
            continue
        context, resource, permissions = parts
        if (
            context in ("system", "user")
            and resource == "*"
            and (permissions in ("read", "*") or _v2_read(permissions))
        ):
            return True
    return False
