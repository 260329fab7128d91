"""Reading subscription notifications and building the write-back transaction (pure)."""

from __future__ import annotations

from typing import Any

from service.fhir.emit import IDENTIFIER_SYSTEM, KEY_SYSTEM
from service.server.writeback import build_writeback
from service.subscriptions.notifications import read_notification, read_resource_notification
from service.subscriptions.resources import criteria_subscription, hook_endpoint, topic_subscription

Json = dict[str, Any]
OURS = [{"system": IDENTIFIER_SYSTEM, "value": "x"}]


def _obs(patient: str = "p1", **extra: Any) -> Json:
    return {"resourceType": "Observation", "id": "o1", "subject": {"reference": patient}} | extra


def test_rest_hook_resource_names_its_patient() -> None:
    notice = read_resource_notification("Observation", "o1", _obs("http://x/fhir/Patient/p1"))
    assert (notice.patients, notice.focus) == ({"p1"}, set())


def test_own_results_and_other_types_are_ignored() -> None:
    assert not read_resource_notification("Observation", "o1", _obs(identifier=OURS)).patients
    ignored = read_resource_notification("Encounter", "e1", {"resourceType": "Encounter"})
    assert ignored.ignored == ["Encounter/e1"]
    # a CarePlan is read as treatment (rule set 2027.1), unless it is PainPath's own result
    plan = {"resourceType": "CarePlan", "id": "c1", "subject": {"reference": "Patient/p1"}}
    assert read_resource_notification("CarePlan", "c1", plan).patients == {"p1"}
    ours = read_resource_notification("CarePlan", "c1", plan | {"identifier": OURS})
    assert ours.ignored == ["CarePlan/c1"]


def test_payloadless_notifications_ask_for_a_read() -> None:
    assert read_resource_notification("Condition", "c1", None).focus == {"Condition/c1"}
    assert read_notification(None).kind == "ping"


def test_r4b_subscription_status_with_full_resource() -> None:
    status = {
        "resourceType": "SubscriptionStatus",
        "type": "event-notification",
        "notificationEvent": [
            {"focus": {"reference": "Observation/o1"}},
            {"focus": {"reference": "Condition/gone"}},
        ],
    }
    bundle = {
        "resourceType": "Bundle",
        "type": "history",
        "entry": [{"resource": status}, {"resource": _obs("Patient/p2")}],
    }
    notice = read_notification(bundle)
    assert (notice.kind, notice.patients, notice.focus) == ("event", {"p2"}, {"Condition/gone"})


def test_payload_search_transaction_bundle() -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": _obs("Patient/p3")}, {"resource": _obs(identifier=OURS)}],
    }
    assert read_notification(bundle).patients == {"p3"}


def test_subscriptions_have_stable_ids_and_the_hook_path() -> None:
    endpoint = hook_endpoint("http://painpath:8080/")
    assert endpoint == "http://painpath:8080/hooks/fhir"
    assert hook_endpoint(endpoint) == endpoint
    first = criteria_subscription("Observation", endpoint, "t")
    assert first == criteria_subscription("Observation", endpoint, "t")
    assert first["channel"]["header"] == ["Authorization: Bearer t"]
    assert first["criteria"] == "Observation?"
    assert topic_subscription(endpoint)["id"] != first["id"]


def test_writeback_never_puts_the_same_resource_twice() -> None:
    plan = {
        "resourceType": "CarePlan",
        "id": "u1",
        "status": "draft",
        "identifier": [{"system": KEY_SYSTEM, "value": "stable"}],
        "subject": {"reference": "Patient/p"},
    }
    existing = [plan | {"id": "stable"}, plan | {"id": "stale"}, plan | {"id": "stale"}]
    written = build_writeback(
        [plan], subject="Patient/p", ruleset_version="1", base="http://s/", existing=existing
    )
    urls = [e["request"]["url"] for e in written.transaction["entry"]]
    assert urls == ["CarePlan/stable", "CarePlan/stale"]
    assert written.superseded == ["CarePlan/stale"]
    assert written.care_plan == "CarePlan/stable"
