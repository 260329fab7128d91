"""CDS Hooks 2.0 client authentication: the JWT every call carries (spec "Trusting CDS Clients").

Checks, in order, each failure a :class:`CdsAuthError` (401, a short reason, never the token):

1. ``Authorization: Bearer <jwt>``; header ``alg`` ES384 or RS384 (``none``/HMAC refused),
   ``kid`` present, ``typ`` JWT when given;
2. ``iss`` on the allow-list (``cds_issuers``: iss -> JWKS URL) *before* any key is fetched; a
   ``jku`` header must equal that issuer's JWKS URL (no fetching from a caller-chosen URL);
3. the signature, with the key of that ``kid`` from the issuer's JWKS: cached, re-fetched once
   when a ``kid`` is unknown (at most every ``cds_jwks_refresh_seconds``, so unknown kids cannot
   make PainPath hammer the JWKS host);
4. ``aud`` equal to the invoked service URL, ``exp`` not passed, ``iat`` present and not in the
   future beyond the leeway, ``jti`` present and not seen before (a bounded in-memory cache kept
   until the token's expiry). ``sub``/``tenant`` are accepted, not required.

The JWKS is read with httpx (transport injectable for tests). Nothing here logs tokens.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import anyio
import httpx
import jwt
from jwt import PyJWK, PyJWKSet

__all__ = ["ALGORITHMS", "CdsAuthError", "CdsJwtVerifier", "JtiCache"]

ALGORITHMS = ("ES384", "RS384")
_JWKS_TIMEOUT_S = 5.0


class CdsAuthError(Exception):
    """A rejected CDS Hooks client token (401)."""


class JtiCache:
    """Seen ``(iss, jti)`` pairs until their token expires; bounded (oldest dropped first)."""

    def __init__(self, size: int, clock: Callable[[], float] = time.time) -> None:
        self.size = size
        self._clock = clock
        self._seen: OrderedDict[tuple[str, str], float] = OrderedDict()

    def add(self, issuer: str, jti: str, expires: float) -> bool:
        """Record a jti; False when it was already seen (a replay)."""
        now = self._clock()
        while self._seen and next(iter(self._seen.values())) < now:
            self._seen.popitem(last=False)
        key = (issuer, jti)
        if key in self._seen and self._seen[key] >= now:
            return False
        self._seen[key] = expires
        self._seen.move_to_end(key)
        while len(self._seen) > self.size:
            self._seen.popitem(last=False)
        return True


class _Jwks:
    """One issuer's key set, cached."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.keys: dict[str, PyJWK] = {}
        self.fetched_at: float | None = None
        self.lock = anyio.Lock()


class CdsJwtVerifier:
    """Verifies CDS client JWTs for an allow-list of issuers."""

    def __init__(
        self,
        issuers: Mapping[str, str],
        *,
        leeway: int = 60,
        jti_cache_size: int = 10_000,
        refresh_seconds: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._jwks = {iss: _Jwks(url) for iss, url in issuers.items()}
        self.leeway = leeway
        self.refresh_seconds = refresh_seconds
        self.transport = transport
        self._clock: Callable[[], float] = time.time
        self.jtis = JtiCache(jti_cache_size, lambda: self._clock())

    async def verify(self, authorization: str | None, audiences: list[str]) -> dict[str, Any]:
        """The verified claims of the ``Authorization`` header value, for one of ``audiences``."""
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise CdsAuthError("A bearer JWT is required (Authorization: Bearer <jwt>)")
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise CdsAuthError("The bearer token is not a well-formed JWT") from exc
        if header.get("alg") not in ALGORITHMS:
            raise CdsAuthError("The token's alg must be ES384 or RS384")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise CdsAuthError("The token header has no kid")
        if header.get("typ", "JWT").upper() != "JWT":
            raise CdsAuthError("The token header typ must be JWT")
        issuer = unverified.get("iss")
        jwks = self._jwks.get(issuer) if isinstance(issuer, str) else None
        if jwks is None:
            raise CdsAuthError("The token issuer is not allowed")
        if "jku" in header and header["jku"] != jwks.url:
            raise CdsAuthError("The token's jku is not the allowed JWKS URL of its issuer")
        key = await self._key(jwks, kid)
        claims = self._decode(token, key, str(header["alg"]), str(issuer), audiences)
        if not self.jtis.add(str(issuer), str(claims["jti"]), float(claims["exp"]) + self.leeway):
            raise CdsAuthError("The token's jti was already used (replay)")
        return claims

    def _decode(
        self, token: str, key: PyJWK, alg: str, issuer: str, audiences: list[str]
    ) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                issuer=issuer,
                audience=audiences,
                leeway=self.leeway,
                options={"require": ["iss", "aud", "exp", "iat", "jti"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise CdsAuthError("The token has expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise CdsAuthError("The token's iat (or nbf) is in the future") from exc
        except jwt.InvalidAudienceError as exc:
            raise CdsAuthError("The token's aud is not this service's URL") from exc
        except jwt.InvalidSignatureError as exc:
            raise CdsAuthError("The token signature does not verify") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise CdsAuthError(f"The token lacks the {exc.claim} claim") from exc
        except jwt.PyJWTError as exc:
            raise CdsAuthError(f"The token was rejected ({type(exc).__name__})") from exc
        iat = claims.get("iat")
        if not isinstance(iat, int | float) or iat > self._clock() + self.leeway:
            raise CdsAuthError("The token's iat is in the future")
        return claims

    async def _key(self, jwks: _Jwks, kid: str) -> PyJWK:
        if kid in jwks.keys:
            return jwks.keys[kid]
        async with jwks.lock:
            recent = (
                jwks.fetched_at is not None
                and self._clock() - jwks.fetched_at < self.refresh_seconds
            )
            if kid not in jwks.keys and not recent:
                jwks.keys = await self._fetch(jwks.url)
                jwks.fetched_at = self._clock()
        if kid not in jwks.keys:
            raise CdsAuthError("No key of the issuer's JWKS matches the token's kid")
        return jwks.keys[kid]

    async def _fetch(self, url: str) -> dict[str, PyJWK]:
        try:
            async with httpx.AsyncClient(
                transport=self.transport, timeout=_JWKS_TIMEOUT_S, trust_env=False
            ) as http:
                response = await http.get(url, headers={"Accept": "application/json"})
                response.raise_for_status()
                keyset = PyJWKSet.from_dict(response.json())
        except (httpx.HTTPError, ValueError, jwt.PyJWTError) as exc:
            raise CdsAuthError("The issuer's JWKS could not be read") from exc
        return {k.key_id: k for k in keyset.keys if k.key_id}
