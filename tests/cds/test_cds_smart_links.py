"""Cards link to PainPath's page as a SMART app (``links`` of type ``smart`` with ``appContext``)
on patient-view and order-sign, only when a launch URL is configured."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from cds_testkit import (
    case_patient_id,
    case_resources,
    draft_service_request,
    hook_request,
    load_case,
    prefetch_for,
)
from starlette.testclient import TestClient

Json = dict[str, Any]
LAUNCH = "https://painpath.example.org/"
PP = "https://painpath.dev/fhir"
UNDOCUMENTED = "duration-subacute-43-days-esi-insufficient"


def _cards(client: TestClient, hook: str, case_name: str) -> list[Json]:
    case = load_case(case_name)
    pid = case_patient_id(case)
    orders = [draft_service_request("draft-mri", pid, "http://loinc.org", "30679-5", "MRI")]
    body = hook_request(
        hook,
        pid,
        prefetch=prefetch_for(case_resources(case)),
        draft_orders=None if hook == "patient-view" else orders,
    )
    response = client.post(f"/cds-services/painpath-{hook}", json=body)
    assert response.status_code == 200, response.text
    cards: list[Json] = response.json()["cards"]
    return cards


@pytest.mark.parametrize(
    ("hook", "case"),
    [
        ("patient-view", UNDOCUMENTED),
        ("order-sign", "mechanical-low-back-pain-fever-screened-absent"),
    ],
)
def test_cards_carry_a_smart_link_when_a_launch_url_is_set(
    make_app: Callable[..., Any], hook: str, case: str
) -> None:
    with make_app(cds_smart_launch_url=LAUNCH) as client:
        cards = _cards(client, hook, case)
    assert cards
    for card in cards:
        (link,) = card["links"]
        assert (link["type"], link["url"]) == ("smart", LAUNCH)
        context = json.loads(link["appContext"])
        assert context["hook"] == hook
        assert context["patient"] == case_patient_id(load_case(case))
    if case == UNDOCUMENTED:  # what would change the decision: the Questionnaires that record it
        questionnaires = json.loads(cards[0]["links"][0]["appContext"])["questionnaires"]
        assert f"{PP}/Questionnaire/red-flag-screen" in questionnaires
        assert f"{PP}/Questionnaire/startback" in questionnaires
        assert f"{PP}/Questionnaire/stage-facts" in questionnaires
        # the card's detail links each prompt to the Questionnaire that records it
        detail = cards[0]["detail"]
        assert f"[PainPath treatment-stage facts]({PP}/Questionnaire/stage-facts)" in detail
        assert "`Questionnaire/red-flag-screen/$populate` pre-fills it" in detail


def test_no_link_without_a_launch_url_nor_on_order_select(make_app: Callable[..., Any]) -> None:
    with make_app() as client:
        assert all("links" not in c for c in _cards(client, "patient-view", UNDOCUMENTED))
    with make_app(cds_smart_launch_url=LAUNCH) as client:
        cards = _cards(client, "order-select", "mechanical-low-back-pain-fever-screened-absent")
        assert cards
        assert all("links" not in c for c in cards)


def test_a_launch_url_that_is_not_http_is_refused() -> None:
    from pydantic import ValidationError

    from service.settings import Settings

    with pytest.raises(ValidationError):
        Settings(_env_file=None, cds_smart_launch_url="javascript:alert(1)")
