"""The API docs: ``/docs`` and ``/redoc`` load only PainPath's own files, and every documented
request-body example is a request PainPath answers with success."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.api.docs import ASSETS
from service.fhir.request import read_patient_parameters
from service.settings import Settings

_FHIR_JSON = "application/fhir+json"


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    settings = Settings(_env_file=None, log_level="WARNING")
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_pages_load_only_local_files(client: TestClient, page: str) -> None:
    html = client.get(page)
    assert html.status_code == 200
    linked = re.findall(r'(?:src|href)="([^"]+)"', html.text)
    assert linked
    assert all(url.startswith(f"{ASSETS}/") for url in linked), linked
    assert re.findall(r"https?://", html.text) == []
    for url in linked:
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 1000, url


def test_the_oauth2_redirect_page(client: TestClient) -> None:
    assert client.get("/docs/oauth2-redirect").status_code == 200


def _body(client: TestClient, path: str) -> dict:  # type: ignore[type-arg]
    operation = client.get("/openapi.json").json()["paths"][path]["post"]
    return operation["requestBody"]  # type: ignore[no-any-return]


def test_every_triage_example_evaluates(client: TestClient) -> None:
    body = _body(client, "/fhir/$triage")
    assert body["required"] is True
    examples = body["content"][_FHIR_JSON]["examples"]
    assert len(examples) >= 5
    for name, example in examples.items():
        answer = client.post(
            "/fhir/$triage?asOf=2026-11-24T10:00:00%2B01:00",
            json=example["value"],
            headers={"Content-Type": _FHIR_JSON},
        )
        assert answer.status_code == 200, (name, answer.text[:300])
        assert answer.json()["resourceType"] == "Bundle"


def test_the_patient_triage_example_is_valid_parameters(client: TestClient) -> None:
    body = _body(client, "/fhir/Patient/{patient_id}/$triage")
    (example,) = body["content"][_FHIR_JSON]["examples"].values()
    raw = json.dumps(example["value"]).encode()
    assert read_patient_parameters(raw, max_bytes=10_000) == {
        "asOf": "2026-11-24T10:00:00+01:00",
        "profile": "nice-ng59",
        "writeback": False,
    }


def test_every_cds_example_answers_cards_from_its_service(client: TestClient) -> None:
    body = _body(client, "/cds-services/{service_id}")
    examples = body["content"]["application/json"]["examples"]
    services = {s["id"]: s["hook"] for s in client.get("/cds-services").json()["services"]}
    assert set(examples) == set(services)
    for service_id, example in examples.items():
        assert example["value"]["hook"] == services[service_id]
        answer = client.post(f"/cds-services/{service_id}", json=example["value"])
        assert answer.status_code == 200, (service_id, answer.text[:300])
        assert answer.json()["cards"], service_id
