"""``POST /fhir/Patient/{id}/$triage`` and the subscription receiver over a fake FHIR server."""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fake_fhir_server import BASE, FakeFhirServer
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.fhir.emit import IDENTIFIER_SYSTEM, KEY_SYSTEM
from service.fhir.systems import cs
from service.settings import Settings

Json = dict[str, Any]
AS_OF = "2026-11-24T10:00:00+01:00"
TRIAGE = "/fhir/Patient/patient-1/$triage"


def _settings(**extra: Any) -> Settings:
    values = {
        "_env_file": None,
        "fhir_server": BASE,
        "fhir_retries": 2,
        "fhir_backoff_seconds": 0.0,
        "subscription_debounce_seconds": 0.05,
        **extra,
    }
    return Settings(**values)


@pytest.fixture
def app_client(server: FakeFhirServer) -> Iterator[TestClient]:
    """PainPath whose FHIR client talks to the fake server."""
    app = create_app(_settings(), fhir_transport=server.transport())
    with TestClient(app) as client:
        yield client


def _live_plans(server: FakeFhirServer) -> list[Json]:
    return [p for p in server.of_type("CarePlan") if p["status"] == "draft"]


def test_patient_is_pulled_and_evaluated(app_client: TestClient, server: FakeFhirServer) -> None:
    answer = app_client.post(TRIAGE, params={"asOf": AS_OF})
    assert answer.status_code == 200, answer.text
    bundle = answer.json()
    assert bundle["type"] == "collection"
    plan = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "CarePlan"
    )
    assert plan["subject"] == {"reference": "Patient/patient-1"}
    assert {a["reference"] for a in plan.get("addresses", [])} <= {
        f"Condition/{c['id']}" for c in server.of_type("Condition")
    }
    assert not server.transactions  # no write-back unless asked


def test_writeback_writes_one_transaction_at_deterministic_ids(
    app_client: TestClient, server: FakeFhirServer
) -> None:
    answer = app_client.post(TRIAGE, params={"asOf": AS_OF, "writeback": "true"})
    assert answer.status_code == 200, answer.text
    (transaction,) = server.transactions
    for entry in transaction["entry"]:
        resource = entry["resource"]
        assert entry["request"] == {
            "method": "PUT",
            "url": f"{resource['resourceType']}/{resource['id']}",
        }
        if resource["resourceType"] != "Provenance":
            # written at its result key (stable per patient and rule set)
            assert {"system": KEY_SYSTEM, "value": resource["id"]} in resource["identifier"]
            assert resource["identifier"][0]["system"] == IDENTIFIER_SYSTEM
        assert "urn:uuid:" not in str(resource)
    (plan,) = _live_plans(server)
    for activity in plan["activity"]:
        if "reference" in activity:
            assert tuple(activity["reference"]["reference"].split("/")) in server.store


def test_rerun_with_new_data_replaces_the_plan_in_place(
    app_client: TestClient, server: FakeFhirServer
) -> None:
    app_client.post(TRIAGE, params={"asOf": AS_OF, "writeback": "true"})
    first = {ref: r["meta"]["versionId"] for ref, r in server.store.items() if ref[0] == "CarePlan"}
    server.add(
        {
            "resourceType": "Observation",
            "id": "new-pain",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "72514-3"}]},
            "subject": {"reference": "Patient/patient-1"},
            "effectiveDateTime": "2026-11-23",
            "valueQuantity": {"value": 9},
        }
    )
    parameters = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "writeback", "valueBoolean": True},
            {"name": "asOf", "valueDateTime": AS_OF},
        ],
    }
    assert app_client.post(TRIAGE, json=parameters).status_code == 200
    second = {
        ref: r["meta"]["versionId"] for ref, r in server.store.items() if ref[0] == "CarePlan"
    }
    assert first.keys() == second.keys()  # the same plan, a new version
    assert first != second
    assert len(_live_plans(server)) == 1


def test_superseded_results_are_revoked(app_client: TestClient, server: FakeFhirServer) -> None:
    app_client.post(TRIAGE, params={"asOf": AS_OF, "writeback": "true"})
    (plan,) = _live_plans(server)
    # An older rule-set's plan and a proposal the rules no longer make, both still live.
    old = copy.deepcopy(plan) | {"id": "old-plan"}
    old["identifier"] = [{"system": IDENTIFIER_SYSTEM, "value": "old-plan"}]
    server.add(old)
    server.add(
        {
            "resourceType": "ServiceRequest",
            "id": "old-sr",
            "status": "draft",
            "intent": "proposal",
            "subject": {"reference": "Patient/patient-1"},
            "identifier": [{"system": IDENTIFIER_SYSTEM, "value": "old-sr"}],
        }
    )
    server.add(
        {
            "resourceType": "ServiceRequest",
            "id": "clinician-sr",
            "status": "draft",
            "intent": "order",
            "subject": {"reference": "Patient/patient-1"},
        }
    )
    assert app_client.post(TRIAGE, params={"writeback": "true"}).status_code == 200
    assert server.store[("CarePlan", "old-plan")]["status"] == "revoked"
    assert server.store[("ServiceRequest", "old-sr")]["status"] == "revoked"
    assert server.store[("ServiceRequest", "clinician-sr")]["status"] == "draft"  # not ours
    (live,) = _live_plans(server)
    assert live["replaces"] == [{"reference": "CarePlan/old-plan"}]


def test_concurrent_writebacks_for_one_patient_are_serialised(
    server: FakeFhirServer,
) -> None:
    app = create_app(_settings(), fhir_transport=server.transport())

    async def main() -> list[int]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://pp") as client:
                answers = await asyncio.gather(
                    *[client.post(TRIAGE, params={"writeback": "true"}) for _ in range(5)]
                )
        return [a.status_code for a in answers]

    assert asyncio.run(main()) == [200] * 5
    assert len(server.transactions) == 5
    assert len(server.of_type("CarePlan")) == 1
    order = [r.method for r in server.requests if r.method == "POST" or "CarePlan" in r.url.path]
    assert order == ["GET", "POST"] * 5  # each run read the plans, then wrote: never interleaved


@pytest.mark.parametrize(
    ("faults", "status", "code"),
    [
        ([503] * 3, 502, "transient"),
        ([httpx.ReadTimeout("slow")] * 3, 504, "timeout"),
        ([httpx.ConnectError("refused")] * 3, 502, "transient"),
        ([403], 502, "exception"),
    ],
    ids=["5xx", "timeout", "refused", "forbidden"],
)
def test_upstream_failures_become_operation_outcomes(
    app_client: TestClient, server: FakeFhirServer, faults: list[Any], status: int, code: str
) -> None:
    server.faults = list(faults)
    answer = app_client.post(TRIAGE)
    assert answer.status_code == status
    (issue,) = answer.json()["issue"]
    assert issue["code"] == code
    assert f"GET {BASE}/Patient/patient-1" in issue["diagnostics"]


def test_retries_recover(app_client: TestClient, server: FakeFhirServer) -> None:
    server.faults = [503, httpx.ReadTimeout("slow")]
    assert app_client.post(TRIAGE).status_code == 200


def test_unknown_patient_is_404(app_client: TestClient) -> None:
    answer = app_client.post("/fhir/Patient/nobody/$triage")
    assert answer.status_code == 404
    assert answer.json()["issue"][0]["code"] == "not-found"


def test_failed_write_leaves_nothing_half_written(
    app_client: TestClient, server: FakeFhirServer
) -> None:
    before = copy.deepcopy(server.store)
    # every read succeeds; the transaction answers 400 (rolled back by the server)
    original = server._transaction

    def refuse(bundle: Json) -> httpx.Response:
        server.transactions.append(bundle)
        return httpx.Response(
            400,
            json={
                "resourceType": "OperationOutcome",
                "issue": [{"severity": "error", "code": "invalid", "diagnostics": "rolled back"}],
            },
        )

    server._transaction = refuse  # type: ignore[method-assign]
    answer = app_client.post(TRIAGE, params={"writeback": "true"})
    server._transaction = original  # type: ignore[method-assign]
    assert answer.status_code == 502
    assert "rolled back" in answer.json()["issue"][0]["diagnostics"]
    assert server.store == before


def test_no_server_configured_is_422() -> None:
    with TestClient(create_app(Settings(_env_file=None))) as client:
        for path in ("/fhir/Patient/p/$triage", "/hooks/fhir"):
            answer = client.post(path)
            assert answer.status_code == 422, path
            assert "PAINPATH_FHIR_SERVER" in answer.json()["issue"][0]["diagnostics"]


DOT_SEGMENT_CALLS = [
    ("/fhir/Patient/%2E%2E/$triage", None, "path.patient_id"),
    ("/fhir/Patient/%2E/$triage", None, "path.patient_id"),
    ("/fhir/PlanDefinition/back-pain-pathway/$apply", "Patient/..", "Parameters.parameter[0]"),
    ("/fhir/Questionnaire/red-flag-screen/$populate", "Patient/.", "Parameters.parameter[0]"),
]


@pytest.mark.parametrize(("path", "subject", "where"), DOT_SEGMENT_CALLS)
def test_dot_segment_patient_ids_are_400_and_never_reach_the_server(
    app_client: TestClient, server: FakeFhirServer, path: str, subject: str | None, where: str
) -> None:
    # "." and ".." match the FHIR id pattern but are URL dot-segments: joined to the server's
    # base they read the base itself or search every patient
    body = None
    if subject is not None:
        body = {"resourceType": "Parameters", "parameter": [
            {"name": "subject", "valueReference": {"reference": subject}}]}  # fmt: skip
    answer = app_client.post(path, params={"asOf": AS_OF}, json=body)
    assert answer.status_code == 400, answer.text
    (issue,) = answer.json()["issue"]
    assert issue["expression"] == [where]
    assert "FHIR id" in issue["diagnostics"]
    assert not server.requests


def _answer_with(resource: Json) -> Any:
    return lambda request: httpx.Response(200, json=resource)


@pytest.mark.parametrize(
    "answer",
    [
        {"resourceType": "Bundle", "type": "searchset", "total": 0},  # what GET /Patient gives
        {"resourceType": "CapabilityStatement", "status": "active"},  # ... and GET base
        {"resourceType": "Patient", "birthDate": "1970-01-01"},
        {"resourceType": "Patient", "id": "someone-else", "birthDate": "1970-01-01"},
    ],
    ids=["bundle", "other-type", "no-id", "other-id"],
)
def test_an_answer_that_is_not_the_requested_patient_is_502(
    app_client: TestClient, server: FakeFhirServer, answer: Json
) -> None:
    server.faults = [_answer_with(answer)]
    response = app_client.post(TRIAGE, params={"asOf": AS_OF})
    assert response.status_code == 502, response.text
    (issue,) = response.json()["issue"]
    assert issue["code"] == "exception"
    assert f"GET {BASE}/Patient/patient-1" in issue["diagnostics"]


def test_query_options_are_read_as_for_triage(
    app_client: TestClient, server: FakeFhirServer
) -> None:
    for params in ({"writeback": "maybe"}, [("asOf", AS_OF), ("asOf", AS_OF)], {"asOf": ""}):
        assert app_client.post(TRIAGE, params=params).status_code == 400, params
    part = {"name": "writeback", "valueBoolean": False}
    twice = {"resourceType": "Parameters", "parameter": [part, part]}
    assert app_client.post(TRIAGE, json=twice).status_code == 400
    answer = app_client.post(TRIAGE, params={"asOf": AS_OF, "bogus": "1"})
    assert answer.status_code == 200, answer.text
    outcomes = [e["resource"] for e in answer.json()["entry"]]
    issues = [i for r in outcomes if r["resourceType"] == "OperationOutcome" for i in r["issue"]]
    assert [i["expression"] for i in issues if i["code"] == "not-supported"] == [["bogus"]]
    strict = {"Prefer": "handling=strict"}
    assert app_client.post(TRIAGE, params={"bogus": "1"}, headers=strict).status_code == 400
    assert not server.transactions


def test_bad_patient_id_and_body_are_400(app_client: TestClient) -> None:
    assert app_client.post("/fhir/Patient/a%20b/$triage").status_code == 400
    bad = {"resourceType": "Parameters", "parameter": [{"name": "bundle", "valueString": "x"}]}
    assert app_client.post(TRIAGE, json=bad).status_code == 400


# --- subscription receiver -------------------------------------------------------------------


def _observation(patient: str, **extra: Any) -> Json:
    return {
        "resourceType": "Observation",
        "id": "o-new",
        "status": "final",
        "code": {"coding": [{"system": cs("painpath"), "code": "night-pain"}]},
        "subject": {"reference": f"Patient/{patient}"},
        "valueBoolean": True,
        **extra,
    }


def _drain(client: TestClient) -> None:
    queue = client.app.state.fhir_server.reevaluator  # type: ignore[attr-defined]
    client.portal.call(queue.drain)  # type: ignore[union-attr]


def test_rest_hook_burst_is_coalesced_into_one_writeback(
    app_client: TestClient, server: FakeFhirServer
) -> None:
    queue = app_client.app.state.fhir_server.reevaluator  # type: ignore[attr-defined]
    # a debounce far longer than five local PUTs take, even on a loaded 2-core CI machine
    queue.delay, queue.max_wait = 2.0, 10.0
    for _ in range(5):
        answer = app_client.put("/hooks/fhir/Observation/o-new", json=_observation("patient-1"))
        assert answer.status_code == 200
    _drain(app_client)
    assert len(server.transactions) == 1
    assert len(_live_plans(server)) == 1


def test_painpath_own_results_do_not_trigger(
    app_client: TestClient, server: FakeFhirServer
) -> None:
    own = _observation("patient-1", identifier=[{"system": IDENTIFIER_SYSTEM, "value": "x"}])
    assert app_client.put("/hooks/fhir/Observation/o-new", json=own).status_code == 200
    _drain(app_client)
    assert not server.transactions


def test_id_only_and_backport_notifications_read_the_focus(
    app_client: TestClient, server: FakeFhirServer
) -> None:
    server.add(_observation("patient-1"))
    assert app_client.post("/hooks/fhir/Observation/o-new").status_code == 200  # no payload
    status = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "type", "valueCode": "event-notification"},
            {
                "name": "notification-event",
                "part": [
                    {"name": "focus", "valueReference": {"reference": f"{BASE}/Observation/o-new"}}
                ],
            },
        ],
    }
    notification = {"resourceType": "Bundle", "type": "history", "entry": [{"resource": status}]}
    assert app_client.post("/hooks/fhir", json=notification).status_code == 200
    _drain(app_client)
    assert 1 <= len(server.transactions) <= 2


def test_notification_for_an_unknown_patient_is_acknowledged(
    app_client: TestClient, server: FakeFhirServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    answer = app_client.put("/hooks/fhir/Observation/o-new", json=_observation("ghost"))
    assert answer.status_code == 200
    assert app_client.post("/hooks/fhir/Observation/missing").status_code == 200
    _drain(app_client)
    assert not server.transactions
    text = caplog.text
    assert "Patient/ghost: not on the server" in text
    assert "Observation/missing: not on the server" in text
    assert "night-pain" not in text  # ids only, never content


def test_handshake_and_ping_are_acknowledged(
    app_client: TestClient, server: FakeFhirServer
) -> None:
    status = {
        "resourceType": "Parameters",
        "parameter": [{"name": "type", "valueCode": "handshake"}],
    }
    handshake = {"resourceType": "Bundle", "type": "history", "entry": [{"resource": status}]}
    assert app_client.post("/hooks/fhir", json=handshake).status_code == 200
    assert (
        app_client.post("/hooks/fhir").status_code == 200
    )  # empty ping: reconcile by _lastUpdated
    _drain(app_client)
    assert len(server.transactions) == 1  # the fake ignores _lastUpdated: patient-1 "changed"


def test_subscription_token_is_required_when_configured(server: FakeFhirServer) -> None:
    settings = _settings(subscription_token="hook-secret")  # noqa: S106 - a test token
    app = create_app(settings, fhir_transport=server.transport())
    with TestClient(app) as client:
        body = _observation("patient-1")
        assert client.put("/hooks/fhir/Observation/o-new", json=body).status_code == 401
        headers = {"Authorization": "Bearer hook-secret"}
        ok = client.put("/hooks/fhir/Observation/o-new", json=body, headers=headers)
        assert ok.status_code == 200


def test_everything_mode_reads_the_patient_compartment(server: FakeFhirServer) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/$everything"):
            assert request.url.params["_type"].startswith("Condition,Observation")
            entries = [{"resource": r} for r in server.store.values()]
            page = {"resourceType": "Bundle", "type": "searchset", "entry": entries}
            return httpx.Response(200, json=page)
        return server.handle(request)

    app = create_app(_settings(fhir_everything=True), fhir_transport=httpx.MockTransport(handle))
    with TestClient(app) as client:
        assert client.post(TRIAGE, params={"asOf": AS_OF}).status_code == 200
    paths = [r.url.path for r in server.requests]
    assert paths == ["/fhir/Patient/patient-1"]  # the rest came from $everything
