"""CDS Hooks 2.0: discovery, request validation, prefetch, cards (content, not only status codes),
identity of the suggested resources with ``$triage``'s, golden vignettes and feedback."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from cds_testkit import (
    CASES,
    about_someone_else,
    as_of,
    case_patient_id,
    case_resources,
    hook_request,
    load_case,
    prefetch_for,
)
from fhir_testkit import schema_errors
from starlette.testclient import TestClient

from service.app.pipeline import canonical_bytes
from service.cds_hooks.request import PREFETCH, Sourced, cds_bundle

Json = dict[str, Any]
AppFactory = Any
PV = "/cds-services/painpath-patient-view"


def _patient_view(client: TestClient, case: Json, **kwargs: Any) -> Json:
    body = hook_request(
        "patient-view", case_patient_id(case), prefetch=prefetch_for(case_resources(case)), **kwargs
    )
    response = client.post(PV, json=body)
    assert response.status_code == 200, response.text
    answer: Json = response.json()
    return answer


# --- discovery ------------------------------------------------------------------------------------
def test_discovery_lists_the_three_services_with_prefetch(cds: TestClient) -> None:
    response = cds.get("/cds-services")
    assert response.status_code == 200
    services = {s["id"]: s for s in response.json()["services"]}
    assert {k: s["hook"] for k, s in services.items()} == {
        "painpath-patient-view": "patient-view",
        "painpath-order-select": "order-select",
        "painpath-order-sign": "order-sign",
    }
    for service in services.values():
        assert service["description"]
        assert service["title"]
        assert set(service["prefetch"]) >= {
            "patient", "conditions", "observations", "procedures", "medications",
            "imagingReports", "devices", "questionnaireResponses",
        }  # fmt: skip
        assert service["prefetch"]["patient"] == "Patient/{{context.patientId}}"
        for template in service["prefetch"].values():
            assert "{{context.patientId}}" in template


# --- patient-view ---------------------------------------------------------------------------------
def test_patient_view_critical_card_for_a_stat_red_flag(cds: TestClient) -> None:
    case = load_case("cauda-equina-saddle-anaesthesia")
    cards = _patient_view(cds, case)["cards"]
    assert len(cards) == 1
    card = cards[0]
    assert card["indicator"] == "critical"
    assert len(card["summary"]) < 140
    assert "cauda equina" in card["summary"].lower()
    assert card["source"] == {
        "label": "NICE NG59 Low back pain and sciatica in over 16s (2016, updated 2020)",
        "url": "https://www.nice.org.uk/guidance/ng59",
    }
    detail = card["detail"]
    for mention in ("**Pain type:", "**Red flags**", "Suspected cauda equina syndrome", "(stat)",
                    "**Treatment stages**", "| Surgical referral |", "**Proposed**",
                    "Referral to a spinal surgeon (stat)"):  # fmt: skip
        assert mention in detail, mention
    assert card["selectionBehavior"] == "at-most-one"
    assert all(r["display"] and r["code"] and r["system"] for r in card["overrideReasons"])
    (suggestion,) = card["suggestions"]
    assert suggestion["isRecommended"] is True
    assert suggestion["uuid"]
    actions = suggestion["actions"]
    assert {a["type"] for a in actions} == {"create"}
    types = [a["resource"]["resourceType"] for a in actions]
    assert "CarePlan" in types
    assert types.count("ServiceRequest") >= 2
    for action in actions:
        assert action["description"]
        assert schema_errors(action["resource"]) == []
    priorities = {
        a["resource"]["category"][0]["coding"][0]["code"]: a["resource"]["priority"]
        for a in actions
        if a["resource"]["resourceType"] == "ServiceRequest"
    }
    assert priorities["spine-surgery-referral"] == "stat"
    assert "systemActions" not in _patient_view(cds, case)


def test_patient_view_info_card_for_routine_proposals(cds: TestClient) -> None:
    case = load_case("mechanical-low-back-pain-fever-screened-absent")
    (card,) = _patient_view(cds, case)["cards"]
    assert card["indicator"] == "info"
    assert card["summary"].startswith("Mechanical")
    assert "recommended stage: conservative care" in card["summary"]
    assert len(card["summary"]) < 140


def test_routine_red_flag_is_a_warning(cds: TestClient) -> None:
    (card,) = _patient_view(cds, load_case("inflammatory-ankylosing-spondylitis"))["cards"]
    assert card["indicator"] == "warning"
    assert "inflammatory" in card["summary"].lower()


def test_no_card_when_there_is_nothing_to_say(cds: TestClient) -> None:
    assert _patient_view(cds, load_case("age-15-out-of-scope")) == {"cards": []}
    body = hook_request("patient-view", "nobody", prefetch=dict.fromkeys(PREFETCH))
    response = cds.post(PV, json=body)
    assert response.status_code == 200
    assert response.json() == {"cards": []}


def test_card_uuids_are_the_same_for_the_same_call_and_differ_per_hook_instance(
    cds: TestClient,
) -> None:
    """Deterministic for one call (same hookInstance, same data), and unique to it, so feedback
    names the call its card came from (CDS Hooks 2.0 card.uuid)."""
    case = load_case("deficit-progressing-stat")
    instance = "1d2f7a3e-5b6c-4d8e-9f01-23456789abcd"
    first = _patient_view(cds, case, hook_instance=instance)["cards"][0]
    again = _patient_view(cds, case, hook_instance=instance)["cards"][0]
    assert first["uuid"] == again["uuid"]
    assert first["suggestions"][0]["uuid"] == again["suggestions"][0]["uuid"]
    later = _patient_view(cds, case)["cards"][0]  # another call: a fresh hookInstance
    assert later["uuid"] != first["uuid"]
    assert later["suggestions"][0]["uuid"] != first["suggestions"][0]["uuid"]
    assert later["summary"] == first["summary"]  # the same advice
    other = _patient_view(cds, load_case("cauda-equina-saddle-anaesthesia"),
                          hook_instance=instance)["cards"][0]  # fmt: skip
    assert other["uuid"] != first["uuid"]


@pytest.mark.parametrize("instance", ["call-1", "", "1d2f7a3e5b6c4d8e9f0123456789abcd", "{uuid}"])
def test_a_hook_instance_that_is_not_a_uuid_is_400(cds: TestClient, instance: str) -> None:
    case = load_case("deficit-progressing-stat")
    body = hook_request("patient-view", case_patient_id(case),
                        prefetch=prefetch_for(case_resources(case)))  # fmt: skip
    body["hookInstance"] = instance
    response = cds.post(PV, json=body)
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["hookInstance"]


def test_discovery_advertises_the_cds_hooks_version(cds: TestClient) -> None:
    document = cds.get("/cds-services").json()
    key = "dev.painpath.cds-hooks-spec-version"
    assert document["extension"] == {key: "2.0"}
    assert all(s["extension"] == {key: "2.0"} for s in document["services"])


def test_suggested_resources_are_exactly_what_triage_emits(cds: TestClient) -> None:
    case = load_case("deficit-progressing-stat")
    card = _patient_view(cds, case)["cards"][0]
    suggested = [a["resource"] for a in card["suggestions"][0]["actions"]]
    # $triage on the same data (the Bundle the service builds from the prefetch), same date
    sent = [Sourced(r, f"prefetch.{i}") for i, r in enumerate(case_resources(case))]
    bundle = cds_bundle(case_patient_id(case), None, sent).bundle
    response = cds.post(
        "/fhir/$triage",
        params={"asOf": as_of(case).isoformat(), "profile": "nice-ng59"},
        content=canonical_bytes(bundle),
        headers={"Content-Type": "application/fhir+json"},
    )
    assert response.status_code == 200, response.text
    emitted = {
        r["id"]: r
        for r in (e["resource"] for e in response.json()["entry"])
        if r["resourceType"] in {"CarePlan", "ServiceRequest", "Observation"}
    }
    assert {r["id"] for r in suggested} == set(emitted)
    for resource in suggested:
        assert resource == emitted[resource["id"]]


# golden vignettes: the card's indicator follows the expected red flags and their urgency
def _expected_indicator(expect: Json) -> str:
    if not expect["inScope"]:
        return "none"
    urgent = any(p in {"stat", "urgent", "asap"} for p in expect.get("services", {}).values())
    if expect.get("redFlags"):
        return "critical" if urgent else "warning"
    return "info"


def _cds_vignette(case: dict[str, Any]) -> bool:
    """Red-flag and out-of-scope vignettes under the default profile (the CDS services' one)."""
    expect = case["expect"]
    default_profile = case.get("profile", "nice-ng59") == "nice-ng59"
    return default_profile and ("redFlags" in expect or not expect["inScope"])


GOLDEN = [
    p.stem for p in sorted(CASES.glob("*.json")) if _cds_vignette(orjson.loads(p.read_bytes()))
]


@pytest.mark.parametrize("name", GOLDEN)
def test_golden_vignette_indicator(cds: TestClient, name: str) -> None:
    case = load_case(name)
    if about_someone_else(case):
        body = hook_request(
            "patient-view", case_patient_id(case), prefetch=prefetch_for(case_resources(case))
        )
        response = cds.post(PV, json=body)
        assert response.status_code == 400, response.text
        assert all("subject" in i["expression"][0] for i in response.json()["issue"])
        return
    cards = _patient_view(cds, case)["cards"]
    expected = _expected_indicator(case["expect"])
    if expected == "none":
        assert cards == []
        return
    if expected == "info" and not cards:
        return  # nothing to say about this vignette
    assert [c["indicator"] for c in cards] == [expected], case["description"]
    assert len(cards[0]["summary"]) < 140


def test_enough_golden_vignettes_are_checked() -> None:
    assert len(GOLDEN) >= 10


# --- prefetch semantics ---------------------------------------------------------------------------
def test_missing_prefetch_without_fhir_server_is_412(cds: TestClient) -> None:
    case = load_case("deficit-progressing-stat")
    prefetch = prefetch_for(case_resources(case), omit=("observations",))
    body = hook_request("patient-view", case_patient_id(case), prefetch=prefetch)
    response = cds.post(PV, json=body)
    assert response.status_code == 412
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "observations" in outcome["issue"][0]["diagnostics"]


def test_operation_outcome_prefetch_counts_as_missing(cds: TestClient) -> None:
    case = load_case("deficit-progressing-stat")
    prefetch = prefetch_for(case_resources(case))
    prefetch["conditions"] = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "timeout"}],
    }
    body = hook_request("patient-view", case_patient_id(case), prefetch=prefetch)
    assert cds.post(PV, json=body).status_code == 412


def test_null_prefetch_is_no_data(cds: TestClient) -> None:
    case = load_case("deficit-progressing-stat")
    prefetch = prefetch_for(case_resources(case))
    assert prefetch["procedures"] is None  # the case has none: null, not omitted
    (card,) = _patient_view(cds, case)["cards"]
    assert card["indicator"] == "critical"


# --- bad requests ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda b: b.pop("hookInstance"), "hookInstance"),
        (lambda b: b.update(hook="order-sign"), "hook"),
        (lambda b: b.pop("context"), "context"),
        (lambda b: b["context"].pop("patientId"), "context.patientId"),
        (lambda b: b["context"].update(patientId="bad id/../x"), "context.patientId"),
        (lambda b: b["context"].update(patientId=".."), "context.patientId"),
        (lambda b: b["context"].update(patientId="."), "context.patientId"),
        (lambda b: b.update(prefetch=[]), "prefetch"),
        (lambda b: b["prefetch"].update(conditions=[1]), "prefetch.conditions"),
        (lambda b: b.update(fhirAuthorization={"access_token": "x", "token_type": "Bearer"}),
         "fhirServer"),
    ],
)  # fmt: skip
def test_bad_requests_are_400_naming_the_field(cds: TestClient, mutate: Any, where: str) -> None:
    case = load_case("deficit-progressing-stat")
    body = hook_request(
        "patient-view", case_patient_id(case), prefetch=prefetch_for(case_resources(case))
    )
    mutate(body)
    response = cds.post(PV, json=body)
    assert response.status_code == 400, response.text
    (issue,) = response.json()["issue"]
    assert issue["expression"] == [where]
    assert issue["diagnostics"]


def test_not_json_and_unknown_service(cds: TestClient) -> None:
    response = cds.post(PV, content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert cds.post("/cds-services/nope", json={}).status_code == 404


def test_invalid_fhir_in_prefetch_is_400(cds: TestClient) -> None:
    case = load_case("deficit-progressing-stat")
    prefetch = prefetch_for(case_resources(case))
    broken = copy.deepcopy(prefetch["conditions"])
    broken["entry"][0]["resource"]["onsetDateTime"] = "yesterday"
    prefetch["conditions"] = broken
    body = hook_request("patient-view", case_patient_id(case), prefetch=prefetch)
    response = cds.post(PV, json=body)
    assert response.status_code == 400
    assert "prefetch" in response.text


def test_engine_failure_is_500_not_an_empty_200(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = load_case("deficit-progressing-stat")
    body = hook_request(
        "patient-view", case_patient_id(case), prefetch=prefetch_for(case_resources(case))
    )

    def broken(*_: Any, **__: Any) -> None:
        raise RuntimeError("boom")

    with make_app() as client:
        monkeypatch.setattr(client.app.state.pipeline, "evaluate", broken)
        safe = TestClient(client.app, raise_server_exceptions=False)
        response = safe.post(PV, json=body)
        assert response.status_code == 500
        assert "cards" not in response.text


# --- feedback -------------------------------------------------------------------------------------
def test_feedback_counts_outcomes_without_phi(cds: TestClient) -> None:
    card = _patient_view(cds, load_case("deficit-progressing-stat"))["cards"][0]
    feedback = {
        "feedback": [
            {
                "card": card["uuid"],
                "outcome": "accepted",
                "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}],
                "outcomeTimestamp": "2026-11-24T10:05:00Z",
            },
            {
                "card": card["uuid"],
                "outcome": "overridden",
                "overrideReason": {
                    "reason": card["overrideReasons"][2],
                    "userComment": "Patient Jane Doe prefers to wait",
                },
                "outcomeTimestamp": "2026-11-24T10:06:00Z",
            },
        ]
    }
    url = f"{PV}/feedback"
    assert cds.post(url, json=feedback).status_code == 200
    assert cds.post(url, json=feedback).status_code == 200  # a duplicate is not counted twice
    from service.api.cds_hooks import cds_metrics

    metrics = cds_metrics(cds.app)  # type: ignore[arg-type]
    assert metrics["feedback"] == {
        "painpath-patient-view/accepted": 1,
        "painpath-patient-view/overridden": 1,
    }
    assert metrics["override_reasons"] == {"painpath-patient-view/patient-declined": 1}
    assert metrics["cards"]["painpath-patient-view/critical"] >= 1
    assert "Jane" not in repr(cds.app.state.cds.counters)  # type: ignore[attr-defined]
    bad = cds.post(url, json={"feedback": [{"card": "x", "outcome": "ignored"}]})
    assert bad.status_code == 400


_WHEN = "2026-11-24T10:05:00Z"
# uuids as PainPath issues them (UUIDv5: service.fhir.emit.make_id)
_CARD = "d72eefc2-e152-52b1-8a66-ea83d771c72e"
_SUGGESTION = "7c817d05-eb24-5819-bb44-bc6849b34ab1"
_REASON = {"system": "https://painpath.dev/fhir/CodeSystem/cds-override-reason",
           "code": "patient-declined", "display": "Patient declined"}  # fmt: skip


@pytest.mark.parametrize(
    ("item", "where"),
    [
        # cds-fb-2: an accepted card names the suggestions taken
        ({"outcome": "accepted"}, "acceptedSuggestions"),
        ({"outcome": "accepted", "acceptedSuggestions": []}, "acceptedSuggestions"),
        ({"outcome": "accepted", "acceptedSuggestions": [{}]}, "acceptedSuggestions[0].id"),
        ({"outcome": "overridden", "acceptedSuggestions": [{"id": _SUGGESTION}]},
         "acceptedSuggestions"),
        # cds-fb-3: an override reason says something, and only on an overridden card
        ({"outcome": "overridden", "overrideReason": {}}, "overrideReason"),
        ({"outcome": "overridden", "overrideReason": {"userComment": ""}}, "overrideReason"),
        ({"outcome": "accepted", "acceptedSuggestions": [{"id": _SUGGESTION}],
          "overrideReason": {"userComment": "no"}}, "overrideReason"),
        # the card and suggestion ids are uuids as PainPath issues them
        ({"card": "not a uuid", "outcome": "overridden"}, "card"),
        ({"card": "c", "outcome": "overridden"}, "card"),
        ({"card": "0b7e6f0e-9c1c-4a4e-8a52-1f2a4a7d2c11", "outcome": "overridden"}, "card"),
        ({"outcome": "accepted", "acceptedSuggestions": [{"id": "s"}]},
         "acceptedSuggestions[0].id"),
        ({"outcome": "accepted", "acceptedSuggestions": [{"id": _SUGGESTION}, {"id": 7}]},
         "acceptedSuggestions[1].id"),
        # outcome is accepted | overridden
        ({"outcome": "ignored"}, "outcome"),
        # outcomeTimestamp is an ISO 8601 instant: date, time and offset
        ({"outcome": "overridden", "outcomeTimestamp": "Zebulon"}, "outcomeTimestamp"),
        ({"outcome": "overridden", "outcomeTimestamp": "2026-11-24"}, "outcomeTimestamp"),
        ({"outcome": "overridden", "outcomeTimestamp": "2026-11-24T10:05:00"},
         "outcomeTimestamp"),
        ({"outcome": "overridden", "outcomeTimestamp": "2026-02-30T10:05:00Z"},
         "outcomeTimestamp"),
        ({"outcome": "overridden", "outcomeTimestamp": 1764000000}, "outcomeTimestamp"),
        # the reason is one PainPath offered (the card's overrideReasons)
        ({"outcome": "overridden", "overrideReason": {"reason": _REASON | {"code": "bored"}}},
         "overrideReason.reason"),
        ({"outcome": "overridden",
          "overrideReason": {"reason": _REASON | {"system": "http://example.org/reasons"}}},
         "overrideReason.reason"),
        ({"outcome": "overridden", "overrideReason": {"reason": "patient-declined"}},
         "overrideReason.reason"),
        ({"outcome": "overridden", "overrideReason": {"reason": _REASON, "userComment": 5}},
         "overrideReason.userComment"),
    ],
)  # fmt: skip
def test_feedback_against_the_cds_hooks_rules_is_400(
    cds: TestClient, item: Json, where: str
) -> None:
    body = {"feedback": [{"card": _CARD, "outcomeTimestamp": _WHEN, **item}]}
    response = cds.post(f"{PV}/feedback", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["issue"][0]["expression"] == [f"feedback[0].{where}"]


@pytest.mark.parametrize(
    "item",
    [
        {"outcome": "accepted", "acceptedSuggestions": [{"id": _SUGGESTION}]},
        {"outcome": "overridden"},
        {"outcome": "overridden", "overrideReason": {"userComment": "discussed with the patient"}},
        {"outcome": "overridden", "overrideReason": {"reason": _REASON}},
        {"outcome": "overridden", "overrideReason": {"reason": _REASON, "userComment": "wait"}},
        {"outcome": "overridden", "card": _CARD.upper()},
        {"outcome": "overridden", "outcomeTimestamp": "2026-11-24T11:05:00.123+01:00"},
        {"outcome": "overridden", "outcomeTimestamp": "2026-11-24T10:05:00.5z"},
    ],
)
def test_feedback_within_the_rules_is_taken(cds: TestClient, item: Json) -> None:
    body = {"feedback": [{"card": _CARD, "outcomeTimestamp": _WHEN, **item}]}
    response = cds.post(f"{PV}/feedback", json=body)
    assert response.status_code == 200, response.text


def test_every_offered_override_reason_is_taken(cds: TestClient) -> None:
    card = _patient_view(cds, load_case("deficit-progressing-stat"))["cards"][0]
    items = [
        {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": _WHEN,
         "overrideReason": {"reason": reason}}
        for reason in card["overrideReasons"]
    ]  # fmt: skip
    assert len(items) == 4
    assert cds.post(f"{PV}/feedback", json={"feedback": items}).status_code == 200


def test_cors_preflight_for_the_sandbox(cds: TestClient) -> None:
    response = cds.options(
        PV,
        headers={
            "Origin": "https://sandbox.cds-hooks.org",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://sandbox.cds-hooks.org"


# --- limits ---------------------------------------------------------------------------------------
def _deep_extension(levels: int) -> Json:
    extension: Json = {"url": "https://example.org/x", "valueString": "leaf"}
    for _ in range(levels - 1):
        extension = {"url": "https://example.org/x", "extension": [extension]}
    return extension


@pytest.mark.parametrize(("levels", "status"), [(60, 200), (110, 413)])
def test_hook_bodies_get_the_configured_depth_limit(
    make_app: Any, levels: int, status: int
) -> None:
    """The CDS routes use PAINPATH_MAX_JSON_DEPTH as $triage does (here 200): a prefetch resource
    ~130 levels deep is evaluated, one ~230 deep is refused before evaluation."""
    case = load_case("deficit-progressing-stat")
    resources = case_resources(case)
    resources[0]["extension"] = [_deep_extension(levels)]
    body = hook_request("patient-view", case_patient_id(case), prefetch=prefetch_for(resources))
    with make_app(max_json_depth=200) as client:
        response = client.post(PV, json=body)
    assert response.status_code == status, response.text[:300]
