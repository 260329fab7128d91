"""The write-back against two independent FHIR servers: sekmet-fhir and Medplum's FHIR router.

Every scenario runs once per server (the module's ``server`` fixture is parametrised): the
session's sekmet-fhir (Python, SQLite) and Medplum's @medplum/fhir-router over its in-memory
repository behind ``medplum/server.mjs``, which refuses a write whose References name a resource
type the element does not allow (@medplum/core validateResource against the R4 definitions) and
applies transactions atomically. Both paths PainPath writes by are covered:

- the ``return=transaction`` Bundle of ``POST $triage`` (conditional creates with ``ifNoneExist``
  on the result identifiers, PUTs at deterministic ids for DetectedIssue and Provenance, urn:uuid
  references between the entries), POSTed unchanged, twice;
- ``Patient/{id}/$triage?writeback=true`` (PainPath reads the patient from the server and writes
  one transaction of PUTs at deterministic ids): re-runs, 3 concurrent runs in one PainPath, a
  6-way race over two ``painpath serve`` processes, and a red-flag case whose DetectedIssues must
  land.

What each server answered (HTTP status of the transaction, its entries' statuses, resources
found afterwards) is written to ``test-artifacts/fhir-servers-writeback.json``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from fhir_testkit import load_case, load_patient, with_prefix
from live_servers import free_port, serve_app, start_painpath

from service.api.app import create_app
from service.fhir.emit import IDENTIFIER_SYSTEM
from service.fhir.systems import cs
from service.server.fhir_server import FhirServerClient
from service.server.writeback import LIVE_STATUSES
from service.settings import Settings

pytestmark = pytest.mark.integration

Json = dict[str, Any]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACT = ROOT / "test-artifacts" / "fhir-servers-writeback.json"
FHIR_JSON = "application/fhir+json"
SURGICAL = "surgical-insufficient-data-no-imaging"
RED_FLAG = "cauda-equina-saddle-anaesthesia"
SERVERS = ("sekmet", "medplum")
# Whether the server refuses a Reference to a resource type its element does not allow. sekmet-
# fhir 0.1.1 does not, even with strict inbound validation (its R4B models do not check target
# types); the Medplum wrapper does, so PainPath's write-back is checked for it there.
CHECKS_REFERENCE_TARGETS = {"sekmet": False, "medplum": True}
ANSWERS: dict[str, Json] = {}


@dataclass
class Server:
    name: str
    base: str
    http: httpx.Client

    def search(self, rtype: str, **params: str) -> list[Json]:
        answer = self.http.get(f"/{rtype}", params={**params, "_count": "500"})
        assert answer.status_code == 200, answer.text[:400]
        return [
            e["resource"]
            for e in answer.json().get("entry", [])
            if e.get("search", {}).get("mode", "match") == "match"
        ]

    def plans(self, patient: str) -> list[Json]:
        return self.search("CarePlan", subject=f"Patient/{patient}")

    def live_plans(self, patient: str) -> list[Json]:
        return [p for p in self.plans(patient) if p["status"] in LIVE_STATUSES["CarePlan"]]

    def requests(self, patient: str) -> list[Json]:
        found = self.search("ServiceRequest", subject=f"Patient/{patient}")
        return [r for r in found if _ours(r)]

    def record(self, scenario: str, **facts: Any) -> None:
        ANSWERS.setdefault(self.name, {"scenarios": {}})["scenarios"][scenario] = facts


def _ours(resource: Json) -> bool:
    return any(i.get("system") == IDENTIFIER_SYSTEM for i in resource.get("identifier", []))


def _statuses(response: Json) -> dict[str, int]:
    """``{"201": n, "200": m}``: the entries of a transaction-response by status code."""
    counts = Counter(str(e["response"]["status"]).split()[0] for e in response.get("entry", []))
    return dict(sorted(counts.items()))


@pytest.fixture(scope="module", autouse=True)
def _write_answers() -> Iterator[None]:
    yield
    ARTIFACT.parent.mkdir(exist_ok=True)
    ARTIFACT.write_text(json.dumps(ANSWERS, indent=2, sort_keys=True) + "\n", encoding="utf-8")


@pytest.fixture(scope="module", params=SERVERS)
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    name: str = request.param
    base: str = request.getfixturevalue("fhir_server" if name == "sekmet" else "medplum_server")
    headers = {"Accept": FHIR_JSON, "Content-Type": FHIR_JSON}
    with httpx.Client(base_url=base, headers=headers, timeout=30.0, trust_env=False) as http:
        software = http.get("/metadata").json().get("software", {})
        ANSWERS.setdefault(name, {"scenarios": {}})["software"] = software
        yield Server(name, base, http)


def _settings(base: str) -> Settings:
    return Settings(
        _env_file=None, fhir_server=base, fhir_retries=3, fhir_backoff_seconds=0.05,
        fhir_backoff_max_seconds=0.2,
    )  # fmt: skip


@pytest.fixture
def transactions(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, Json]]:
    """Every transaction an in-process PainPath POSTs from now on: (HTTP status, response body).

    The real client method runs; this only keeps what the server answered."""
    seen: list[tuple[int, Json]] = []
    real = FhirServerClient.request

    async def recording(self: FhirServerClient, method: str, url: str, **kwargs: Any) -> Any:
        response = await real(self, method, url, **kwargs)
        if method == "POST" and url == self.base:
            seen.append((response.status_code, response.json()))
        return response

    monkeypatch.setattr(FhirServerClient, "request", recording)
    return seen


# --- the servers check reference targets -------------------------------------------------------


def test_which_server_refuses_a_reference_to_a_disallowed_target_type(server: Server) -> None:
    """The control: a CarePlan whose subject is an Observation (R4 allows Patient or Group),
    alone and inside a transaction. The checking server refuses both with an OperationOutcome
    and the refused transaction leaves nothing behind; the other stores them as sent."""
    patient = f"s2-{server.name}-ref"
    bad_plan = {
        "resourceType": "CarePlan", "status": "draft", "intent": "proposal",
        "subject": {"reference": f"Observation/{patient}-obs"},
    }  # fmt: skip
    alone = server.http.post("/CarePlan", json=bad_plan)
    transaction = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {"resourceType": "Patient", "id": patient},
                "request": {"method": "PUT", "url": f"Patient/{patient}"},
            },
            {"resource": bad_plan, "request": {"method": "POST", "url": "CarePlan"}},
        ],
    }
    inside = server.http.post("", json=transaction)
    server.record(
        "CarePlan.subject -> Observation (a disallowed reference target)",
        alone={"http": alone.status_code}, in_transaction={"http": inside.status_code},
        checks_reference_targets=CHECKS_REFERENCE_TARGETS[server.name],
    )  # fmt: skip
    if not CHECKS_REFERENCE_TARGETS[server.name]:
        assert (alone.status_code, inside.status_code) == (201, 200), (alone.text, inside.text)
        return
    for answer in (alone, inside):
        assert answer.status_code in {400, 422}, answer.text
        (issue,) = answer.json()["issue"]
        assert issue["severity"] == "error"
        assert issue["expression"] == ["CarePlan.subject"]
        assert 'got "Observation"' in issue["diagnostics"]
    assert server.http.get(f"/Patient/{patient}").status_code in {404, 410}


# --- the return=transaction Bundle, POSTed by the caller ----------------------------------------


def _transaction_for(server: Server, painpath: TestClient, case_name: str, prefix: str) -> Json:
    """Load a golden case's input on the server; PainPath's transaction Bundle for it."""
    case = load_case(case_name)
    patient = load_patient(server.http, case_name, prefix)
    bundle = with_prefix(case["bundle"], prefix, full_urls=False)
    params = {"asOf": case["asOf"], "profile": case["profile"], "return": "transaction"}
    answer = painpath.post(
        "/fhir/$triage", params=params, content=json.dumps(bundle),
        headers={"Content-Type": FHIR_JSON},
    )  # fmt: skip
    assert answer.status_code == 200, answer.text[:400]
    transaction: Json = answer.json()
    assert transaction["type"] == "transaction"
    transaction["patient"] = patient  # not FHIR: removed before posting
    return transaction


def test_transaction_bundle_is_accepted_and_a_repost_duplicates_nothing(
    server: Server, painpath: TestClient
) -> None:
    transaction = _transaction_for(server, painpath, SURGICAL, f"s2-{server.name}-tx")
    patient = transaction.pop("patient")
    first = server.http.post("", json=transaction)
    assert first.status_code == 200, first.text
    assert all(s.startswith("2") for s in _statuses(first.json())), first.text
    plans, requests = server.plans(patient), server.requests(patient)
    again = server.http.post("", json=transaction)
    assert again.status_code == 200, again.text
    assert [p["id"] for p in server.plans(patient)] == [p["id"] for p in plans]
    assert sorted(r["id"] for r in server.requests(patient)) == sorted(r["id"] for r in requests)
    assert len(plans) == 1
    assert plans[0]["status"] in LIVE_STATUSES["CarePlan"]
    sent = Counter(e["resource"]["resourceType"] for e in transaction["entry"])
    assert len(requests) == sent["ServiceRequest"] > 0
    # every reference of the stored plan resolves on the server (no urn:uuid left)
    (plan,) = plans
    refs = [a["reference"]["reference"] for a in plan["activity"] if "reference" in a]
    refs += [r["reference"] for r in plan.get("addresses", []) + plan.get("supportingInfo", [])]
    assert refs
    for ref in refs:
        assert server.http.get(f"/{ref}").status_code == 200, ref
    server.record(
        "return=transaction Bundle (surgical case), POSTed twice",
        entries=len(transaction["entry"]),
        first={"http": first.status_code, "entries": _statuses(first.json())},
        second={"http": again.status_code, "entries": _statuses(again.json())},
        after={"CarePlan": len(plans), "ServiceRequest": len(requests)},
    )


def test_red_flag_transaction_bundle_lands_its_detected_issues(
    server: Server, painpath: TestClient
) -> None:
    transaction = _transaction_for(server, painpath, RED_FLAG, f"s2-{server.name}-rftx")
    patient = transaction.pop("patient")
    answer = server.http.post("", json=transaction)
    assert answer.status_code == 200, answer.text[:400]
    sent = [e["resource"] for e in transaction["entry"]]
    issues = [r for r in sent if r["resourceType"] == "DetectedIssue"]
    assert issues
    for issue in issues:  # PUT at their deterministic ids
        stored = server.http.get(f"/DetectedIssue/{issue['id']}")
        assert stored.status_code == 200, stored.text
        assert stored.json()["patient"]["reference"] == f"Patient/{patient}"
        assert stored.json()["code"] == issue["code"]
    server.record(
        "return=transaction Bundle (red-flag case)",
        entries=len(sent),
        answer={"http": answer.status_code, "entries": _statuses(answer.json())},
        detected_issues=len(issues),
    )


# --- Patient/{id}/$triage?writeback=true ----------------------------------------------------------


def _triage(client: TestClient, patient: str) -> httpx.Response:
    answer: httpx.Response = client.post(
        f"/fhir/Patient/{patient}/$triage", params={"writeback": "true"}
    )
    return answer


def test_server_writeback_reruns_keep_one_live_plan(
    server: Server, transactions: list[tuple[int, Json]]
) -> None:
    patient = load_patient(server.http, SURGICAL, f"s2-{server.name}-wb")
    seen = []
    with TestClient(create_app(_settings(server.base))) as painpath:
        for _ in range(3):
            answer = _triage(painpath, patient)
            assert answer.status_code == 200, answer.text[:400]
            plans = server.live_plans(patient)
            requests = server.requests(patient)
            seen.append(([p["id"] for p in plans], sorted(r["id"] for r in requests)))
    assert seen[0] == seen[1] == seen[2]
    plan_ids, request_ids = seen[0]
    assert len(plan_ids) == 1
    assert len(server.plans(patient)) == 1
    assert request_ids
    assert len(set(request_ids)) == len(request_ids)
    assert len(transactions) == 3
    for status, response in transactions:
        assert status == 200
        assert response["type"] == "transaction-response"
    server.record(
        "Patient/$triage?writeback=true (surgical case), 3 runs in a row",
        runs=[{"http": s, "entries": _statuses(r)} for s, r in transactions],
        after={"live CarePlan": 1, "ServiceRequest": len(request_ids)},
    )


def test_concurrent_runs_and_a_race_of_two_processes_leave_one_live_plan(
    server: Server, transactions: list[tuple[int, Json]]
) -> None:
    """3 concurrent runs in one PainPath (in-process, under uvicorn), then 6 at once over two
    ``painpath serve`` processes (no shared lock: only the deterministic ids keep them apart)."""
    patient = load_patient(server.http, SURGICAL, f"s2-{server.name}-race")
    path = f"/fhir/Patient/{patient}/$triage"

    async def burst(bases: list[str], per_base: int) -> list[int]:
        async with httpx.AsyncClient(timeout=60, trust_env=False) as client:
            calls = [
                client.post(f"{b}{path}", params={"writeback": "true"})
                for b in bases
                for _ in range(per_base)
            ]
            return [r.status_code for r in await asyncio.gather(*calls)]

    with serve_app(create_app(_settings(server.base))) as inprocess:
        assert asyncio.run(burst([inprocess], 3)) == [200] * 3
    assert len(server.live_plans(patient)) == 1
    requests_after_three = sorted(r["id"] for r in server.requests(patient))

    ports = [free_port(), free_port()]
    processes = [start_painpath(port, PAINPATH_FHIR_SERVER=server.base) for port in ports]
    try:
        started = time.perf_counter()
        race = asyncio.run(burst([f"http://127.0.0.1:{p}" for p in ports], 3))
        race_ms = (time.perf_counter() - started) * 1000
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=20)
    assert race == [200] * 6
    plans = server.plans(patient)
    assert len(plans) == 1
    assert plans[0]["status"] in LIVE_STATUSES["CarePlan"]
    requests = server.requests(patient)
    assert sorted(r["id"] for r in requests) == requests_after_three
    assert all(r["status"] in LIVE_STATUSES["ServiceRequest"] for r in requests)
    assert len(transactions) == 3  # the in-process runs; the subprocesses' are not seen here
    server.record(
        "Patient/$triage?writeback=true (surgical case), 3 concurrent, then a 6-way race of 2 "
        "processes",
        concurrent_in_process=[{"http": s, "entries": _statuses(r)} for s, r in transactions],
        race_http=race,
        race_ms=round(race_ms),
        after={"CarePlan": len(plans), "live CarePlan": 1, "ServiceRequest": len(requests)},
    )


def test_server_writeback_of_a_red_flag_case_lands_its_detected_issues(
    server: Server, transactions: list[tuple[int, Json]]
) -> None:
    case = load_case(RED_FLAG)
    patient = load_patient(server.http, RED_FLAG, f"s2-{server.name}-rf")
    with TestClient(create_app(_settings(server.base))) as painpath:
        answer = _triage(painpath, patient)
    assert answer.status_code == 200, answer.text[:400]
    ((status, response),) = transactions
    assert status == 200
    written = [
        e["response"]["location"]
        for e in response["entry"]
        if "/DetectedIssue/" in e["response"]["location"]
    ]
    assert written, response
    codes = []
    for location in written:
        rid = location.split("/DetectedIssue/")[1].split("/")[0]
        stored = server.http.get(f"/DetectedIssue/{rid}")
        assert stored.status_code == 200, stored.text
        issue = stored.json()
        assert issue["patient"]["reference"] == f"Patient/{patient}"
        assert issue["status"] == "preliminary"
        for implicated in issue["implicated"]:
            assert server.http.get(f"/{implicated['reference']}").status_code == 200
        codes += [c["code"] for c in issue["code"]["coding"] if c["system"] == cs("red-flag")]
    assert sorted(codes) == sorted(case["expect"]["redFlags"])
    assert len(server.live_plans(patient)) == 1
    server.record(
        "Patient/$triage?writeback=true (red-flag case)",
        answer={"http": status, "entries": _statuses(response)},
        detected_issues=len(written),
        red_flags=sorted(codes),
    )


# --- paging ------------------------------------------------------------------------------------

# Whether the server's searchset pages carry next links. Medplum's in-memory repository answers a
# page with the full `total` and no links (its database repository pages; this one does not).
PAGES_WITH_LINKS = {"sekmet": True, "medplum": False}


def test_a_search_cut_short_by_missing_next_links_is_an_error_not_a_smaller_record(
    server: Server,
) -> None:
    """One resource a page: sekmet's next links bring every page and the red flag is found; on a
    server whose pages end before its ``total``, PainPath refuses (502) instead of evaluating a
    record without the Observations that carry the red flag."""
    case = load_case(RED_FLAG)
    patient = load_patient(server.http, RED_FLAG, f"s2-{server.name}-page")
    settings = _settings(server.base).model_copy(update={"fhir_page_size": 1})
    with TestClient(create_app(settings)) as painpath:
        answer = painpath.post(f"/fhir/Patient/{patient}/$triage")
    server.record(
        "Patient/$triage, one resource a page",
        http=answer.status_code,
        pages_with_next_links=PAGES_WITH_LINKS[server.name],
    )
    if PAGES_WITH_LINKS[server.name]:
        assert answer.status_code == 200, answer.text[:400]
        flags = [
            c["code"]
            for e in answer.json()["entry"]
            if e["resource"]["resourceType"] == "DetectedIssue"
            for c in e["resource"]["code"]["coding"]
        ]
        assert sorted(flags) == sorted(case["expect"]["redFlags"])
        return
    assert answer.status_code == 502, answer.text[:400]
    (issue,) = answer.json()["issue"]
    assert "pages held 1 and no next link" in issue["diagnostics"], issue
    assert "paging is incomplete" in issue["diagnostics"]


# --- supersession ------------------------------------------------------------------------------


def test_new_data_revokes_what_no_longer_applies_and_keeps_one_live_plan(
    server: Server, transactions: list[tuple[int, Json]]
) -> None:
    """A written surgical-case patient gets the cauda-equina findings: the re-run rewrites the
    same plan (now urgent), writes the DetectedIssue and revokes the ServiceRequests it no longer
    proposes (found through the Provenance that targets the plan)."""
    patient = load_patient(server.http, SURGICAL, f"s2-{server.name}-new")
    with TestClient(create_app(_settings(server.base))) as painpath:
        assert _triage(painpath, patient).status_code == 200
        (before,) = server.live_plans(patient)
        requests_before = {r["id"] for r in server.requests(patient)}
        cauda = with_prefix(
            load_case(RED_FLAG)["bundle"], f"s2-{server.name}-new-rf", full_urls=False
        )
        for entry in cauda["entry"]:
            resource = entry["resource"]
            if resource["resourceType"] in {"Condition", "Observation"}:
                resource["subject"] = {"reference": f"Patient/{patient}"}
                url = f"/{resource['resourceType']}/{resource['id']}"
                assert server.http.put(url, json=resource).status_code in {200, 201}
        answer = _triage(painpath, patient)
    assert answer.status_code == 200, answer.text[:400]
    (after,) = server.live_plans(patient)
    assert after["id"] == before["id"]
    assert after["category"] != before["category"]
    requests = {r["id"]: r for r in server.requests(patient)}
    revoked = {i for i, r in requests.items() if r["status"] == "revoked"}
    live = {i for i, r in requests.items() if r["status"] in LIVE_STATUSES["ServiceRequest"]}
    assert revoked
    assert revoked <= requests_before
    assert live.isdisjoint(revoked)
    issues = [e for e in answer.json()["entry"] if e["resource"]["resourceType"] == "DetectedIssue"]
    assert issues
    _, second = transactions[-1]
    server.record(
        "Patient/$triage?writeback=true, new red-flag data on a written patient",
        first={"http": transactions[0][0], "entries": _statuses(transactions[0][1])},
        second={"http": transactions[-1][0], "entries": _statuses(second)},
        after={"live CarePlan": 1, "ServiceRequest revoked": len(revoked),
               "ServiceRequest live": len(live)},
    )  # fmt: skip
