"""Inbound auth of the FHIR API: none only on loopback; jwt with issuers/JWKS and SMART scopes,
401/403 as OperationOutcomes."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient
from fhir_testkit import CAUDA, case_bundle
from jwt.algorithms import RSAAlgorithm

from service.api.app import create_app
from service.api.jwt_verify import has_scope
from service.settings import Settings, check_bind

ISSUER = "https://auth.hospital.test"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER = ec.generate_private_key(ec.SECP384R1())


@pytest.fixture(scope="module")
def jwks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    public = json.loads(RSAAlgorithm.to_jwk(KEY.public_key()))
    path = tmp_path_factory.mktemp("jwks") / "jwks.json"
    path.write_text(json.dumps({"keys": [{**public, "kid": "k1", "use": "sig", "alg": "RS384"}]}))
    return path


@pytest.fixture(scope="module")
def client(jwks: Path) -> Iterator[TestClient]:
    settings = Settings(
        _env_file=None,
        fhir_server=None,
        auth_mode="jwt",
        auth_issuers={ISSUER: str(jwks)},
        auth_audience="https://painpath.test",
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def token(scope: str, *, key: Any = KEY, alg: str = "RS384", **claims: Any) -> str:
    # the parametrised tokens are made when pytest collects, which may be many minutes before
    # they are sent on a loaded 2-core CI machine: a day of validity, not five minutes
    now = int(time.time())
    body = {"iss": ISSUER, "aud": "https://painpath.test", "exp": now + 86_400, "iat": now,
            "sub": "engine-1", "scope": scope, **claims}  # fmt: skip
    return jwt.encode(body, key, algorithm=alg, headers={"kid": "k1"})


def post(client: TestClient, bearer: str | None) -> Any:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    return client.post("/fhir/$triage", json=case_bundle(CAUDA), headers=headers)


@pytest.mark.parametrize("scope", ["system/*.read", "user/*.read", "system/*.rs", "user/*.cruds"])
def test_read_scopes_are_accepted(client: TestClient, scope: str) -> None:
    assert post(client, token(scope)).status_code == 200


# Tokens are made when the test runs, not at collection: a suite longer than their 300 s
# lifetime would otherwise see "expired" where it expects another refusal.
@pytest.mark.parametrize(
    ("make", "status", "code"),
    [
        (lambda: None, 401, "login"),
        (lambda: "not-a-jwt", 401, "login"),
        (lambda: token("system/*.read", exp=int(time.time()) - 3600), 401, "expired"),
        (lambda: token("system/*.read", iss="https://evil.test"), 401, "login"),
        (lambda: token("system/*.read", aud="https://other.test"), 401, "login"),
        (lambda: token("system/*.read", key=OTHER, alg="ES384"), 401, "login"),
        (lambda: jwt.encode({"iss": ISSUER, "scope": "system/*.read"}, "k" * 32,
                            algorithm="HS256"), 401, "login"),
        (lambda: token("system/*.write"), 403, "forbidden"),
        (lambda: token("patient/*.read"), 403, "forbidden"),
        (lambda: token("system/Observation.read"), 403, "forbidden"),
    ],
)  # fmt: skip
def test_bad_tokens_are_refused_with_operation_outcome(
    client: TestClient, make: Callable[[], str | None], status: int, code: str
) -> None:
    bearer = make()
    answer = post(client, bearer)
    assert answer.status_code == status, answer.text
    (issue,) = answer.json()["issue"]
    assert issue["code"] == code
    if status == 401:
        assert answer.headers["www-authenticate"].startswith("Bearer")


def test_writeback_needs_the_write_scope(jwks: Path) -> None:
    # a FHIR server that is configured but does not answer: the scope is checked before it is
    # asked, so a read-only token is refused (403) and a writing one gets as far as the server
    # (502/504, it is down); without a FHIR server the 422 would come first and hide the check
    settings = Settings(
        _env_file=None,
        fhir_server="http://127.0.0.1:9/fhir",
        fhir_retries=0,
        auth_mode="jwt",
        auth_issuers={ISSUER: str(jwks)},
        auth_audience="https://painpath.test",
    )
    url = "/fhir/Patient/p1/$triage?writeback=true"
    with TestClient(create_app(settings)) as client:
        read_only = client.post(url, headers={"Authorization": f"Bearer {token('system/*.read')}"})
        assert read_only.status_code == 403
        assert "system/PainPath.write" in read_only.json()["issue"][0]["diagnostics"]
        both = token("system/*.read system/PainPath.write")
        answer = client.post(url, headers={"Authorization": f"Bearer {both}"})
        assert answer.status_code in (502, 504), answer.text
        reading = client.post(
            "/fhir/Patient/p1/$triage",
            headers={"Authorization": f"Bearer {token('system/*.read')}"},
        )
        assert reading.status_code in (502, 504)  # no write-back asked: no write scope needed


def test_metadata_and_probes_stay_open(client: TestClient) -> None:
    for path in ("/fhir/metadata", "/healthz", "/readyz", "/metrics"):
        assert client.get(path).status_code == 200, path


def test_none_is_refused_off_loopback() -> None:
    open_settings = Settings(_env_file=None, host="0.0.0.0")  # noqa: S104
    with pytest.raises(RuntimeError, match="only allowed on a loopback"):
        check_bind(open_settings)
    with pytest.raises(RuntimeError), TestClient(create_app(open_settings)):
        pass
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        check_bind(open_settings, host)
    check_bind(Settings(_env_file=None, host="0.0.0.0", auth_allow_none_off_loopback=True))  # noqa: S104
    with pytest.raises(RuntimeError, match="AUTH_ISSUERS"):
        check_bind(Settings(_env_file=None, auth_mode="jwt"))


def test_scope_grammar() -> None:
    assert has_scope({"scope": "openid system/*.read"}, "read")
    assert not has_scope({"scope": "system/*.write"}, "read")
    assert not has_scope({"scope": "system/*.cud"}, "read")
    assert has_scope({"scp": ["user/*.r"]}, "read")
    assert has_scope({"scope": "system/PainPath.write"}, "system/PainPath.write")


# Every operation that evaluates a patient sits behind the same door as $triage.
OPERATIONS = {
    "/fhir/PlanDefinition/back-pain-pathway/$apply": "data",
    "/fhir/Questionnaire/red-flag-screen/$populate": "data",
}


@pytest.mark.parametrize("path", sorted(OPERATIONS))
def test_apply_and_populate_need_a_token_with_a_read_scope(client: TestClient, path: str) -> None:
    body = {
        "resourceType": "Parameters",
        "parameter": [{"name": OPERATIONS[path], "resource": case_bundle(CAUDA)}],
    }
    refused = client.post(path, json=body)
    assert refused.status_code == 401
    assert refused.json()["issue"][0]["code"] == "login"
    wrong = client.post(path, json=body, headers={"Authorization": f"Bearer {token('x/y')}"})
    assert wrong.status_code == 403
    good = client.post(path, json=body, headers={"Authorization": f"Bearer {token('user/*.rs')}"})
    assert good.status_code == 200, good.text
