"""order-select / order-sign: draft orders that contradict the rules get a warning card with an
update/delete suggestion on the draft; orders the rules support get none."""

from __future__ import annotations

from typing import Any

import pytest
from cds_testkit import (
    case_patient_id,
    case_resources,
    draft_medication,
    draft_service_request,
    hook_request,
    load_case,
    prefetch_for,
)
from fhir_testkit import schema_errors
from starlette.testclient import TestClient

Json = dict[str, Any]
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"


def _orders(client: TestClient, hook: str, case_name: str, orders: list[Json], **kw: Any) -> Json:
    case = load_case(case_name)
    pid = case_patient_id(case)
    body = hook_request(
        hook, pid, prefetch=prefetch_for(case_resources(case)), draft_orders=orders, **kw
    )
    response = client.post(f"/cds-services/painpath-{hook}", json=body)
    assert response.status_code == 200, response.text
    answer: Json = response.json()
    return answer


def _mri(pid: str = "patient-1", rid: str = "draft-mri") -> Json:
    return draft_service_request(rid, pid, LOINC, "30679-5", "MRI lumbar spine")


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
def test_mri_for_acute_uncomplicated_back_pain(cds: TestClient, hook: str) -> None:
    cards = _orders(cds, hook, "mechanical-low-back-pain-fever-screened-absent", [_mri()])["cards"]
    (card,) = cards
    assert card["indicator"] == "warning"
    assert card["summary"].startswith("Lumbar MRI not indicated now")
    assert len(card["summary"]) < 140
    assert card["source"]["url"] == "https://www.nice.org.uk/guidance/ng59"
    assert "no-routine-imaging" in card["detail"] or "imaging" in card["detail"].lower()
    (suggestion,) = card["suggestions"]
    assert suggestion["isRecommended"] is True  # the card's one fix (HealthChain requires it)
    assert suggestion["actions"] == [
        {
            "type": "delete",
            "description": "Remove draft ServiceRequest/draft-mri",
            "resourceId": "ServiceRequest/draft-mri",
        }
    ]
    assert card["selectionBehavior"] == "at-most-one"
    assert card["overrideReasons"]


def test_epidural_for_axial_pain(cds: TestClient) -> None:
    case = "esi-axial-pain-not-eligible"
    pid = case_patient_id(load_case(case))
    esi = draft_service_request("draft-esi", pid, SNOMED, "171788003", "Lumbar epidural")
    (card,) = _orders(cds, "order-sign", case, [esi])["cards"]
    assert card["indicator"] == "warning"
    assert card["summary"].startswith("Epidural steroid injection not supported")
    assert len(card["summary"]) < 140
    assert "**Epidural injection: not eligible.**" in card["detail"]
    assert card["suggestions"][0]["actions"][0]["resourceId"] == "ServiceRequest/draft-esi"


def test_mri_with_an_mri_unsafe_implant_suggests_ct(cds: TestClient) -> None:
    case = "mri-unsafe-routine-imaging-ct"
    pid = case_patient_id(load_case(case))
    (card,) = _orders(cds, "order-sign", case, [_mri(pid)])["cards"]
    assert card["indicator"] == "warning"
    assert "MRI-unsafe implant" in card["summary"]
    (action,) = card["suggestions"][0]["actions"]
    assert action["type"] == "update"
    updated = action["resource"]
    assert updated["id"] == "draft-mri"
    assert updated["status"] == "draft"
    assert {"system": LOINC, "code": "30620-9", "display": "CT Lumbar spine WO contrast"} in (
        updated["code"]["coding"]
    )
    assert schema_errors(updated) == []


def test_gabapentinoid_for_sciatica_under_nice(cds: TestClient) -> None:
    case = "nice-sciatica-active-pregabalin-advised-against"
    pid = case_patient_id(load_case(case))
    drug = draft_medication("draft-pregabalin", pid, "187832", "pregabalin")
    (card,) = _orders(cds, "order-select", case, [drug])["cards"]
    assert card["indicator"] == "warning"
    assert card["summary"].startswith("Gabapentinoids are not recommended for sciatica")
    action = card["suggestions"][0]["actions"][0]
    assert action == {
        "type": "delete",
        "description": "Remove draft MedicationRequest/draft-pregabalin",
        "resourceId": "MedicationRequest/draft-pregabalin",
    }


def test_order_select_checks_only_the_selected_orders(cds: TestClient) -> None:
    case = "mechanical-low-back-pain-fever-screened-absent"
    physio = draft_service_request("draft-physio", "patient-1", SNOMED, "308447003", "Physio")
    answer = _orders(
        cds, "order-select", case, [_mri(), physio], selections=["ServiceRequest/draft-physio"]
    )
    assert answer == {"cards": []}


def test_supported_orders_get_no_card(cds: TestClient) -> None:
    # imaging proposed for a red flag: an MRI order is what the rules ask for
    case = "cauda-equina-saddle-anaesthesia"
    pid = case_patient_id(load_case(case))
    cards = _orders(cds, "order-sign", case, [_mri(pid)])["cards"]
    assert [c["indicator"] for c in cards] == ["critical"]  # the red flag itself, no order warning


def test_order_hooks_validate_draft_orders(cds: TestClient) -> None:
    case = load_case("mechanical-low-back-pain-fever-screened-absent")
    body = hook_request("order-sign", case_patient_id(case), prefetch={}, draft_orders=[])
    body["context"]["draftOrders"] = {"resourceType": "Patient"}
    response = cds.post("/cds-services/painpath-order-sign", json=body)
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["context.draftOrders"]
    body = hook_request("order-select", case_patient_id(case), prefetch={}, draft_orders=[_mri()])
    body["context"]["selections"] = ["ServiceRequest/unknown"]
    response = cds.post("/cds-services/painpath-order-select", json=body)
    assert response.status_code == 400
    assert "unknown" in response.json()["issue"][0]["diagnostics"]


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
@pytest.mark.parametrize(
    ("fault", "where"),
    [
        ({"status": 5}, "status"),
        ({"foo": 1}, "foo"),
        ({"authoredOn": "yesterday"}, "authoredOn"),
        ({"status": None}, "status"),
    ],
)
def test_an_invalid_draft_order_is_400_naming_it(
    cds: TestClient, hook: str, fault: Json, where: str
) -> None:
    # R4-invalid like the same fault in the prefetch, named by its path in the request
    case = "certainty-possible-sciatica"
    pid = case_patient_id(load_case(case))
    good = _mri(pid)
    bad = draft_medication("draft-gaba", pid, "25480", "gabapentin") | fault
    body = hook_request(
        hook,
        pid,
        prefetch=prefetch_for(case_resources(load_case(case))),
        draft_orders=[good, bad],
    )
    response = cds.post(f"/cds-services/painpath-{hook}", json=body)
    assert response.status_code == 400, response.text
    expressions = [e for i in response.json()["issue"] for e in i["expression"]]
    assert expressions == [f"context.draftOrders.entry[1].resource.{where}"]
