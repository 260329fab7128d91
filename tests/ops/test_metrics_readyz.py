"""/metrics (Prometheus text) and /readyz (knowledge loaded; the FHIR server, when configured,
answers /metadata in time; the probe is cached)."""

from __future__ import annotations

import httpx
from fastapi.testclient import TestClient
from fhir_testkit import CAUDA, MULTI_FLAG, case_bundle
from prometheus_client.parser import text_string_to_metric_families

from service.api.app import create_app
from service.settings import Settings


def _settings(**overrides: object) -> Settings:
    return Settings(_env_file=None, **overrides)  # type: ignore[arg-type]


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_count_requests_evaluations_and_red_flags() -> None:
    with TestClient(create_app(_settings(fhir_server=None))) as client:
        assert client.post("/fhir/$triage", json=case_bundle(CAUDA)).status_code == 200
        assert client.post("/fhir/$triage", json=case_bundle(MULTI_FLAG)).status_code == 200
        assert client.post("/fhir/$triage", content=b"{").status_code == 400
        answer = client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    samples = _samples(answer.text)
    route = ("route", "/fhir/$triage")
    assert (
        samples[("painpath_http_requests_total", (("method", "POST"), route, ("status", "200")))]
        == 2
    )
    assert (
        samples[("painpath_http_requests_total", (("method", "POST"), route, ("status", "400")))]
        == 1
    )
    assert (
        samples[("painpath_http_request_duration_seconds_count", (("method", "POST"), route))] == 3
    )
    assert samples[("painpath_red_flags_total", (("code", "cauda-equina"),))] >= 1
    evaluations = [v for (name, _), v in samples.items() if name == "painpath_evaluations_total"]
    assert sum(evaluations) == 2
    assert not any("patient" in str(labels).lower() for _, labels in samples)


def test_upstream_errors_are_counted_by_kind() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    settings = _settings(fhir_server="http://fhir.test/fhir", fhir_retries=0)
    app = create_app(settings, fhir_transport=httpx.MockTransport(refuse))
    with TestClient(app) as client:
        assert client.post("/fhir/Patient/p1/$triage").status_code == 502
        samples = _samples(client.get("/metrics").text)
    assert samples[("painpath_upstream_errors_total", (("kind", "transient"),))] == 1


def test_readyz_without_fhir_server() -> None:
    with TestClient(create_app(_settings(fhir_server=None))) as client:
        answer = client.get("/readyz")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ready", "checks": {"knowledge": "ok"}}


def test_readyz_follows_the_fhir_server_and_caches_the_probe() -> None:
    calls: list[str] = []
    status = {"code": 503}

    def server(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return httpx.Response(status["code"], json={"resourceType": "CapabilityStatement"})

    settings = _settings(fhir_server="http://fhir.test/fhir", readiness_cache_seconds=60)
    app = create_app(settings, fhir_transport=httpx.MockTransport(server))
    with TestClient(app) as client:
        first = client.get("/readyz")
        assert first.status_code == 503
        assert first.json()["checks"]["fhir_server"] == "HTTP 503"
        status["code"] = 200
        assert client.get("/readyz").status_code == 503  # cached
        assert calls == ["/fhir/metadata"]
        app.state.readiness_probe = None  # the cache expires
        assert client.get("/readyz").status_code == 200
        assert client.get("/healthz").status_code == 200


def test_readyz_times_out_quickly() -> None:
    def hang(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    settings = _settings(fhir_server="http://fhir.test/fhir")
    with TestClient(create_app(settings, fhir_transport=httpx.MockTransport(hang))) as client:
        answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["checks"]["fhir_server"] == "timeout"
