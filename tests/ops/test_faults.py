"""Faults of the upstream FHIR server not covered by tests/clients and tests/integration: a
malformed answer, a server down for longer than the retries then back, a slow server, and a
transaction whose answer is lost after it landed (the re-run lands once)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fake_fhir_server import BASE, SAMPLES, FakeFhirServer
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.settings import Settings

TRIAGE = "/fhir/Patient/patient-1/$triage"


@pytest.fixture
def server() -> FakeFhirServer:
    fake = FakeFhirServer()
    fake.load_bundle(SAMPLES / "persistent-sciatica.json")
    return fake


@pytest.fixture
def client(server: FakeFhirServer) -> Iterator[TestClient]:
    settings = Settings(_env_file=None, fhir_server=BASE, fhir_retries=2,
                        fhir_backoff_seconds=0.0)  # fmt: skip
    with TestClient(create_app(settings, fhir_transport=server.transport())) as test_client:
        yield test_client


def _issue(answer: Any) -> dict[str, Any]:
    (issue,) = answer.json()["issue"]
    return dict(issue)


@pytest.mark.parametrize(
    "body", [b"{not json", b"<html>502 Bad Gateway</html>", b"[1, 2, 3]", b'{"resourceType": 5}']
)
def test_malformed_upstream_json_is_502_and_recovers(
    client: TestClient, server: FakeFhirServer, body: bytes
) -> None:
    def garbage(_: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"Content-Type": "application/fhir+json"})

    server.faults = [garbage] * 3
    answer = client.post(TRIAGE)
    assert answer.status_code == 502, answer.text
    assert _issue(answer)["diagnostics"].startswith("FHIR server: GET")
    server.faults = []
    assert client.post(TRIAGE).status_code == 200


def test_server_down_then_back(client: TestClient, server: FakeFhirServer) -> None:
    server.faults = [httpx.ConnectError("connection refused")] * 3
    down = client.post(TRIAGE)
    assert down.status_code == 502
    assert _issue(down)["code"] == "transient"
    assert client.post(TRIAGE).status_code == 200  # back: no restart needed


def test_slow_server_is_504(client: TestClient, server: FakeFhirServer) -> None:
    server.faults = [httpx.ReadTimeout("slow")] * 3
    answer = client.post(TRIAGE)
    assert answer.status_code == 504
    assert _issue(answer)["code"] == "timeout"


def test_lost_transaction_answer_then_rerun_lands_once(
    client: TestClient, server: FakeFhirServer
) -> None:
    original = server._transaction
    lost: list[int] = []

    def commit_then_drop(bundle: dict[str, Any]) -> httpx.Response:
        original(bundle)  # the server commits...
        lost.append(1)
        raise httpx.RemoteProtocolError("connection closed before the answer")  # ...we never hear

    server._transaction = commit_then_drop  # type: ignore[method-assign]
    first = client.post(TRIAGE, params={"writeback": "true"})
    server._transaction = original  # type: ignore[method-assign]
    assert lost
    assert first.status_code in (200, 502)
    assert client.post(TRIAGE, params={"writeback": "true"}).status_code == 200
    plans = [p for p in server.of_type("CarePlan") if p["status"] == "draft"]
    assert len(plans) == 1  # PUTs at deterministic ids: landing twice is landing once


def test_server_killed_mid_pull_is_502_not_500(client: TestClient, server: FakeFhirServer) -> None:
    # the Patient read succeeds, then the server dies while the searches run concurrently
    server.faults = [server._route, *[httpx.ConnectError("connection refused")] * 30]
    answer = client.post(TRIAGE, params={"writeback": "true"})
    assert answer.status_code == 502, answer.text
    assert _issue(answer)["code"] == "transient"
    assert not [p for p in server.of_type("CarePlan") if p["status"] == "draft"]  # nothing written
    server.faults = []
    assert client.post(TRIAGE).status_code == 200
