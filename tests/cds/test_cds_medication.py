"""Rule set 2027.1 in CDS Hooks: medication-safety DetectedIssues become patient-view cards, and
order-sign warns about an NSAID with an anticoagulant, an opioid with a benzodiazepine and
duloxetine with an MAOI, whatever the coding of the draft (by ingredient)."""

from __future__ import annotations

from typing import Any

import pytest
from cds_testkit import (
    case_patient_id,
    case_resources,
    draft_medication,
    hook_request,
    load_case,
    prefetch_for,
)
from starlette.testclient import TestClient

Json = dict[str, Any]


def _call(client: TestClient, hook: str, case_name: str, orders: list[Json] | None = None) -> Json:
    case = load_case(case_name)
    pid = case_patient_id(case)
    extra: dict[str, Any] = {"draft_orders": orders} if orders is not None else {}
    body = hook_request(hook, pid, prefetch=prefetch_for(case_resources(case)), **extra)
    response = client.post(f"/cds-services/painpath-{hook}", json=body)
    assert response.status_code == 200, response.text
    answer: Json = response.json()
    return answer


def test_medication_issues_are_cards_with_their_indicator(cds: TestClient) -> None:
    cards = _call(cds, "patient-view", "med-mme-90-high")["cards"]
    medication = {c["summary"]: c for c in cards if c["summary"].startswith("Medication safety")}
    assert len(medication) == 2
    high = next(c for s, c in medication.items() if "dose 90 MME a day" in s)
    moderate = next(c for s, c in medication.items() if "dose 50 MME a day" in s)
    assert high["indicator"] == "critical"
    assert moderate["indicator"] == "warning"
    assert "oxycodone 90 MME/day" in high["summary"]
    assert "MedicationRequest/med-oxy" in high["detail"]
    assert all(len(c["summary"]) < 140 for c in cards)


def test_no_medication_card_without_a_finding(cds: TestClient) -> None:
    cards = _call(cds, "patient-view", "med-benzodiazepine-without-opioid")["cards"]
    assert not [c for c in cards if c["summary"].startswith("Medication safety")]


@pytest.mark.parametrize(
    ("case", "code", "text", "check"),
    [
        ("med-nsaid-anticoagulant-acute-weak-opioid", "5640", "ibuprofen 400 MG Oral Tablet",
         "NSAID ordered while the record shows an anticoagulant"),
        # a branded NSAID whose RxNorm code PainPath does not list: the brand/ingredient decides
        ("med-nsaid-anticoagulant-chronic-no-opioid", "999999", "Naproxen sodium 550 MG [Anaprox]",
         "NSAID ordered while the record shows an anticoagulant"),
        ("med-benzodiazepine-without-opioid", "1049621", "Oxycodone Hydrochloride 5 MG Oral Tablet",
         "Opioid ordered while the record shows a benzodiazepine"),
        ("med-fentanyl-patch-chronic-lbp-60-mme", "197591", "Diazepam 5 MG Oral Tablet",
         "Benzodiazepine or Z-drug ordered while the record shows an opioid"),
        ("med-maoi-no-duloxetine-amitriptyline", "596926", "duloxetine 30 MG DR Capsule",
         "Duloxetine or amitriptyline ordered while the record shows an MAO inhibitor"),
    ],
)  # fmt: skip
def test_drug_order_warnings(cds: TestClient, case: str, code: str, text: str, check: str) -> None:
    pid = case_patient_id(load_case(case))
    order = draft_medication("draft-med", pid, code, text)
    cards = _call(cds, "order-sign", case, [order])["cards"]
    [card] = [c for c in cards if c["summary"].startswith(check)]
    assert card["indicator"] == "warning"
    assert card["suggestions"][0]["actions"][0] == {
        "type": "delete",
        "description": "Remove draft MedicationRequest/draft-med",
        "resourceId": "MedicationRequest/draft-med",
    }


@pytest.mark.parametrize(
    ("case", "code", "text"),
    [
        # no anticoagulant: an NSAID is what the rules propose
        ("med-nsaid-no-caution", "5640", "ibuprofen 400 MG Oral Tablet"),
        # no benzodiazepine in the record: an opioid order gets no interaction card
        ("med-mme-50-naloxone", "1049621", "Oxycodone Hydrochloride 5 MG Oral Tablet"),
        # no MAOI: duloxetine is fine
        ("med-no-maoi-duloxetine-amitriptyline", "596926", "duloxetine 30 MG DR Capsule"),
    ],
)  # fmt: skip
def test_drug_orders_the_rules_support_get_no_card(
    cds: TestClient, case: str, code: str, text: str
) -> None:
    pid = case_patient_id(load_case(case))
    cards = _call(cds, "order-sign", case, [draft_medication("draft-med", pid, code, text)])[
        "cards"
    ]
    assert [c for c in cards if c["indicator"] == "warning" and "ordered" in c["summary"]] == []
