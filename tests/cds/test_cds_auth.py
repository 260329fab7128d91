"""Client JWT verification (CDS Hooks 2.0 "Trusting CDS Clients"): a test client signs with its own
EC P-384 (ES384) and RSA (RS384) keys, served from a local JWKS endpoint (MockTransport)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from cds_testkit import (
    SERVICE_BASE,
    CdsClient,
    case_patient_id,
    case_resources,
    hook_request,
    load_case,
    prefetch_for,
)
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.testclient import TestClient

from service.settings import Settings

Json = dict[str, Any]
PV = "/cds-services/painpath-patient-view"
AUD = SERVICE_BASE + PV


def _body() -> Json:
    case = load_case("deficit-progressing-stat")
    return hook_request(
        "patient-view", case_patient_id(case), prefetch=prefetch_for(case_resources(case))
    )


def _post(client: TestClient, token: str | None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post(PV, json=_body(), headers=headers)


@pytest.fixture
def secured(make_app: Any) -> Any:
    with make_app(auth=True) as client:
        yield client


@pytest.mark.parametrize("alg", ["ES384", "RS384"])
def test_signed_requests_are_accepted(
    secured: TestClient, cds_client_keys: CdsClient, alg: str
) -> None:
    response = _post(secured, cds_client_keys.token(AUD, alg=alg))
    assert response.status_code == 200, response.text
    assert response.json()["cards"][0]["indicator"] == "critical"
    discovery = secured.get(
        "/cds-services",
        headers={
            "Authorization": f"Bearer {cds_client_keys.token(SERVICE_BASE + '/cds-services')}"
        },
    )
    assert discovery.status_code == 200


def _rejected(response: Any, words: str) -> None:
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["error"] == "invalid_token"
    assert words in body["error_description"]
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_missing_token(secured: TestClient) -> None:
    _rejected(_post(secured, None), "bearer JWT is required")
    _rejected(secured.get("/cds-services"), "bearer JWT is required")


def test_wrong_issuer(secured: TestClient, cds_client_keys: CdsClient) -> None:
    token = cds_client_keys.token(AUD, claims={"iss": "https://evil.example.org"})
    _rejected(_post(secured, token), "issuer is not allowed")


def test_expired(secured: TestClient, cds_client_keys: CdsClient) -> None:
    past = int(time.time()) - 3600
    token = cds_client_keys.token(AUD, claims={"exp": past, "iat": past - 300})
    _rejected(_post(secured, token), "expired")


def test_iat_in_the_future(secured: TestClient, cds_client_keys: CdsClient) -> None:
    later = int(time.time()) + 3600
    token = cds_client_keys.token(AUD, claims={"iat": later, "exp": later + 300})
    _rejected(_post(secured, token), "iat")


def test_replayed_jti(secured: TestClient, cds_client_keys: CdsClient) -> None:
    token = cds_client_keys.token(AUD)
    assert _post(secured, token).status_code == 200
    _rejected(_post(secured, token), "replay")


def test_bad_signature(secured: TestClient, cds_client_keys: CdsClient) -> None:
    stranger = ec.generate_private_key(ec.SECP384R1())
    _rejected(_post(secured, cds_client_keys.token(AUD, key=stranger)), "signature")


def test_wrong_audience(secured: TestClient, cds_client_keys: CdsClient) -> None:
    token = cds_client_keys.token(SERVICE_BASE + "/cds-services/painpath-order-sign")
    _rejected(_post(secured, token), "aud")


def test_missing_claims_and_bad_headers(secured: TestClient, cds_client_keys: CdsClient) -> None:
    _rejected(_post(secured, cds_client_keys.token(AUD, claims={"jti": None})), "jti")
    _rejected(_post(secured, cds_client_keys.token(AUD, alg="RS256")), "ES384 or RS384")
    token = cds_client_keys.token(AUD, headers={"jku": "https://evil.example.org/jwks"})
    _rejected(_post(secured, token), "jku")
    _rejected(_post(secured, "not-a-jwt"), "well-formed")


def test_unknown_kid_refreshes_the_jwks(make_app: Any, cds_client_keys: CdsClient) -> None:
    with make_app(auth=True, cds_jwks_refresh_seconds=0) as client:
        assert _post(client, cds_client_keys.token(AUD)).status_code == 200
        fetched = cds_client_keys.jwks_requests
        rotated = ec.generate_private_key(ec.SECP384R1())
        cds_client_keys.published["ec-2"] = rotated.public_key()
        try:
            token = cds_client_keys.token(AUD, kid="ec-2", key=rotated)
            assert _post(client, token).status_code == 200
            assert cds_client_keys.jwks_requests == fetched + 1
            _rejected(_post(client, cds_client_keys.token(AUD, kid="ec-9")), "kid")
        finally:
            del cds_client_keys.published["ec-2"]


def test_auth_is_on_by_default_off_loopback() -> None:
    assert Settings(_env_file=None).cds_auth_required is False
    remote = Settings(_env_file=None, host="0.0.0.0")  # noqa: S104
    assert remote.cds_auth_required is True
    explicit = Settings(_env_file=None, host="0.0.0.0", cds_auth=False)  # noqa: S104
    assert explicit.cds_auth_required is False
