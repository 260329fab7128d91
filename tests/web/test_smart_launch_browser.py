"""SMART App Launch end to end in headless Chromium (``driver/smart.mjs``): the EHR's launch link
opens PainPath, PainPath sends the browser to the EHR's authorization server (oidc-provider),
the user signs in and consents on its pages, and PainPath's page shows the triage of the patient
in context, read from the EHR's FHIR front (over sekmet) with the user's token; a standalone
launch (the EHR picks the patient, v1 scopes), and three launches that fail - a cancelled
consent, a token the FHIR server answers 401 to, a refused iss - show what happened in the page.
Nothing is fetched off 127.0.0.1. Screenshots: test-artifacts/smart-*."""

from __future__ import annotations

from typing import Any

from smart_testkit import RESTRICTED_PATIENT, Ehr

Shown = dict[str, dict[str, Any]]


def test_ehr_launch_shows_the_patients_triage(smart_shown: Shown, smart_url: str, ehr: Ehr) -> None:
    seen = smart_shown["ehr"]
    assert seen.get("failure") is None, seen
    # the browser went EHR -> PainPath -> the EHR's authorization server -> PainPath
    assert seen["origins"] == [ehr.front, smart_url, ehr.issuer, smart_url]
    assert [p.split(":")[0] for p in seen["ehrPages"]] == ["login", "consent"]
    # the consent page lists what PainPath asked for, for the FHIR server it named (aud)
    assert f"{ehr.fhir}: launch patient/*.rs" in seen["ehrPages"][1]
    assert seen["outcome"] == "launched"
    assert seen["url"] == f"{smart_url}/"  # the spent code is not left in the address bar
    assert seen["error"] is None
    assert seen["patientName"] == "Ruth Okafor"
    assert seen["banner"].startswith("Red flag: urgent assessment needed")
    assert "Suspected cauda equina syndrome" in seen["banner"]
    assert seen["headline"].startswith("Red flag: Suspected cauda equina syndrome")
    assert seen["painType"] == "Neuropathic pain"
    assert seen["status"].startswith("Patient/ehr--patient-1 read from the EHR")
    assert f"({ehr.fhir}, EHR launch), evaluated as of " in seen["status"]
    assert seen["loaded"] == "smart:ehr--patient-1"
    assert seen["rawBundle"]["resourceType"] == "Bundle"
    assert seen["console"] == []


def test_standalone_launch_shows_the_picked_patient(smart_shown: Shown, ehr: Ehr) -> None:
    seen = smart_shown["standalone"]
    assert seen.get("failure") is None, seen
    assert [p.split(":")[0] for p in seen["ehrPages"]] == ["login", "consent"]
    # the v1-only base is asked for v1 scopes
    assert f"{ehr.fhir_v1}: launch/patient patient/*.read" in seen["ehrPages"][1]
    assert seen["outcome"] == "launched"
    assert seen["patientName"] == "Grace Price"
    assert seen["painType"] == "Mechanical (nociceptive) pain"
    assert seen["banner"] is None
    assert f"({ehr.fhir_v1}, standalone launch), evaluated as of " in seen["status"]


def test_a_cancelled_consent_is_explained_in_the_page(smart_shown: Shown) -> None:
    seen = smart_shown["denied"]
    assert seen.get("failure") is None, seen
    assert seen["ehrPages"][0] == "login"
    assert seen["ehrPages"][1].startswith("consent (cancelled)")
    assert seen["outcome"] == "failed"
    assert seen["status"] == "SMART launch failed."
    assert seen["error"] == (
        "SMART launch failed: The EHR did not authorize PainPath: access_denied "
        "(End-User aborted interaction)."
    )
    assert seen["patientName"] is None  # no patient shown
    # the page itself answers 403, which Chromium reports; nothing else went wrong
    assert all("status of 403" in c for c in seen["console"]), seen["console"]


def test_a_token_the_fhir_server_refuses_is_explained_in_the_page(
    smart_shown: Shown, ehr: Ehr
) -> None:
    seen = smart_shown["withdrawn"]
    assert seen.get("failure") is None, seen
    assert [p.split(":")[0] for p in seen["ehrPages"]] == ["login", "consent"]
    assert seen["outcome"] == "failed"
    assert seen["error"] == (
        "SMART launch failed: The EHR's FHIR server refused the access token (HTTP 401) for GET "
        f"{ehr.fhir}/Patient/{RESTRICTED_PATIENT}; granted scopes: launch patient/*.rs."
    )
    assert seen["patientName"] is None


def test_a_refused_iss_is_explained_in_the_page(smart_shown: Shown, smart_url: str) -> None:
    seen = smart_shown["bad-iss"]
    assert seen.get("failure") is None, seen
    assert seen["ehrPages"] == []
    assert seen["origins"] == [smart_url]  # the browser never left PainPath
    assert all("status of 400" in c for c in seen["console"]), seen["console"]
    assert seen["outcome"] == "failed"
    assert seen["error"] == (
        "SMART launch failed: The FHIR server http://127.0.0.1:9/fhir is not one PainPath is "
        "set up to launch from (PAINPATH_SMART_APP_ISSUERS)."
    )


def test_the_launched_and_failed_pages_pass_axe(smart_shown: Shown) -> None:
    for name, seen in smart_shown.items():
        assert seen["axe"] == [], name


def test_nothing_is_fetched_off_this_machine(smart_shown: Shown) -> None:
    for seen in smart_shown.values():
        # only oidc-provider's pages try (a web font); the request was aborted, never sent
        assert set(seen["blocked"]) <= {"https://fonts.googleapis.com"}
