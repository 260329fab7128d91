"""Issue 5 end to end against the real sekmet-fhir server of the session fixture.

Pull + evaluate + write back, idempotent re-runs (sequential, concurrent, two "replicas"),
supersession, the subscription round trip (criteria rest-hook and topic-based backport) with
PainPath served by uvicorn in a background thread, paging over several pages through a proxy
whose host differs from the server's next links, and faults (drop, delay, 500) injected by a
tiny local proxy. Every scenario uses its own patient ids. Round-trip times are logged and
written to ``test-artifacts/fhir-roundtrip-times.json``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from fhir_testkit import load_patient, with_prefix
from live_servers import FaultProxy, serve_app

import service.server.patient_triage as patient_triage_module
from service.api.app import create_app
from service.cli.main import main as painpath_cli
from service.fhir.emit import IDENTIFIER_SYSTEM, KEY_SYSTEM
from service.fhir.systems import cs
from service.server.writeback import build_writeback
from service.settings import Settings

pytestmark = pytest.mark.integration

Json = dict[str, Any]
log = logging.getLogger("painpath.integration")
ROOT = Path(__file__).resolve().parents[2]
CASES = ROOT / "tests" / "golden" / "cases"
SURGICAL = "surgical-insufficient-data-no-imaging"
TIMINGS: dict[str, list[float]] = {}


# --- helpers -----------------------------------------------------------------------------------


def _timed(label: str, started: float) -> float:
    elapsed = (time.perf_counter() - started) * 1000
    TIMINGS.setdefault(label, []).append(round(elapsed, 1))
    return elapsed


@pytest.fixture(scope="module", autouse=True)
def _report_timings() -> Iterator[None]:
    yield
    summary = {
        label: {"n": len(v), "median_ms": statistics.median(v), "max_ms": max(v), "all_ms": v}
        for label, v in sorted(TIMINGS.items())
    }
    for label, stats in summary.items():
        log.warning(
            "round trip %-40s n=%-3d median %7.1f ms  max %7.1f ms",
            label,
            stats["n"],
            stats["median_ms"],
            stats["max_ms"],
        )
    out = ROOT / "test-artifacts" / "fhir-roundtrip-times.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")


def _settings(base: str, **extra: Any) -> Settings:
    values = {
        "_env_file": None,
        "fhir_server": base,
        "fhir_retries": 3,
        "fhir_backoff_seconds": 0.05,
        "fhir_backoff_max_seconds": 0.2,
        "subscription_debounce_seconds": 0.3,
        **extra,
    }
    return Settings(**values)


def search(fhir: httpx.Client, rtype: str, **params: str) -> list[Json]:
    answer = fhir.get(f"/{rtype}", params={**params, "_count": "500"})
    assert answer.status_code == 200, answer.text
    return [
        e["resource"]
        for e in answer.json().get("entry", [])
        if e.get("search", {}).get("mode", "match") == "match"
    ]


def live_plans(fhir: httpx.Client, patient: str) -> list[Json]:
    plans = search(fhir, "CarePlan", subject=f"Patient/{patient}")
    return [p for p in plans if p["status"] in {"draft", "active"}]


def ours(resources: list[Json]) -> list[Json]:
    return [
        r
        for r in resources
        if any(i.get("system") == IDENTIFIER_SYSTEM for i in r.get("identifier", []))
    ]


def pain_observation(patient: str, rid: str, *, code: str = "night-pain") -> Json:
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "code": {"coding": [{"system": cs("painpath"), "code": code}]},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": "2026-11-23T09:00:00Z",
        "valueBoolean": True,
    }


@pytest.fixture(scope="module")
def painpath_direct(fhir_server: str) -> Iterator[TestClient]:
    """PainPath in-process, configured with the sekmet base URL."""
    with TestClient(create_app(_settings(fhir_server))) as client:
        yield client


def triage(client: TestClient, patient: str, label: str, **params: str) -> httpx.Response:
    started = time.perf_counter()
    answer: httpx.Response = client.post(f"/fhir/Patient/{patient}/$triage", params=params)
    _timed(label, started)
    return answer


# --- pull + evaluate + write back -------------------------------------------------------------


def test_pull_evaluate_and_write_back(fhir: httpx.Client, painpath_direct: TestClient) -> None:
    patient = load_patient(fhir, SURGICAL, "i5a")
    answer = triage(painpath_direct, patient, "triage (no write-back)")
    assert answer.status_code == 200, answer.text
    assert not live_plans(fhir, patient)
    answer = triage(painpath_direct, patient, "triage + write-back (first)", writeback="true")
    assert answer.status_code == 200, answer.text
    sent = [e["resource"] for e in answer.json()["entry"]]
    (plan,) = live_plans(fhir, patient)
    assert (plan["status"], plan["intent"]) == ("draft", "proposal")
    assert plan["identifier"][0]["system"] == IDENTIFIER_SYSTEM
    assert {"system": KEY_SYSTEM, "value": plan["id"]} in plan["identifier"]
    sent_plan = next(r for r in sent if r["resourceType"] == "CarePlan")
    assert plan["category"] == sent_plan["category"]
    refs = [a["reference"]["reference"] for a in plan["activity"] if "reference" in a]
    refs += [r["reference"] for r in plan.get("addresses", []) + plan["supportingInfo"]]
    for ref in refs:
        assert fhir.get(f"/{ref}").status_code == 200, ref
    (provenance,) = search(fhir, "Provenance", target=f"CarePlan/{plan['id']}")
    for target in provenance["target"]:
        assert fhir.get(f"/{target['reference']}").status_code == 200, target
    requests = ours(search(fhir, "ServiceRequest", subject=f"Patient/{patient}"))
    assert len(requests) == sum(1 for r in sent if r["resourceType"] == "ServiceRequest")


def test_sequential_reruns_are_idempotent(fhir: httpx.Client, painpath_direct: TestClient) -> None:
    patient = load_patient(fhir, SURGICAL, "i5b")
    counts = []
    for _ in range(3):
        assert (
            triage(
                painpath_direct, patient, "triage + write-back (re-run)", writeback="true"
            ).status_code
            == 200
        )
        counts.append(
            (
                [p["id"] for p in live_plans(fhir, patient)],
                len(ours(search(fhir, "ServiceRequest", subject=f"Patient/{patient}"))),
                len(ours(search(fhir, "Observation", subject=f"Patient/{patient}"))),
            )
        )
    assert counts[0] == counts[1] == counts[2]
    assert len(counts[0][0]) == 1


def test_new_data_replaces_the_plan_and_revokes_what_no_longer_applies(
    fhir: httpx.Client, painpath_direct: TestClient
) -> None:
    patient = load_patient(fhir, SURGICAL, "i5c")
    assert (
        triage(
            painpath_direct, patient, "triage + write-back (first)", writeback="true"
        ).status_code
        == 200
    )
    (before,) = live_plans(fhir, patient)
    requests_before = {
        r["id"] for r in ours(search(fhir, "ServiceRequest", subject=f"Patient/{patient}"))
    }
    # New data: saddle anaesthesia with urinary retention -> cauda equina red flag.
    cauda = json.loads((CASES / "cauda-equina-saddle-anaesthesia.json").read_text())["bundle"]
    for entry in with_prefix(cauda, "i5c-new", full_urls=False)["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] in {"Condition", "Observation"}:
            resource["subject"] = {"reference": f"Patient/{patient}"}
            assert fhir.put(
                f"/{resource['resourceType']}/{resource['id']}", json=resource
            ).status_code in {200, 201}
    answer = triage(painpath_direct, patient, "triage + write-back (new data)", writeback="true")
    assert answer.status_code == 200, answer.text
    (after,) = live_plans(fhir, patient)
    assert after["id"] == before["id"]
    assert int(after["meta"]["versionId"]) > int(before["meta"]["versionId"])
    assert after["category"] != before["category"]
    issues = [r for r in answer.json()["entry"] if r["resource"]["resourceType"] == "DetectedIssue"]
    assert issues
    for entry in issues:  # written by id: sekmet has no DetectedIssue search parameters
        assert (
            fhir.get(f"/DetectedIssue/{entry['resource']['identifier'][1]['value']}").status_code
            == 200
        )
    requests_after = {
        r["id"]: r for r in ours(search(fhir, "ServiceRequest", subject=f"Patient/{patient}"))
    }
    dropped = requests_before - {i for i, r in requests_after.items() if r["status"] == "draft"}
    for rid in dropped:
        assert requests_after[rid]["status"] == "revoked"


def test_a_plan_of_an_earlier_rule_set_is_revoked(
    fhir: httpx.Client, painpath_direct: TestClient
) -> None:
    patient = load_patient(fhir, SURGICAL, "i5d")
    triage(painpath_direct, patient, "triage + write-back (first)", writeback="true")
    (plan,) = live_plans(fhir, patient)
    old = {k: v for k, v in plan.items() if k != "meta"} | {"id": f"{patient}-old-plan"}
    old["identifier"] = [{"system": IDENTIFIER_SYSTEM, "value": old["id"]}]
    assert fhir.put(f"/CarePlan/{old['id']}", json=old).status_code in {200, 201}
    assert len(live_plans(fhir, patient)) == 2
    triage(painpath_direct, patient, "triage + write-back (supersede)", writeback="true")
    (live,) = live_plans(fhir, patient)
    assert live["id"] == plan["id"]
    assert live["replaces"] == [{"reference": f"CarePlan/{old['id']}"}]
    assert fhir.get(f"/CarePlan/{old['id']}").json()["status"] == "revoked"


def test_concurrent_reruns_make_no_duplicates(fhir: httpx.Client, fhir_server: str) -> None:
    """Six concurrent write-backs in one PainPath, then three each in two PainPaths at once (two
    replicas: no shared lock, only the deterministic ids) -> exactly one CarePlan."""
    patient = load_patient(fhir, SURGICAL, "i5e")
    path = f"/fhir/Patient/{patient}/$triage"

    async def burst(bases: list[str], per_base: int) -> list[int]:
        async with httpx.AsyncClient(timeout=60, trust_env=False) as client:

            async def one(base: str) -> int:
                started = time.perf_counter()
                answer = await client.post(f"{base}{path}", params={"writeback": "true"})
                _timed(f"concurrent write-back x{len(bases) * per_base}", started)
                return answer.status_code

            return list(await asyncio.gather(*[one(b) for b in bases for _ in range(per_base)]))

    with (
        serve_app(create_app(_settings(fhir_server))) as first,
        serve_app(create_app(_settings(fhir_server))) as second,
    ):
        assert asyncio.run(burst([first], 6)) == [200] * 6
        assert len(live_plans(fhir, patient)) == 1
        assert asyncio.run(burst([first, second], 3)) == [200] * 6
    plans = search(fhir, "CarePlan", subject=f"Patient/{patient}")
    assert len(plans) == 1
    requests = ours(search(fhir, "ServiceRequest", subject=f"Patient/{patient}"))
    assert len({r["id"] for r in requests}) == len(requests)
    assert all(r["status"] == "draft" for r in requests)


# --- a failed transaction ----------------------------------------------------------------------


def test_a_refused_transaction_leaves_nothing_behind(
    fhir: httpx.Client, painpath_direct: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sekmet rejects a conditional DetectedIssue write (it has no such search parameter): the
    whole transaction is rolled back, and PainPath answers 502 naming the server's reason."""
    patient = load_patient(fhir, SURGICAL, "i5f")
    real = build_writeback  # what patient_triage imported, patched there below

    def with_a_bad_entry(*args: Any, **kwargs: Any) -> Any:
        plan = real(*args, **kwargs)
        plan.transaction["entry"].append(
            {
                "resource": {"resourceType": "DetectedIssue", "status": "preliminary"},
                "request": {"method": "PUT", "url": "DetectedIssue?identifier=x|y"},
            }
        )
        return plan

    monkeypatch.setattr(patient_triage_module, "build_writeback", with_a_bad_entry)
    answer = triage(painpath_direct, patient, "refused transaction", writeback="true")
    assert answer.status_code == 502, answer.text
    (issue,) = answer.json()["issue"]
    assert "DetectedIssue" in issue["diagnostics"]
    assert f"POST {painpath_direct.app.state.settings.fhir_server}" in issue["diagnostics"]  # type: ignore[attr-defined]
    assert search(fhir, "CarePlan", subject=f"Patient/{patient}") == []
    assert ours(search(fhir, "Observation", subject=f"Patient/{patient}")) == []


# --- paging through a proxy --------------------------------------------------------------------


@pytest.fixture(scope="module")
def proxy(fhir_server: str) -> Iterator[FaultProxy]:
    """The fault proxy in front of sekmet."""
    with FaultProxy(urlsplit(fhir_server).port or 80).running() as running:
        yield running


def test_paging_over_several_pages_with_next_links_rebased(
    fhir: httpx.Client, proxy: FaultProxy
) -> None:
    patient = load_patient(fhir, SURGICAL, "i5g")
    for index in range(7):
        fhir.put(
            f"/Observation/i5g-extra-{index}",
            json=pain_observation(patient, f"i5g-extra-{index}", code="pain-eased-by-rest"),
        )
    proxy.seen.clear()
    settings = _settings(proxy.base, fhir_page_size=2)
    with TestClient(create_app(settings)) as client:
        answer = triage(client, patient, "triage via proxy, _count=2", writeback="true")
    assert answer.status_code == 200, answer.text
    pages = [target for method, target, _ in proxy.seen if target.startswith("/fhir/Observation?")]
    assert len(pages) >= 5  # >= 9 Observations at 2 a page, every page through the proxy
    assert sum("_offset=" in t for t in pages) >= 4
    (plan,) = live_plans(fhir, patient)
    stored = {
        f"Observation/{o['id']}" for o in search(fhir, "Observation", subject=f"Patient/{patient}")
    }
    used = {r["reference"] for r in plan["supportingInfo"] if r["reference"].startswith("Obs")}
    assert used <= stored


# --- faults ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def painpath_proxied(proxy: FaultProxy) -> Iterator[TestClient]:
    """PainPath whose FHIR server is the proxy: 1 s read timeout, 3 retries."""
    settings = _settings(proxy.base, fhir_timeout_seconds=1.0)
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.mark.parametrize("fault", ["drop", "delay:1.5", "500"])
def test_transient_faults_are_retried_and_recover(
    fhir: httpx.Client, proxy: FaultProxy, painpath_proxied: TestClient, fault: str
) -> None:
    patient = load_patient(fhir, SURGICAL, f"i5h{fault[:4].strip(':.')}")
    proxy.queue(fault, fault)
    answer = triage(painpath_proxied, patient, f"recovers after 2x {fault}", writeback="true")
    assert answer.status_code == 200, answer.text
    assert [a for _, _, a in proxy.seen].count(fault) >= 2
    assert len(live_plans(fhir, patient)) == 1


@pytest.mark.parametrize(
    ("fault", "expected"),
    [("drop", (502, "transient")), ("500", (502, "transient")), ("delay:1.5", (504, "timeout"))],
)
def test_persistent_faults_become_gateway_errors(
    fhir: httpx.Client,
    proxy: FaultProxy,
    painpath_proxied: TestClient,
    fault: str,
    expected: tuple[int, str],
) -> None:
    patient = load_patient(fhir, SURGICAL, "i5i")
    proxy.queue(*[fault] * 4)
    answer = triage(painpath_proxied, patient, f"gives up after 4x {fault}")
    proxy.plan.clear()
    assert answer.status_code == expected[0], answer.text
    (issue,) = answer.json()["issue"]
    assert issue["code"] == expected[1]
    assert f"GET {proxy.base}/Patient/{patient}" in issue["diagnostics"]
    assert "after 4 attempts" in issue["diagnostics"]
    # and the next request, with the fault gone, recovers
    assert triage(painpath_proxied, patient, "triage via proxy").status_code == 200


# --- subscriptions -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def subscribed(fhir: httpx.Client, fhir_server: str) -> Iterator[tuple[str, Any]]:
    """PainPath under uvicorn, subscribed on sekmet by ``painpath subscribe`` (criteria mode)."""
    app = create_app(_settings(fhir_server))
    with serve_app(app) as base:
        assert painpath_cli(["subscribe", "--server", fhir_server, "--endpoint", base]) == 0
        try:
            yield base, app
        finally:
            for sub in search(fhir, "Subscription"):
                if sub["id"].startswith("painpath-"):
                    fhir.delete(f"/Subscription/{sub['id']}")


def _wait_for(predicate: Any, timeout: float = 20.0) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if predicate():
            return (time.perf_counter() - started) * 1000
        time.sleep(0.05)
    pytest.fail("timed out waiting for the write-back")


def test_subscription_round_trip(fhir: httpx.Client, subscribed: tuple[str, Any]) -> None:
    _, app = subscribed
    patient = load_patient(fhir, SURGICAL, "i5j")  # loading it notifies too: wait for that plan
    _wait_for(lambda: len(live_plans(fhir, patient)) == 1)
    (first,) = live_plans(fhir, patient)
    queue = app.state.fhir_server.reevaluator
    runs = queue.runs
    started = time.perf_counter()
    assert fhir.post("/Observation", json=pain_observation(patient, "x")).status_code == 201
    _wait_for(
        lambda: live_plans(fhir, patient)[0]["meta"]["versionId"] != first["meta"]["versionId"]
    )
    _timed("subscription: POST Observation -> new plan version", started)
    assert len(live_plans(fhir, patient)) == 1
    # PainPath's own write-back notified it again: ignored, so no further run
    time.sleep(1.0)
    assert queue.runs == runs + 1


def test_subscription_burst_is_coalesced(fhir: httpx.Client, subscribed: tuple[str, Any]) -> None:
    _, app = subscribed
    patient = load_patient(fhir, SURGICAL, "i5k")
    queue = app.state.fhir_server.reevaluator
    _wait_for(lambda: len(live_plans(fhir, patient)) == 1 and queue.idle)
    runs = queue.runs
    delay, max_wait = queue.delay, queue.max_wait
    queue.delay, queue.max_wait = 2.0, 10.0  # far longer than 8 PUTs take, even under load
    try:
        for index in range(8):
            fhir.put(
                f"/Observation/i5k-burst-{index}",
                json=pain_observation(patient, f"i5k-burst-{index}"),
            )
        _wait_for(lambda: queue.runs > runs and queue.idle)
    finally:
        queue.delay, queue.max_wait = delay, max_wait
    time.sleep(1.0)
    assert queue.runs - runs <= 2  # 8 notifications -> 1 run (2 if the burst straddled a run)
    assert len(live_plans(fhir, patient)) == 1


def test_notification_for_a_patient_the_server_lacks_is_answered_cleanly(
    subscribed: tuple[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    base, _app = subscribed
    caplog.set_level(logging.INFO)
    body = pain_observation("no-such-patient", "ghost-1")
    answer = httpx.put(f"{base}/hooks/fhir/Observation/ghost-1", json=body, trust_env=False)
    assert answer.status_code == 200
    _wait_for(lambda: "Patient/no-such-patient: not on the server" in caplog.text)
    assert "night-pain" not in caplog.text


def test_topic_based_subscription_round_trip(fhir: httpx.Client, fhir_server: str) -> None:
    app = create_app(_settings(fhir_server))
    with serve_app(app) as base:
        patient = load_patient(fhir, SURGICAL, "i5t")
        argv = ["subscribe", "--server", fhir_server, "--endpoint", base, "--topic"]
        assert painpath_cli(argv) == 0  # the handshake reached PainPath: active
        try:
            started = time.perf_counter()
            assert fhir.post("/Observation", json=pain_observation(patient, "y")).status_code == 201
            _wait_for(lambda: len(live_plans(fhir, patient)) == 1)
            _timed("topic subscription: POST Observation -> plan", started)
        finally:
            for sub in search(fhir, "Subscription"):
                if sub["id"].startswith("painpath-"):
                    fhir.delete(f"/Subscription/{sub['id']}")
