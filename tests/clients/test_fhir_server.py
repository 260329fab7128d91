"""The FHIR server client on httpx.MockTransport: paging, rebasing, retries, typed errors."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from fake_fhir_server import BASE, FakeFhirServer, Sleeps, outcome

from service.server.errors import (
    UpstreamError,
    UpstreamNotFoundError,
    UpstreamStatusError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
    redact_url,
)
from service.server.fhir_server import ClientConfig, FhirServerClient
from service.server.paging import rebase


def run(work: Callable[[FhirServerClient], Awaitable[Any]], transport: httpx.AsyncBaseTransport,
        sleeps: Sleeps | None = None, **config: Any) -> Any:  # fmt: skip
    """Run ``work`` against a client on ``transport`` (seeded jitter, recorded sleeps)."""

    async def main() -> Any:
        settings = ClientConfig(
            BASE, **{"retries": 3, "backoff": 0.1, "backoff_max": 1.0, **config}
        )
        sleep = sleeps if sleeps is not None else Sleeps()
        async with FhirServerClient(
            settings,
            transport=transport,
            sleep=sleep,
            rng=random.Random(7),  # noqa: S311
        ) as client:
            return await work(client)

    return asyncio.run(main())


# --- rebase ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        ("http://fhir.test/fhir/Observation?_offset=2", "http://fhir.test/fhir/Observation?_offset=2"),
        ("http://hapi:8080/fhir/Observation?_offset=2", "http://fhir.test/fhir/Observation?_offset=2"),
        ("http://hapi:8080/fhir?_getpages=abc&_getpagesoffset=20",
         "http://fhir.test/fhir?_getpages=abc&_getpagesoffset=20"),
        ("https://gw.example:443:443/Observation?page=2", "http://fhir.test/fhir/Observation?page=2"),
        ("http://proxy/hapi-fhir/baseR4/Patient/1/$everything?_page=2",
         "http://fhir.test/fhir/Patient/1/$everything?_page=2"),
        ("Observation?_offset=4", "http://fhir.test/fhir/Observation?_offset=4"),
    ],
    ids=["same-origin", "other-host", "hapi-getpages", "double-port", "other-prefix", "relative"],
)  # fmt: skip
def test_rebase_puts_foreign_next_links_on_the_configured_base(link: str, expected: str) -> None:
    assert rebase(link, BASE) == expected


def test_redact_url_drops_query_and_credentials() -> None:
    url = "https://user:secret@fhir.test:8443/fhir/Patient?identifier=mrn|123&token=abc"
    assert redact_url(url) == "https://fhir.test:8443/fhir/Patient"


# --- paging ------------------------------------------------------------------------------------


def test_search_follows_next_links_across_pages_rebased(server: FakeFhirServer) -> None:
    server.link_base = "http://hapi:8080/fhir"  # what HAPI behind a proxy puts in next links
    for index in range(7):
        server.add({"resourceType": "Observation", "id": f"o{index}", "status": "final",
                    "code": {"text": "x"}, "subject": {"reference": "Patient/p9"}})  # fmt: skip
    found = run(lambda c: c.search("Observation", [("patient", "Patient/p9")]),
                server.transport(), page_size=2)  # fmt: skip
    assert sorted(r["id"] for r in found) == [f"o{i}" for i in range(7)]
    assert len(server.requests) == 4
    assert {r.url.host for r in server.requests} == {"fhir.test"}


def test_search_collects_included_resources_once(server: FakeFhirServer) -> None:
    server.add({"resourceType": "Medication", "id": "m1", "code": {"text": "naproxen"}})
    for index in range(3):
        server.add({"resourceType": "MedicationRequest", "id": f"mr{index}", "status": "active",
                    "intent": "order", "medicationReference": {"reference": "Medication/m1"},
                    "subject": {"reference": "Patient/patient-1"}})  # fmt: skip
    params = [("patient", "Patient/patient-1"), ("_include", "MedicationRequest:medication")]
    found = run(lambda c: c.search("MedicationRequest", params), server.transport(), page_size=1)
    assert sorted(f"{r['resourceType']}/{r['id']}" for r in found) == [
        "Medication/m1", "MedicationRequest/mr0", "MedicationRequest/mr1", "MedicationRequest/mr2"
    ]  # fmt: skip


def test_paging_stops_on_a_repeating_next_link() -> None:
    def loop(request: httpx.Request) -> httpx.Response:
        link = [{"relation": "next", "url": f"{BASE}/Observation?page=2"}]
        return httpx.Response(
            200, json={"resourceType": "Bundle", "type": "searchset", "link": link}
        )

    with pytest.raises(UpstreamStatusError, match="repeats"):
        run(lambda c: c.search("Observation"), httpx.MockTransport(loop))


def test_pages_ending_short_of_the_reported_total_are_an_error() -> None:
    """A server that pages without next links (Medplum's in-memory repository) answers the first
    page with the whole total: what came is not the record, so the search fails."""

    def first_page_only(request: httpx.Request) -> httpx.Response:
        entry = {"resource": {"resourceType": "Observation", "id": "o1"}}
        bundle = {"resourceType": "Bundle", "type": "searchset", "total": 3, "entry": [entry]}
        return httpx.Response(200, json=bundle)

    with pytest.raises(UpstreamStatusError, match="matched 3 resources but its pages held 1"):
        run(lambda c: c.search("Observation"), httpx.MockTransport(first_page_only))


def test_paging_is_bounded(server: FakeFhirServer) -> None:
    for index in range(5):
        server.add({"resourceType": "Condition", "id": f"c{index}", "code": {"text": "x"},
                    "subject": {"reference": "Patient/p"}})  # fmt: skip
    with pytest.raises(UpstreamError, match="within 2 pages"):
        run(lambda c: c.search("Condition"), server.transport(), page_size=1, max_pages=2)


# --- retries -----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_retryable_status_is_retried_with_bounded_jittered_backoff(
    server: FakeFhirServer, sleeps: Sleeps, status: int
) -> None:
    server.faults = [status, status]
    patient = run(lambda c: c.read("Patient", "patient-1"), server.transport(), sleeps)
    assert patient["id"] == "patient-1"
    assert len(server.requests) == 3
    assert 0.05 <= sleeps[0] <= 0.1
    assert 0.1 <= sleeps[1] <= 0.2


def test_retry_after_is_honoured_up_to_the_cap(server: FakeFhirServer, sleeps: Sleeps) -> None:
    server.faults = [
        lambda r: httpx.Response(503, headers={"Retry-After": "0"}),
        lambda r: httpx.Response(429, headers={"Retry-After": "120"}),
    ]
    run(lambda c: c.read("Patient", "patient-1"), server.transport(), sleeps)
    assert sleeps == [0.0, 1.0]


def test_persistent_5xx_gives_an_upstream_error_with_its_outcome(
    server: FakeFhirServer, sleeps: Sleeps
) -> None:
    server.faults = [500] * 4
    with pytest.raises(UpstreamStatusError) as caught:
        run(lambda c: c.search("Condition", [("patient", "Patient/patient-1")]),
            server.transport(), sleeps)  # fmt: skip
    error = caught.value
    assert (error.status, error.attempts, error.method) == (500, 4, "GET")
    assert error.url == f"{BASE}/Condition"  # the query (patient id) is not repeated
    assert error.upstream_diagnostics() == ["injected 500"]
    assert "HTTP 500" in error.describe()
    assert "after 4 attempts" in error.describe()
    assert len(sleeps) == 3


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (httpx.ReadTimeout("slow"), UpstreamTimeoutError),
        (httpx.ConnectTimeout("slow"), UpstreamTimeoutError),
        (httpx.ConnectError("refused"), UpstreamUnavailableError),
        (httpx.RemoteProtocolError("dropped"), UpstreamUnavailableError),
    ],
)
def test_transport_failures_are_retried_then_typed(
    server: FakeFhirServer, sleeps: Sleeps, exc: Exception, expected: type[UpstreamError]
) -> None:
    server.faults = [exc] * 4
    with pytest.raises(expected) as caught:
        run(lambda c: c.read("Patient", "patient-1"), server.transport(), sleeps)
    assert caught.value.attempts == 4
    server.faults = [exc]
    assert run(lambda c: c.read("Patient", "patient-1"), server.transport())["id"] == "patient-1"


def test_a_maybe_sent_post_is_not_retried_unless_idempotent(server: FakeFhirServer) -> None:
    server.faults = [httpx.ReadTimeout("slow")]
    with pytest.raises(UpstreamTimeoutError):
        run(lambda c: c.request("POST", f"{BASE}/Observation", body={}), server.transport())
    assert len(server.requests) == 1
    server.faults = [httpx.ConnectError("refused")]  # never reached the server: safe to retry
    response = run(lambda c: c.request("POST", BASE, body={"resourceType": "Bundle",
                   "type": "transaction", "entry": []}), server.transport())  # fmt: skip
    assert response.status_code == 200


def test_transactions_are_retried(server: FakeFhirServer, sleeps: Sleeps) -> None:
    server.faults = [httpx.ReadTimeout("slow"), 503]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": []}
    answer = run(lambda c: c.transaction(bundle), server.transport(), sleeps)
    assert answer["type"] == "transaction-response"
    assert len(sleeps) == 2


def test_client_errors_are_not_retried(server: FakeFhirServer) -> None:
    server.faults = [400]
    with pytest.raises(UpstreamStatusError) as caught:
        run(lambda c: c.search("Observation"), server.transport())
    assert caught.value.status == 400
    assert len(server.requests) == 1


def test_read_of_a_missing_resource_is_not_found(server: FakeFhirServer) -> None:
    with pytest.raises(UpstreamNotFoundError) as caught:
        run(lambda c: c.read("Patient", "nobody"), server.transport())
    assert caught.value.upstream_diagnostics() == ["Patient/nobody not found"]


@pytest.mark.parametrize("rid", [".", ".."])
def test_a_dot_segment_id_is_never_sent(server: FakeFhirServer, rid: str) -> None:
    # joined to the base unencoded, ".." would read the base and "." search every Patient
    with pytest.raises(UpstreamStatusError, match="not a FHIR id"):
        run(lambda c: c.read("Patient", rid), server.transport())
    assert not server.requests


def test_ids_are_percent_encoded_path_segments() -> None:
    seen: list[bytes] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path)
        return httpx.Response(200, json={"resourceType": "Patient", "id": "x"})

    run(lambda c: c.read("Patient", "a/b?c"), httpx.MockTransport(answer))
    assert seen == [b"/fhir/Patient/a%2Fb%3Fc"]


def test_an_answer_that_is_not_json_is_an_upstream_error() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(200, content=b"<html>"))
    with pytest.raises(UpstreamStatusError, match="not JSON"):
        run(lambda c: c.read("Patient", "x"), transport)


def test_a_search_answering_something_else_than_a_bundle_fails() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(200, json=outcome("odd")))
    with pytest.raises(UpstreamStatusError, match="expected a searchset Bundle"):
        run(lambda c: c.search("Patient"), transport)


def test_everything_pages_with_type_filter(server: FakeFhirServer) -> None:
    def everything(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/fhir/Patient/patient-1/$everything"
        assert request.url.params["_type"] == "Condition,Observation"
        page = {"resourceType": "Bundle", "type": "searchset",
                "entry": [{"resource": server.store[("Patient", "patient-1")]}]}  # fmt: skip
        return httpx.Response(200, json=page)

    found = run(lambda c: c.everything("patient-1", ("Condition", "Observation")),
                httpx.MockTransport(everything))  # fmt: skip
    assert [r["id"] for r in found] == ["patient-1"]
