"""CDS Hooks against the real FHIR server fixture: with no prefetch, every hook reads the patient
from ``fhirServer`` and answers the same cards as with full prefetch. With client auth on, the
server must be on ``cds_fhir_servers`` (its ``http://127.0.0.1`` base is allowed: loopback) and
the client's ``tenant`` on ``cds_tenants``; otherwise the call fails closed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from cds_testkit import (
    ISSUER,
    JWKS_URL,
    SERVICE_BASE,
    CdsClient,
    case_patient_id,
    case_resources,
    draft_service_request,
    hook_request,
    load_case,
    prefetch_for,
)
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.settings import Settings

pytestmark = pytest.mark.integration
Json = dict[str, Any]
CASE = "mechanical-low-back-pain-fever-screened-absent"
AS_OF = datetime.fromisoformat("2026-11-24T10:00:00+01:00")


@pytest.fixture(scope="module")
def cds_case(fhir: httpx.Client) -> Json:
    """The golden case loaded onto the server under a fresh patient id (PUT at its ids)."""
    case = load_case(CASE)
    for resource in case_resources(case):
        response = fhir.put(f"{resource['resourceType']}/{resource['id']}", json=resource)
        assert response.status_code in {200, 201}, response.text
    return case


@pytest.fixture(scope="module")
def cds_app() -> Iterator[TestClient]:
    app = create_app(Settings(_env_file=None))
    app.state.cds.clock = lambda: AS_OF
    with TestClient(app) as client:
        yield client


def _mri(pid: str) -> Json:
    return draft_service_request("draft-mri", pid, "http://loinc.org", "30679-5", "MRI L-spine")


@pytest.mark.parametrize("hook", ["patient-view", "order-select", "order-sign"])
def test_each_hook_without_prefetch_reads_the_fhir_server(
    cds_app: TestClient, fhir_server: str, cds_case: Json, hook: str
) -> None:
    pid = case_patient_id(cds_case)
    orders = [] if hook == "patient-view" else [_mri(pid)]
    fetched = cds_app.post(
        f"/cds-services/painpath-{hook}",
        json=hook_request(hook, pid, draft_orders=orders, fhir_server=fhir_server, bearer="t0k"),
    )
    prefetched = cds_app.post(
        f"/cds-services/painpath-{hook}",
        json=hook_request(
            hook, pid, draft_orders=orders, prefetch=prefetch_for(case_resources(cds_case))
        ),
    )
    assert fetched.status_code == 200, fetched.text
    assert prefetched.status_code == 200, prefetched.text
    cards, expected = fetched.json()["cards"], prefetched.json()["cards"]
    assert [c["indicator"] for c in cards] == [c["indicator"] for c in expected]
    assert [c["summary"] for c in cards] == [c["summary"] for c in expected]
    assert cards, "the vignette has something to say"
    if hook == "patient-view":
        assert cards[0]["indicator"] == "info"
    else:
        assert cards[0]["indicator"] == "warning"
        assert cards[0]["suggestions"][0]["actions"][0]["resourceId"] == "ServiceRequest/draft-mri"


def test_partial_prefetch_is_completed_from_the_server(
    cds_app: TestClient, fhir_server: str, cds_case: Json
) -> None:
    pid = case_patient_id(cds_case)
    prefetch = prefetch_for(case_resources(cds_case), omit=("conditions", "observations"))
    response = cds_app.post(
        "/cds-services/painpath-patient-view",
        json=hook_request("patient-view", pid, prefetch=prefetch, fhir_server=fhir_server),
    )
    assert response.status_code == 200
    assert response.json()["cards"][0]["indicator"] == "info"


@pytest.fixture(scope="module")
def cds_keys() -> CdsClient:
    """A CDS client's signing keys (JWKS served from a MockTransport)."""
    return CdsClient()


def _secured_call(keys: CdsClient, body: Json, **settings: Any) -> httpx.Response:
    """One patient-view call to a PainPath with client auth on, signed for tenant hospital-a."""
    values: dict[str, Any] = {
        "cds_auth": True,
        "cds_issuers": {ISSUER: JWKS_URL},
        "cds_base_url": SERVICE_BASE,
        "cds_tenants": ["hospital-a"],
    }
    app = create_app(Settings(_env_file=None, **(values | settings)))
    app.state.cds.clock = lambda: AS_OF
    assert app.state.cds.verifier is not None
    app.state.cds.verifier.transport = keys.transport()
    path = "/cds-services/painpath-patient-view"
    token = keys.token(SERVICE_BASE + path, claims={"tenant": "hospital-a"})
    with TestClient(app) as client:
        answer: httpx.Response = client.post(
            path, json=body, headers={"Authorization": f"Bearer {token}"}
        )
        return answer


def test_listed_fhir_server_is_read_with_auth_on(
    cds_keys: CdsClient, fhir_server: str, cds_case: Json
) -> None:
    body = hook_request("patient-view", case_patient_id(cds_case), fhir_server=fhir_server,
                        bearer="t0k")  # fmt: skip
    response = _secured_call(cds_keys, body, cds_fhir_servers=[fhir_server + "/"])
    assert response.status_code == 200, response.text
    assert response.json()["cards"][0]["indicator"] == "info"


@pytest.mark.parametrize("listed", [[], ["https://ehr.example.org/fhir"]])
def test_unlisted_fhir_server_fails_closed_with_auth_on(
    cds_keys: CdsClient, fhir_server: str, cds_case: Json, listed: list[str]
) -> None:
    body = hook_request("patient-view", case_patient_id(cds_case), fhir_server=fhir_server,
                        bearer="t0k")  # fmt: skip
    response = _secured_call(cds_keys, body, cds_fhir_servers=listed)
    assert response.status_code == 412, response.text
    assert "PAINPATH_CDS_FHIR_SERVERS" in response.json()["issue"][0]["diagnostics"]
    assert "t0k" not in response.text
