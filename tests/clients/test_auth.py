"""Outbound auth: static bearer, SMART Backend Services (private_key_jwt, RS384/ES384, caching)."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qs

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fake_fhir_server import BASE, FakeFhirServer

from service.server.connection import ConfigurationError, auth_from_settings
from service.server.credentials import (
    ASSERTION_TYPE,
    BearerAuth,
    SmartBackendAuth,
    SmartConfig,
)
from service.server.errors import UpstreamAuthError
from service.server.fhir_server import ClientConfig, FhirServerClient
from service.settings import Settings

TOKEN_URL = "http://auth.test/token"  # noqa: S105 - a URL, not a secret


def _pem(key: Any) -> bytes:
    pem: bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return pem


@pytest.fixture(scope="module")
def keys() -> dict[str, Any]:
    """One RSA and one EC P-384 key pair."""
    return {
        "RS384": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ES384": ec.generate_private_key(ec.SECP384R1()),
    }


class Clock:
    """A settable clock."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class TokenServer:
    """A token endpoint plus the fake FHIR server, checking the Bearer token on FHIR calls."""

    def __init__(self, fhir: FakeFhirServer, *, expires_in: int = 300) -> None:
        self.fhir = fhir
        self.forms: list[dict[str, str]] = []
        self.expires_in = expires_in
        self.refuse = False

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.test":
            form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
            self.forms.append(form)
            if self.refuse:
                return httpx.Response(400, json={"error": "invalid_client"})
            token = f"token-{len(self.forms)}"
            return httpx.Response(200, json={"access_token": token, "token_type": "bearer",
                                             "expires_in": self.expires_in})  # fmt: skip
        if request.headers.get("authorization") != f"Bearer token-{len(self.forms)}":
            return httpx.Response(401)
        return self.fhir.handle(request)


def _smart(keys: dict[str, Any], alg: str, clock: Clock) -> SmartBackendAuth:
    config = SmartConfig(
        client_id="painpath", token_url=TOKEN_URL, private_key_pem=_pem(keys[alg]),
        alg=alg, kid="key-1", scope="system/*.rs",
    )  # fmt: skip
    return SmartBackendAuth(config, clock=clock)


def _reads(auth: Any, transport: httpx.MockTransport, clock: Clock, steps: list[float]) -> None:
    async def main() -> None:
        async with FhirServerClient(ClientConfig(BASE), auth=auth, transport=transport) as c:
            for step in steps:
                clock.now += step
                assert (await c.read("Patient", "patient-1"))["id"] == "patient-1"

    asyncio.run(main())


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
def test_smart_client_assertion_is_a_valid_private_key_jwt(
    keys: dict[str, Any], server: FakeFhirServer, alg: str
) -> None:
    clock = Clock()
    tokens = TokenServer(server)
    _reads(_smart(keys, alg, clock), httpx.MockTransport(tokens.handle), clock, [0])
    (form,) = tokens.forms
    assert form["grant_type"] == "client_credentials"
    assert form["scope"] == "system/*.rs"
    assert form["client_assertion_type"] == ASSERTION_TYPE
    header = jwt.get_unverified_header(form["client_assertion"])
    assert (header["alg"], header["kid"], header["typ"]) == (alg, "key-1", "JWT")
    claims = jwt.decode(
        form["client_assertion"], keys[alg].public_key(), algorithms=[alg], audience=TOKEN_URL,
        options={"verify_exp": False, "verify_iat": False},
    )  # fmt: skip
    assert claims["iss"] == claims["sub"] == "painpath"
    assert 0 < claims["exp"] - clock.now <= 300
    assert claims["jti"]


def test_smart_token_is_cached_until_it_expires(
    keys: dict[str, Any], server: FakeFhirServer
) -> None:
    clock = Clock()
    tokens = TokenServer(server, expires_in=300)
    auth = _smart(keys, "RS384", clock)
    _reads(auth, httpx.MockTransport(tokens.handle), clock, [0, 10, 200, 80])
    assert auth.tokens_fetched == 2  # minted at t=0, reused at 10 and 210, renewed at 290 (>270)
    jtis = {jwt.decode(f["client_assertion"], options={"verify_signature": False})["jti"]
            for f in tokens.forms}  # fmt: skip
    assert len(jtis) == 2


def test_a_401_drops_the_cached_token_and_retries_once(
    keys: dict[str, Any], server: FakeFhirServer
) -> None:
    clock = Clock()
    tokens = TokenServer(server)
    auth = _smart(keys, "ES384", clock)
    transport = httpx.MockTransport(tokens.handle)
    _reads(auth, transport, clock, [0])
    tokens.forms.append({})  # the server now expects token-2: the cached token-1 is revoked
    _reads(auth, transport, clock, [1])
    assert auth.tokens_fetched == 2


def test_a_refused_token_request_is_an_auth_error(
    keys: dict[str, Any], server: FakeFhirServer
) -> None:
    clock = Clock()
    tokens = TokenServer(server)
    tokens.refuse = True
    with pytest.raises(UpstreamAuthError, match="invalid_client"):
        _reads(_smart(keys, "RS384", clock), httpx.MockTransport(tokens.handle), clock, [0])


def test_static_bearer_token_is_sent(server: FakeFhirServer) -> None:
    seen: list[str | None] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return server.handle(request)

    _reads(BearerAuth("s3cret"), httpx.MockTransport(handle), Clock(), [0])
    assert seen == ["Bearer s3cret"]


def test_auth_settings_are_checked_at_start_up(tmp_path: Any, keys: dict[str, Any]) -> None:
    def settings(**values: Any) -> Settings:
        return Settings(_env_file=None, fhir_server=BASE, **values)

    with pytest.raises(ConfigurationError, match="PAINPATH_FHIR_TOKEN"):
        auth_from_settings(settings(fhir_auth="bearer"))
    with pytest.raises(ConfigurationError, match="SMART_CLIENT_ID"):
        auth_from_settings(settings(fhir_auth="smart-backend"))
    key = tmp_path / "key.pem"
    key.write_bytes(_pem(keys["ES384"]))
    auth = auth_from_settings(
        settings(
            fhir_auth="smart-backend",
            smart_client_id="c",
            smart_alg="ES384",
            smart_token_url=TOKEN_URL,
            smart_private_key_path=key,
        )
    )
    assert isinstance(auth, SmartBackendAuth)
    assert auth.config.alg == "ES384"
