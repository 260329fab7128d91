"""Who PainPath trusts on a CDS Hooks call (CDS Hooks 2.0 security and the best practice checklist):

- the client's ``tenant`` claim against ``cds_tenants`` (401 without detail when not listed);
- the request's ``fhirServer`` against ``cds_fhir_servers`` before the ``fhirAuthorization`` token
  is sent anywhere (an untrusted server is never contacted: 412 when data is missing, the usual
  cards when the prefetch is complete); an empty list trusts any server only with client auth off;
- ``cds_fhir_servers`` entries: https, or http on loopback only (FHIR-28655).

The fake FHIR server behind ``httpx.MockTransport`` answers for every host, so ``requests == []``
proves that nothing was sent anywhere.
"""

from __future__ import annotations

import logging
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
from fake_fhir_server import BASE, FakeFhirServer
from pydantic import ValidationError
from starlette.testclient import TestClient

from service.cds_hooks.request import fhir_server_allowed, under_fhir_base
from service.settings import Settings

Json = dict[str, Any]
PV = "/cds-services/painpath-patient-view"
AUD = SERVICE_BASE + PV
CASE = "deficit-progressing-stat"
EHR_FHIR = "https://ehr.example.org/fhir"
FHIR_TOKEN = "fhir-access-token-5f3a"  # noqa: S105 - fhirAuthorization, must not leak


def _case() -> Json:
    return load_case(CASE)


def _server(base: str = EHR_FHIR) -> FakeFhirServer:
    server = FakeFhirServer(base=base.rstrip("/"), link_base=base.rstrip("/"))
    for resource in case_resources(_case()):
        server.add(resource)
    return server


def _body(fhir_server: str | None = None, *, prefetch: Json | None = None) -> Json:
    return hook_request(
        "patient-view",
        case_patient_id(_case()),
        prefetch=prefetch,
        fhir_server=fhir_server,
        bearer=FHIR_TOKEN if fhir_server else None,
    )


def _full_prefetch() -> Json:
    return prefetch_for(case_resources(_case()))


def _post(client: TestClient, body: Json, keys: CdsClient | None, **claims: Any) -> Any:
    """POST the hook call, signed by ``keys`` (with extra JWT ``claims``) when given."""
    headers = {"Authorization": f"Bearer {keys.token(AUD, claims=claims)}"} if keys else {}
    return client.post(PV, json=body, headers=headers)


def _not_allowed(response: Any) -> None:
    """A 412 OperationOutcome naming the allow-list setting, and never the token."""
    assert response.status_code == 412, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    text = outcome["issue"][0]["diagnostics"]
    assert "not on PainPath's allow-list" in text
    assert "PAINPATH_CDS_FHIR_SERVERS" in text
    assert "not contacted" in text
    assert FHIR_TOKEN not in response.text


def _rejected(response: Any, words: str) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_token"
    assert words in response.json()["error_description"]
    assert response.headers["www-authenticate"].startswith("Bearer")


# --- tenant allow-list ------------------------------------------------------------------------
@pytest.fixture
def tenanted(make_app: Any) -> Any:
    with make_app(auth=True, cds_tenants=["hospital-a", "hospital-b"]) as client:
        yield client


@pytest.mark.parametrize("tenant", ["hospital-a", "hospital-b"])
def test_listed_tenant_is_accepted(
    tenanted: TestClient, cds_client_keys: CdsClient, tenant: str
) -> None:
    response = _post(tenanted, _body(prefetch=_full_prefetch()), cds_client_keys, tenant=tenant)
    assert response.status_code == 200, response.text
    assert response.json()["cards"][0]["indicator"] == "critical"


def test_missing_tenant_is_rejected(tenanted: TestClient, cds_client_keys: CdsClient) -> None:
    _rejected(_post(tenanted, _body(prefetch=_full_prefetch()), cds_client_keys), "tenant")
    token = cds_client_keys.token(SERVICE_BASE + "/cds-services")
    _rejected(tenanted.get("/cds-services", headers={"Authorization": f"Bearer {token}"}), "tenant")


@pytest.mark.parametrize("tenant", ["hospital-z", "HOSPITAL-A", "", ["hospital-a"], 7])
def test_unlisted_tenant_is_rejected_without_echoing_it(
    tenanted: TestClient, cds_client_keys: CdsClient, tenant: Any
) -> None:
    response = _post(tenanted, _body(prefetch=_full_prefetch()), cds_client_keys, tenant=tenant)
    _rejected(response, "tenant is not allowed")
    if isinstance(tenant, str) and tenant:
        assert tenant not in response.text


def test_refused_tenant_does_not_use_up_the_jti(make_app: Any, cds_client_keys: CdsClient) -> None:
    """The tenant check comes before the replay cache records the jti."""
    body = _body(prefetch=_full_prefetch())
    with make_app(auth=True, cds_tenants=["hospital-a"]) as client:
        refused = _post(client, body, cds_client_keys, jti="jti-1", tenant="hospital-z")
        _rejected(refused, "tenant")
        accepted = _post(client, body, cds_client_keys, jti="jti-1", tenant="hospital-a")
        assert accepted.status_code == 200, accepted.text
        _rejected(_post(client, body, cds_client_keys, jti="jti-1", tenant="hospital-a"), "replay")


@pytest.mark.parametrize("claims", [{}, {"tenant": "anything"}])
def test_empty_tenant_list_ignores_the_tenant(
    make_app: Any, cds_client_keys: CdsClient, claims: Json
) -> None:
    with make_app(auth=True) as client:
        response = _post(client, _body(prefetch=_full_prefetch()), cds_client_keys, **claims)
    assert response.status_code == 200, response.text


def test_tenant_is_logged_but_never_the_jwt(
    tenanted: TestClient, cds_client_keys: CdsClient, caplog: pytest.LogCaptureFixture
) -> None:
    token = cds_client_keys.token(AUD, claims={"tenant": "hospital-a"})
    with caplog.at_level(logging.DEBUG):
        response = tenanted.post(
            PV, json=_body(prefetch=_full_prefetch()), headers={"Authorization": f"Bearer {token}"}
        )
    assert response.status_code == 200
    assert any("tenant='hospital-a'" in r.getMessage() for r in caplog.records)
    assert all(token not in r.getMessage() for r in caplog.records)


# --- fhirServer allow-list: the matching rules -----------------------------------------------
@pytest.mark.parametrize(
    "fhir_server",
    [
        "https://ehr.example.org/fhir",
        "https://ehr.example.org/fhir/",
        "https://ehr.example.org/fhir/r4",
        "HTTPS://EHR.Example.ORG:443/fhir",
    ],
)
def test_allowed_fhir_servers_match(fhir_server: str) -> None:
    assert fhir_server_allowed(fhir_server, [EHR_FHIR])
    assert fhir_server_allowed(fhir_server, [EHR_FHIR + "/"])


UNTRUSTED = [
    "https://ehr.example.org/fhirx",  # prefix trick: not on a path boundary
    "https://ehr.example.org.evil.com/fhir",  # suffix-host trick
    "https://other.example.org/fhir",  # another host
    "http://ehr.example.org/fhir",  # scheme downgrade
    "https://ehr.example.org:8443/fhir",  # another port
    "https://ehr.example.org/FHIR",  # paths are case-sensitive
    "https://ehr.example.org/",  # above the listed base
    "https://ehr.example.org/fhir/../admin",  # dot segments
    "https://ehr.example.org/fhir/%2e%2e/admin",
    "https://ehr.example.org/fhir%2fr4",  # encoded slash
    "https://ehr.example.org@evil.com/fhir",  # userinfo trick: the host is evil.com
    "https://user@ehr.example.org/fhir",  # credentials
    "https://ehr.example.org/fhir?x=1",  # a base has no query
    "https://ehr.example.org/fhir#frag",
    "https://ehr.exa\tmple.org/fhir",  # urlsplit drops the tab
    "https://[::1/fhir",  # malformed
]


@pytest.mark.parametrize("fhir_server", UNTRUSTED)
def test_untrusted_fhir_servers_do_not_match(fhir_server: str) -> None:
    assert not fhir_server_allowed(fhir_server, [EHR_FHIR])
    assert not fhir_server_allowed(fhir_server, [])


def test_next_links_must_stay_under_the_base() -> None:
    assert under_fhir_base(EHR_FHIR + "/Observation?patient=1&_page=2", EHR_FHIR)
    assert under_fhir_base(EHR_FHIR + "?_getpages=abc", EHR_FHIR + "/")
    assert not under_fhir_base("https://evil.com/fhir/Observation?patient=1", EHR_FHIR)
    assert not under_fhir_base(EHR_FHIR + "x/Observation", EHR_FHIR)


# --- fhirServer allow-list: the hook calls ---------------------------------------------------
@pytest.mark.parametrize(
    "fhir_server",
    [EHR_FHIR, EHR_FHIR + "/", EHR_FHIR + "/r4", "https://EHR.example.org:443/fhir"],
)
def test_trusted_fhir_server_is_read_with_the_token(
    make_app: Any, cds_client_keys: CdsClient, fhir_server: str
) -> None:
    server = _server(fhir_server)
    with make_app(
        auth=True, fhir_transport=server.transport(), cds_fhir_servers=[EHR_FHIR]
    ) as client:
        response = _post(client, _body(fhir_server), cds_client_keys)
    assert response.status_code == 200, response.text
    assert response.json()["cards"][0]["indicator"] == "critical"
    assert server.requests, "the missing prefetch was read from fhirServer"
    assert {r.url.host for r in server.requests} == {"ehr.example.org"}
    assert all(r.headers["authorization"] == f"Bearer {FHIR_TOKEN}" for r in server.requests)


@pytest.mark.parametrize("fhir_server", [u for u in UNTRUSTED if "[" not in u and "\t" not in u])
def test_untrusted_fhir_server_is_never_contacted(
    make_app: Any,
    cds_client_keys: CdsClient,
    caplog: pytest.LogCaptureFixture,
    fhir_server: str,
) -> None:
    server = _server()
    with (
        make_app(
            auth=True, fhir_transport=server.transport(), cds_fhir_servers=[EHR_FHIR]
        ) as client,
        caplog.at_level(logging.WARNING, logger="painpath.cds_hooks"),
    ):
        response = _post(client, _body(fhir_server), cds_client_keys)
    _not_allowed(response)
    assert server.requests == []
    (warning,) = [r for r in caplog.records if "not on PAINPATH_CDS_FHIR_SERVERS" in r.getMessage()]
    message = warning.getMessage()
    assert FHIR_TOKEN not in message
    assert "/fhir" not in message  # the host only, not the URL


def test_untrusted_fhir_server_log_names_the_real_host(
    make_app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server = _server()
    with (
        make_app(fhir_transport=server.transport(), cds_fhir_servers=[EHR_FHIR]) as client,
        caplog.at_level(logging.WARNING, logger="painpath.cds_hooks"),
    ):
        _not_allowed(_post(client, _body("https://ehr.example.org@evil.com/fhir"), None))
    assert server.requests == []
    assert any("'evil.com'" in r.getMessage() for r in caplog.records)


def test_complete_prefetch_with_untrusted_fhir_server_answers_cards(
    make_app: Any, cds_client_keys: CdsClient
) -> None:
    server = _server()
    body = _body("https://ehr.example.org.evil.com/fhir", prefetch=_full_prefetch())
    with make_app(
        auth=True, fhir_transport=server.transport(), cds_fhir_servers=[EHR_FHIR]
    ) as client:
        response = _post(client, body, cds_client_keys)
    assert response.status_code == 200, response.text
    assert response.json()["cards"][0]["indicator"] == "critical"
    assert server.requests == []


def test_partial_prefetch_with_untrusted_fhir_server_is_412(
    make_app: Any, cds_client_keys: CdsClient
) -> None:
    server = _server()
    prefetch = prefetch_for(case_resources(_case()), omit=("observations",))
    body = _body("https://ehr.example.org/fhirx", prefetch=prefetch)
    with make_app(
        auth=True, fhir_transport=server.transport(), cds_fhir_servers=[EHR_FHIR]
    ) as client:
        response = _post(client, body, cds_client_keys)
    _not_allowed(response)
    assert "observations" in response.json()["issue"][0]["diagnostics"]
    assert server.requests == []


def test_empty_list_with_auth_on_fails_closed(make_app: Any, cds_client_keys: CdsClient) -> None:
    server = _server()
    with make_app(auth=True, fhir_transport=server.transport()) as client:
        missing = _post(client, _body(EHR_FHIR), cds_client_keys)
        complete = _post(client, _body(EHR_FHIR, prefetch=_full_prefetch()), cds_client_keys)
    _not_allowed(missing)
    assert complete.status_code == 200, complete.text
    assert complete.json()["cards"][0]["indicator"] == "critical"
    assert server.requests == []


def test_empty_list_with_auth_off_trusts_any_fhir_server(make_app: Any) -> None:
    """Loopback development: no client auth, no allow-list, the fallback works (http too)."""
    server = _server(BASE)
    with make_app(fhir_transport=server.transport()) as client:
        response = _post(client, _body(BASE), None)
    assert response.status_code == 200, response.text
    assert server.requests


def test_a_non_empty_list_applies_with_auth_off_too(make_app: Any) -> None:
    server = _server(BASE)
    with make_app(fhir_transport=server.transport(), cds_fhir_servers=[EHR_FHIR]) as client:
        _not_allowed(_post(client, _body(BASE), None))
    assert server.requests == []


def test_prefetch_next_link_to_another_host_is_rebased_on_fhir_server(
    make_app: Any, cds_client_keys: CdsClient
) -> None:
    server = _server()
    prefetch = _full_prefetch()
    prefetch["observations"]["entry"] = []
    prefetch["observations"]["link"] = [
        {"relation": "next", "url": "https://evil.example.com/fhir/Observation?patient=patient-1"}
    ]
    with make_app(
        auth=True, fhir_transport=server.transport(), cds_fhir_servers=[EHR_FHIR]
    ) as client:
        response = _post(client, _body(EHR_FHIR, prefetch=prefetch), cds_client_keys)
    assert response.status_code == 200, response.text
    assert response.json()["cards"][0]["indicator"] == "critical"
    assert server.requests
    assert {r.url.host for r in server.requests} == {"ehr.example.org"}


def test_prefetch_next_link_escaping_fhir_server_is_not_followed(
    make_app: Any, cds_client_keys: CdsClient
) -> None:
    server = _server()
    prefetch = _full_prefetch()
    prefetch["observations"]["link"] = [
        {"relation": "next", "url": EHR_FHIR + "/../admin/Observation?patient=patient-1"}
    ]
    with make_app(
        auth=True, fhir_transport=server.transport(), cds_fhir_servers=[EHR_FHIR]
    ) as client:
        response = _post(client, _body(EHR_FHIR, prefetch=prefetch), cds_client_keys)
    assert response.status_code == 412, response.text
    assert "next link" in response.json()["issue"][0]["diagnostics"]
    assert FHIR_TOKEN not in response.text
    assert server.requests == []


# --- settings --------------------------------------------------------------------------------
def _settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


@pytest.mark.parametrize(
    "base",
    [
        "http://ehr.example.org/fhir",
        "http://10.0.0.5:8080/fhir",
        "http://127.0.0.1.evil.com/fhir",
        "HTTP://EHR.EXAMPLE.ORG/fhir",
    ],
)
def test_settings_refuse_http_off_loopback(base: str) -> None:
    with pytest.raises(ValidationError) as raised:
        _settings(cds_fhir_servers=[EHR_FHIR, base])
    text = str(raised.value)
    assert "PAINPATH_CDS_FHIR_SERVERS" in text
    assert "https://" in text
    assert "non-loopback" in text


@pytest.mark.parametrize(
    "base",
    ["ftp://ehr.example.org/fhir", "ehr.example.org/fhir", "https://u:p@ehr.example.org/fhir",
     "https://ehr.example.org/fhir?x=1", "https://ehr.example.org:99999/fhir"],
)  # fmt: skip
def test_settings_refuse_malformed_bases(base: str) -> None:
    with pytest.raises(ValidationError, match="PAINPATH_CDS_FHIR_SERVERS"):
        _settings(cds_fhir_servers=[base])


@pytest.mark.parametrize(
    "base",
    [EHR_FHIR, "https://ehr.example.org:8443/fhir/r4/", "http://127.0.0.1:8090/fhir",
     "http://localhost/fhir", "http://[::1]:8090/fhir"],
)  # fmt: skip
def test_settings_accept_https_and_loopback_http(base: str) -> None:
    assert _settings(cds_fhir_servers=[base]).cds_fhir_servers == [base]


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAINPATH_CDS_TENANTS", '["hospital-a", "hospital-b"]')
    monkeypatch.setenv("PAINPATH_CDS_FHIR_SERVERS", f'["{EHR_FHIR}"]')
    settings = _settings()
    assert settings.cds_tenants == ["hospital-a", "hospital-b"]
    assert settings.cds_fhir_servers == [EHR_FHIR]
    monkeypatch.setenv("PAINPATH_CDS_FHIR_SERVERS", '["http://ehr.example.org/fhir"]')
    with pytest.raises(ValidationError, match="non-loopback"):
        _settings()
    assert _settings(cds_fhir_servers=[]).cds_fhir_servers == []
    monkeypatch.delenv("PAINPATH_CDS_FHIR_SERVERS")
    assert _settings().cds_fhir_servers == []


def test_settings_refuse_blank_tenants() -> None:
    with pytest.raises(ValidationError, match="PAINPATH_CDS_TENANTS"):
        _settings(cds_tenants=["hospital-a", " "])


def test_unparsable_fhir_server_is_a_400(cds: TestClient) -> None:
    """A fhirServer urllib cannot parse (unbalanced IPv6 bracket) is a bad request, not a 500."""
    response = cds.post(PV, json=_body("http://[::1/fhir"))
    assert response.status_code == 400, response.text
    assert response.json()["issue"][0]["expression"] == ["fhirServer"]
