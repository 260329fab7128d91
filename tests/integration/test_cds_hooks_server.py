"""CDS Hooks against the real FHIR server fixture: with no prefetch, every hook reads the patient
from ``fhirServer`` and answers the same cards as with full prefetch."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from cds_testkit import (
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
    app = create_app(Settings(_env_file=None))  # type: ignore[call-arg]
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
