"""PainPath's ``return=transaction`` Bundle, POSTed to a real FHIR server, lands as contracted.

Each scenario gives its golden case's input its own resource ids (one patient per scenario on the
shared session server), loads that input as a transaction of ``PUT {type}/{id}`` so PainPath's
literal references (``Patient/…``, ``Condition/…``) resolve, asks PainPath in-process for the
transaction Bundle, and POSTs it unchanged (except where a test says otherwise) to the server.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from fhir_testkit import with_prefix

from service.fhir.systems import cs

pytestmark = pytest.mark.integration

Json = dict[str, Any]
log = logging.getLogger("painpath.integration")

CASES = Path(__file__).resolve().parents[1] / "golden" / "cases"
FHIR_JSON = "application/fhir+json"
SURGICAL_CASE = "surgical-insufficient-data-no-imaging"
RED_FLAG_CASE = "cauda-equina-saddle-anaesthesia"
RESULT_TYPES = (
    "Observation", "CarePlan", "ServiceRequest", "DetectedIssue", "DocumentReference", "Provenance",
)  # fmt: skip


# ---------------------------------------------------------------------------- helpers


def _load_case(name: str) -> Json:
    case: Json = json.loads((CASES / f"{name}.json").read_text(encoding="utf-8"))
    return case


def _as_put_transaction(bundle: Json) -> Json:
    """A collection Bundle as a transaction of ``PUT {type}/{id}`` (ids kept)."""
    entries = []
    for entry in bundle["entry"]:
        resource = entry["resource"]
        url = f"{resource['resourceType']}/{resource['id']}"
        entries.append({"resource": resource, "request": {"method": "PUT", "url": url}})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def _status(entry: Json) -> int:
    return int(entry["response"]["status"].split()[0])


def _local_ref(location: str) -> str:
    """``http://…/fhir/CarePlan/abc/_history/1`` -> ``CarePlan/abc``."""
    parts = location.split("/_history/")[0].rstrip("/").split("/")
    return f"{parts[-2]}/{parts[-1]}"


def _codes(concept: Json, system: str) -> list[str]:
    return [c["code"] for c in concept.get("coding", []) if c.get("system") == system]


def _search(fhir: httpx.Client, rtype: str, **params: str) -> list[Json]:
    response = fhir.get(f"/{rtype}", params={**params, "_count": "500"})
    assert response.status_code == 200, response.text
    bundle = response.json()
    assert "next" not in {link["relation"] for link in bundle.get("link", [])}
    return [e["resource"] for e in bundle.get("entry", []) if e.get("search", {}).get(
        "mode", "match") == "match"]  # fmt: skip


def _resolves(fhir: httpx.Client, reference: str) -> bool:
    return fhir.get(f"/{reference}").status_code == 200


@dataclass
class Scenario:
    """One golden case loaded into the server, and PainPath's transaction Bundle for it."""

    case: Json
    patient: str  # "Patient/<id>" on the server
    transaction: Json


def _prepare(fhir: httpx.Client, painpath: TestClient, case_name: str, prefix: str) -> Scenario:
    case = _load_case(case_name)
    bundle = with_prefix(case["bundle"], prefix, full_urls=False)
    loaded = fhir.post("", json=_as_put_transaction(bundle))
    assert loaded.status_code == 200, f"input not accepted: {loaded.text}"
    assert all(_status(e) in {200, 201} for e in loaded.json()["entry"]), loaded.text
    params = {"asOf": case["asOf"], "profile": case["profile"], "return": "transaction"}
    answer = painpath.post(
        "/fhir/$triage", params=params, content=json.dumps(bundle),
        headers={"Content-Type": FHIR_JSON},
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    transaction: Json = answer.json()
    assert transaction["type"] == "transaction"
    patient = next(
        f"Patient/{e['resource']['id']}"
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Patient"
    )
    return Scenario(case, patient, transaction)


def _post(fhir: httpx.Client, transaction: Json, label: str) -> httpx.Response:
    started = time.perf_counter()
    response = fhir.post("", json=transaction)
    log.info(
        "%s: POST transaction (%d entries) -> %d in %.1f ms", label,
        len(transaction["entry"]), response.status_code, (time.perf_counter() - started) * 1000,
    )  # fmt: skip
    return response


def _counts(fhir: httpx.Client, scenario: Scenario, care_plan: str) -> dict[str, int]:
    return {
        "CarePlan": len(_search(fhir, "CarePlan", subject=scenario.patient)),
        "ServiceRequest": len(_search(fhir, "ServiceRequest", subject=scenario.patient)),
        "Observation": len(_search(fhir, "Observation", subject=scenario.patient)),
        "Provenance": len(_search(fhir, "Provenance", target=care_plan)),
    }


# ---------------------------------------------------------------------------- surgical case


@dataclass
class WriteBack:
    """The surgical case, written twice: the first and the second transaction-response."""

    scenario: Scenario
    first: httpx.Response
    second: httpx.Response
    before: dict[str, int]  # counts after the first write, before the second
    after: dict[str, int]

    def created(self) -> dict[str, str]:
        """PainPath fullUrl (urn:uuid) -> the server's ``Type/id`` from the first write."""
        return {
            sent["fullUrl"]: _local_ref(got["response"]["location"])
            for sent, got in zip(
                self.scenario.transaction["entry"], self.first.json()["entry"], strict=True
            )
        }


@pytest.fixture(scope="module")
def write_back(fhir: httpx.Client, painpath: TestClient) -> WriteBack:
    scenario = _prepare(fhir, painpath, SURGICAL_CASE, "wb")
    first = _post(fhir, scenario.transaction, f"{SURGICAL_CASE} first")
    assert first.status_code == 200, first.text
    care_plans = _search(fhir, "CarePlan", subject=scenario.patient)
    assert len(care_plans) == 1, care_plans
    care_plan = f"CarePlan/{care_plans[0]['id']}"
    before = _counts(fhir, scenario, care_plan)
    second = _post(fhir, scenario.transaction, f"{SURGICAL_CASE} again")
    after = _counts(fhir, scenario, care_plan)
    return WriteBack(scenario, first, second, before, after)


def test_transaction_is_accepted_and_every_entry_created(write_back: WriteBack) -> None:
    body = write_back.first.json()
    assert body["resourceType"] == "Bundle"
    assert body["type"] == "transaction-response"
    sent = write_back.scenario.transaction["entry"]
    assert len(body["entry"]) == len(sent)
    assert [_status(e) for e in body["entry"]] == [201] * len(sent), body["entry"]
    for request, response in zip(sent, body["entry"], strict=True):
        assert _local_ref(response["response"]["location"]).startswith(
            request["resource"]["resourceType"] + "/"
        )


def test_care_plan_reads_back_with_resolved_service_requests(
    fhir: httpx.Client, write_back: WriteBack
) -> None:
    (care_plan,) = _search(fhir, "CarePlan", subject=write_back.scenario.patient)
    assert care_plan["status"] == "draft"
    assert care_plan["intent"] == "proposal"
    assert care_plan["subject"]["reference"] == write_back.scenario.patient
    sent_plan = next(
        e["resource"]
        for e in write_back.scenario.transaction["entry"]
        if e["resource"]["resourceType"] == "CarePlan"
    )
    assert care_plan["identifier"] == sent_plan["identifier"]

    activity_refs = [a["reference"]["reference"] for a in care_plan["activity"] if "reference" in a]
    created = write_back.created()
    created_requests = {ref for ref in created.values() if ref.startswith("ServiceRequest/")}
    assert activity_refs, "the CarePlan proposes no ServiceRequest"
    assert not [r for r in activity_refs if r.startswith("urn:uuid:")], activity_refs
    assert set(activity_refs) == created_requests
    stored = {f"ServiceRequest/{r['id']}": r for r in _search(
        fhir, "ServiceRequest", subject=write_back.scenario.patient)}  # fmt: skip
    assert set(stored) == created_requests
    for request in stored.values():
        assert (request["status"], request["intent"]) == ("draft", "proposal")
        assert _codes(request["category"][0], cs("service")), request["category"]
    for ref in care_plan.get("addresses", []) + care_plan.get("supportingInfo", []):
        assert _resolves(fhir, ref["reference"]), ref


def test_provenance_targets_resolve_to_the_created_results(
    fhir: httpx.Client, write_back: WriteBack
) -> None:
    created = write_back.created()
    provenance_ref = next(ref for ref in created.values() if ref.startswith("Provenance/"))
    provenance = fhir.get(f"/{provenance_ref}").json()
    targets = [t["reference"] for t in provenance["target"]]
    assert not [t for t in targets if t.startswith("urn:uuid:")], targets
    assert set(targets) == {ref for ref in created.values() if ref != provenance_ref}
    for target in targets:
        assert _resolves(fhir, target), target
    for entity in provenance.get("entity", []):
        assert _resolves(fhir, entity["what"]["reference"]), entity


def test_repost_creates_no_duplicate_results(write_back: WriteBack) -> None:
    assert write_back.second.status_code == 200, write_back.second.text
    for kind in ("CarePlan", "ServiceRequest", "Observation"):
        assert write_back.after[kind] == write_back.before[kind], (kind, write_back.after)
    first_refs = write_back.created()
    for sent, got in zip(
        write_back.scenario.transaction["entry"], write_back.second.json()["entry"], strict=True
    ):
        if "ifNoneExist" not in sent["request"]:
            continue
        assert _status(got) == 200, (sent["request"], got["response"])
        assert _local_ref(got["response"]["location"]) == first_refs[sent["fullUrl"]]


def test_repost_creates_no_duplicate_provenance(write_back: WriteBack) -> None:
    """Provenance has no identifier: it is PUT at its deterministic id, so a re-post updates it."""
    assert write_back.after["Provenance"] == write_back.before["Provenance"]
    assert [_status(e) for e in write_back.second.json()["entry"]] == [200] * len(
        write_back.second.json()["entry"]
    )


# ---------------------------------------------------------------------------- red-flag case


def test_red_flag_transaction_lands_unchanged(fhir: httpx.Client, painpath: TestClient) -> None:
    """The DetectedIssues are PUT at their deterministic ids (no identifier search needed: the
    test server has none for DetectedIssue), so the transaction lands as PainPath answers it."""
    scenario = _prepare(fhir, painpath, RED_FLAG_CASE, "rf1")
    response = _post(fhir, scenario.transaction, f"{RED_FLAG_CASE} unchanged")
    assert response.status_code == 200, response.text
    again = _post(fhir, scenario.transaction, f"{RED_FLAG_CASE} re-posted")
    assert again.status_code == 200, again.text
    first = [e["response"]["location"] for e in response.json()["entry"]]
    second = [e["response"]["location"] for e in again.json()["entry"]]
    assert [_local_ref(u) for u in first] == [_local_ref(u) for u in second]


def test_red_flag_detected_issue_lands(fhir: httpx.Client, painpath: TestClient) -> None:
    scenario = _prepare(fhir, painpath, RED_FLAG_CASE, "rf2")
    expected_flags = sorted(scenario.case["expect"]["redFlags"])
    response = _post(fhir, scenario.transaction, RED_FLAG_CASE)
    assert response.status_code == 200, response.text
    entries = response.json()["entry"]
    assert [_status(e) for e in entries] == [201] * len(entries), entries

    created = [_local_ref(e["response"]["location"]) for e in entries]
    issues = [fhir.get(f"/{ref}").json() for ref in created if ref.startswith("DetectedIssue/")]
    assert sorted(c for i in issues for c in _codes(i["code"], cs("red-flag"))) == expected_flags
    for issue in issues:
        assert issue["status"] == "preliminary"
        assert issue["patient"]["reference"] == scenario.patient
        assert issue["implicated"], issue
        for implicated in issue["implicated"]:
            assert _resolves(fhir, implicated["reference"]), implicated

    (care_plan,) = _search(fhir, "CarePlan", subject=scenario.patient)
    assert _codes(care_plan["category"][0], cs("treatment-stage")) == [
        scenario.case["expect"]["recommendedStage"]
    ]
    provenance = next(
        fhir.get(f"/{ref}").json() for ref in created if ref.startswith("Provenance/")
    )
    targets = {t["reference"] for t in provenance["target"]}
    assert {f"DetectedIssue/{i['id']}" for i in issues} <= targets
    assert all(_resolves(fhir, t) for t in targets)
