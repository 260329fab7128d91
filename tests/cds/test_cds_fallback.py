"""Prefetch fallback: missing keys are read from ``fhirServer`` with the ``fhirAuthorization``
token through the FHIR client (an in-memory server here; tests/integration has the real one)."""

from __future__ import annotations

from typing import Any

import httpx
from cds_testkit import case_patient_id, case_resources, hook_request, load_case, prefetch_for
from fake_fhir_server import BASE, FakeFhirServer

Json = dict[str, Any]
PV = "/cds-services/painpath-patient-view"


def _server(case: Json) -> FakeFhirServer:
    server = FakeFhirServer()
    for resource in case_resources(case):
        server.add(resource)
    return server


def test_without_prefetch_everything_is_fetched_with_the_token(make_app: Any) -> None:
    case = load_case("deficit-progressing-stat")
    server = _server(case)
    body = hook_request("patient-view", case_patient_id(case), fhir_server=BASE, bearer="tok-123")
    with make_app(fhir_transport=server.transport()) as client:
        response = client.post(PV, json=body)
        with_prefetch = client.post(
            PV,
            json=hook_request(
                "patient-view", case_patient_id(case), prefetch=prefetch_for(case_resources(case))
            ),
        )
    assert response.status_code == 200, response.text
    (card,) = response.json()["cards"]
    assert card["indicator"] == "critical"
    assert server.requests
    assert all(r.headers["authorization"] == "Bearer tok-123" for r in server.requests)
    # the same data, prefetched or fetched, gives the same advice
    assert card["summary"] == with_prefetch.json()["cards"][0]["summary"]


def test_partial_prefetch_fetches_only_missing_keys(make_app: Any) -> None:
    case = load_case("deficit-progressing-stat")
    server = _server(case)
    prefetch = prefetch_for(case_resources(case), omit=("observations",))
    body = hook_request("patient-view", case_patient_id(case), prefetch=prefetch, fhir_server=BASE)
    with make_app(fhir_transport=server.transport()) as client:
        response = client.post(PV, json=body)
    assert response.status_code == 200
    assert response.json()["cards"][0]["indicator"] == "critical"  # the deficit is an Observation
    assert {r.url.path.rsplit("/", 1)[-1] for r in server.requests} == {"Observation"}


def test_prefetch_next_page_is_followed(make_app: Any) -> None:
    case = load_case("deficit-progressing-stat")
    server = _server(case)
    prefetch = prefetch_for(case_resources(case))
    observations = prefetch["observations"]
    observations["link"] = [{"relation": "next", "url": f"{BASE}/Observation?patient=patient-1"}]
    observations["entry"] = []
    body = hook_request("patient-view", case_patient_id(case), prefetch=prefetch, fhir_server=BASE)
    with make_app(fhir_transport=server.transport()) as client:
        response = client.post(PV, json=body)
    assert response.status_code == 200
    assert response.json()["cards"][0]["indicator"] == "critical"


def test_unreachable_fhir_server_is_412(make_app: Any) -> None:
    case = load_case("deficit-progressing-stat")

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    body = hook_request("patient-view", case_patient_id(case), fhir_server=BASE, bearer="t")
    with make_app(fhir_transport=httpx.MockTransport(refuse), fhir_retries=0) as client:
        response = client.post(PV, json=body)
    assert response.status_code == 412
    text = response.json()["issue"][0]["diagnostics"]
    assert "fhirServer" in text
    assert "t" not in text.split("fhirServer")[0][-3:]
    assert "Bearer" not in response.text
