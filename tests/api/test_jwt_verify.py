"""The shared JWT verification core (service.api.jwt_verify) with a JWKS URL: cached, refetched
for an unknown kid at most every refresh_seconds, kid-less tokens only for a one-key issuer."""

from __future__ import annotations

import json
import time
from typing import Any

import anyio
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from service.api.jwt_verify import AuthError, JtiCache, JwtVerifier

ISSUER = "https://idp.test"
JWKS = "https://idp.test/jwks"
KEY = ec.generate_private_key(ec.SECP384R1())


def _verifier(requests: list[str], **options: Any) -> JwtVerifier:
    public = json.loads(ECAlgorithm.to_jwk(KEY.public_key()))

    def serve(request: httpx.Request) -> httpx.Response:
        requests.append(str(request.url))
        return httpx.Response(200, json={"keys": [{**public, "kid": "k1", "alg": "ES384"}]})

    return JwtVerifier({ISSUER: JWKS}, transport=httpx.MockTransport(serve), **options)


def _token(headers: dict[str, Any] | None = None, **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "exp": now + 300, "iat": now, "jti": str(time.time_ns()), **claims}
    return jwt.encode(body, KEY, algorithm="ES384", headers=headers)


def _verify(verifier: JwtVerifier, token: str) -> dict[str, Any]:
    return anyio.run(verifier.verify, token)


def test_url_jwks_is_cached_and_kidless_tokens_use_the_only_key() -> None:
    requests: list[str] = []
    verifier = _verifier(requests)
    assert _verify(verifier, _token({"kid": "k1"}))["iss"] == ISSUER
    assert _verify(verifier, _token())["iss"] == ISSUER
    assert requests == [JWKS]
    with pytest.raises(AuthError, match="kid") as refused:
        _verify(verifier, _token({"kid": "k2"}))  # refetch rate-limited: still one request
    assert (refused.value.status, refused.value.code) == (401, "login")
    assert requests == [JWKS]


def test_strict_settings_and_replay_cache() -> None:
    verifier = _verifier([], algorithms=("ES384",), require_kid=True, replay_cache=JtiCache(8))
    with pytest.raises(AuthError, match="no kid"):
        _verify(verifier, _token())
    token = _token({"kid": "k1"})
    _verify(verifier, token)
    with pytest.raises(AuthError, match="replay"):
        _verify(verifier, token)
    with pytest.raises(AuthError, match="jku"):
        _verify(verifier, _token({"kid": "k1", "jku": "https://evil.test/jwks"}))
    with pytest.raises(ValueError, match="asymmetric"):
        JwtVerifier({}, algorithms=("HS256",))
