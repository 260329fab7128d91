"""Bearer JWT verification against an allow-list of issuers, each with its own JWKS.

The one verification core of PainPath: the FHIR API's inbound auth (``service.api.access``) and
the CDS Hooks client auth (``service.api.cds_hooks``, spec "Trusting CDS Clients") are two
configurations of :class:`JwtVerifier`. ``await verifier.verify(token)`` (or
``verify_authorization(header)``) returns the claims or raises :class:`AuthError` (401, issue
code ``expired`` or ``login``, a short reason, never the token). Checks, in order:

1. the header ``alg`` is one of ``algorithms`` (asymmetric only: ``none`` and HMAC are never
   accepted, so a public key can never be used as an HMAC secret); ``kid`` present when
   ``require_kid``; ``typ`` equal to ``typ`` when both are given;
2. ``iss`` on the allow-list *before* any key is fetched; a ``jku`` header must equal that
   issuer's JWKS URL (no fetching from a URL a caller chose);
3. the signature, with the issuer's key of that ``kid`` (no ``kid``: the issuer's only key). A
   JWKS is an ``https://``/``http://`` URL read with httpx (transport injectable for tests),
   cached for ``jwks_max_age`` seconds and re-fetched once when a ``kid`` is unknown, at most
   every ``refresh_seconds`` (unknown kids cannot make PainPath hammer the JWKS host), or a
   local JSON file read once;
4. the ``required`` claims present, ``exp``/``nbf``/``iat`` with ``leeway`` seconds (``iat`` not
   in the future), ``aud`` one of the audiences when any are configured or passed, and with a
   :class:`JtiCache` the ``jti`` not seen before (kept until the token's expiry);
5. with ``tenants`` (CDS Hooks best practice, checklist item 4) a ``tenant`` claim that is one of
   them - checked after the signature and before the ``jti`` is recorded, so a refused token does
   not use up its ``jti``. Without ``tenants`` the claim is not looked at.

Nothing here logs the token or its claims.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio
import jwt
from jwt import PyJWK, PyJWKSet

from service.server.http import FetchError, Transport, get_json

__all__ = ["ALGORITHMS", "AuthError", "JtiCache", "JwtVerifier", "has_scope"]

ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384")


class AuthError(Exception):
    """The request is not authorised: ``status`` 401 or 403, ``code`` an issue code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _refused(message: str, code: str = "login") -> AuthError:
    return AuthError(401, code, message)


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
    """One issuer's key set: from a URL (cached, refetched) or a file (read once)."""

    def __init__(self, source: str) -> None:
        self.url = source if source.startswith(("https://", "http://")) else None
        self.keys: list[PyJWK] = []
        self.fetched_at: float | None = None
        self.lock = anyio.Lock()
        if self.url is None:
            text = Path(source.removeprefix("file://")).read_text(encoding="utf-8")
            self.keys = list(PyJWKSet.from_json(text).keys)

    def match(self, kid: str | None) -> list[PyJWK]:
        return [k for k in self.keys if kid is None or k.key_id == kid]


class JwtVerifier:
    """Verifies bearer JWTs from ``issuers`` (issuer -> JWKS URL or file path)."""

    def __init__(  # noqa: PLR0913 - one keyword per policy knob
        self,
        issuers: Mapping[str, str],
        *,
        algorithms: Sequence[str] = ALGORITHMS,
        required: Sequence[str] = ("exp", "iss"),
        audience: str | Sequence[str] | None = None,
        leeway: int = 30,
        require_kid: bool = False,
        typ: str | None = None,
        replay_cache: JtiCache | None = None,
        tenants: Collection[str] = (),
        refresh_seconds: float = 10.0,
        jwks_max_age: float = 300.0,
        jwks_timeout: float = 5.0,
        transport: Transport | None = None,
    ) -> None:
        if not set(algorithms) <= set(ALGORITHMS):
            raise ValueError(f"Only asymmetric algorithms can be accepted: {ALGORITHMS}")
        self.algorithms = tuple(algorithms)
        self.required = tuple(dict.fromkeys([*required, *(["jti"] if replay_cache else [])]))
        self.audience = audience
        self.leeway = leeway
        self.require_kid = require_kid
        self.typ = typ
        self.replay_cache = replay_cache
        self.tenants = frozenset(tenants)
        self.refresh_seconds = refresh_seconds
        self.jwks_max_age = jwks_max_age
        self.jwks_timeout = jwks_timeout
        self.transport = transport
        self._clock: Callable[[], float] = time.time
        self._jwks = {issuer: _Jwks(source) for issuer, source in issuers.items()}

    async def verify_authorization(
        self, authorization: str | None, audience: str | Sequence[str] | None = None
    ) -> dict[str, Any]:
        """The verified claims of an ``Authorization: Bearer <jwt>`` header value."""
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise _refused("A bearer JWT is required (Authorization: Bearer <jwt>)")
        return await self.verify(token, audience)

    async def verify(
        self, token: str, audience: str | Sequence[str] | None = None
    ) -> dict[str, Any]:
        """The verified claims; ``audience`` (else the configured one) must match ``aud``."""
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise _refused("The bearer token is not a well-formed JWT") from exc
        alg = header.get("alg")
        if alg not in self.algorithms:
            raise _refused(f"The token's alg must be {' or '.join(self.algorithms)}")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise _refused("The token header kid is not a string")
        if self.require_kid and not kid:
            raise _refused("The token header has no kid")
        if self.typ is not None and str(header.get("typ", self.typ)).upper() != self.typ.upper():
            raise _refused(f"The token header typ must be {self.typ}")
        issuer = unverified.get("iss")
        jwks = self._jwks.get(issuer) if isinstance(issuer, str) else None
        if jwks is None:
            raise _refused("The token issuer is not allowed")
        if "jku" in header and jwks.url is not None and header["jku"] != jwks.url:
            raise _refused("The token's jku is not the allowed JWKS URL of its issuer")
        key = await self._key(jwks, kid or None)
        claims = self._decode(token, key, str(alg), str(issuer), audience or self.audience)
        self._check_tenant(claims)
        if self.replay_cache is not None and not self.replay_cache.add(
            str(issuer), str(claims["jti"]), float(claims["exp"]) + self.leeway
        ):
            raise _refused("The token's jti was already used (replay)")
        return claims

    def _check_tenant(self, claims: Mapping[str, Any]) -> None:
        """With a tenant allow-list, the ``tenant`` claim must be on it (never echoed back)."""
        if not self.tenants:
            return
        tenant = claims.get("tenant")
        if tenant is None:
            raise _refused("The token lacks the tenant claim")
        if not isinstance(tenant, str) or tenant not in self.tenants:
            raise _refused("The token's tenant is not allowed")

    def _decode(
        self,
        token: str,
        key: PyJWK,
        alg: str,
        issuer: str,
        audience: str | Sequence[str] | None,
    ) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                issuer=issuer,
                audience=audience,
                leeway=self.leeway,
                options={"require": list(self.required), "verify_aud": audience is not None},
            )
        except jwt.ExpiredSignatureError as exc:
            raise _refused("The token has expired", "expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise _refused("The token's iat (or nbf) is in the future") from exc
        except jwt.InvalidAudienceError as exc:
            raise _refused("The token's aud is not this service's URL") from exc
        except jwt.InvalidSignatureError as exc:
            raise _refused("The token signature does not verify") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise _refused(f"The token lacks the {exc.claim} claim") from exc
        except jwt.PyJWTError as exc:
            raise _refused(f"The token was rejected ({type(exc).__name__})") from exc
        iat = claims.get("iat")
        if iat is not None and (
            not isinstance(iat, int | float) or iat > self._clock() + self.leeway
        ):
            raise _refused("The token's iat is in the future")
        return claims

    async def _key(self, jwks: _Jwks, kid: str | None) -> PyJWK:
        if jwks.url is not None and (len(jwks.match(kid)) != 1 or self._stale(jwks)):
            async with jwks.lock:
                if len(jwks.match(kid)) != 1 or self._stale(jwks):
                    recent = (
                        jwks.fetched_at is not None
                        and self._clock() - jwks.fetched_at < self.refresh_seconds
                    )
                    if not recent:
                        jwks.keys = await self._fetch(jwks.url)
                        jwks.fetched_at = self._clock()
        keys = jwks.match(kid)
        if len(keys) != 1:
            if kid is None:
                raise _refused("The token has no kid and the issuer has no single key")
            raise _refused("No key of the issuer's JWKS matches the token's kid")
        return keys[0]

    def _stale(self, jwks: _Jwks) -> bool:
        return jwks.fetched_at is None or self._clock() - jwks.fetched_at >= self.jwks_max_age

    async def _fetch(self, url: str) -> list[PyJWK]:
        try:
            document = await get_json(url, transport=self.transport, timeout=self.jwks_timeout)
            keyset = PyJWKSet.from_dict(document)
        except (FetchError, ValueError, jwt.PyJWTError) as exc:
            raise _refused("The issuer's JWKS could not be read") from exc
        return list(keyset.keys)


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
