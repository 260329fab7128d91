"""SMART App Launch in-process: PainPath behind a TestClient launches from the real test EHR
(oidc-provider and its FHIR front over sekmet), a user signs in and consents on the EHR's own
pages (``smart_testkit.consent``), and the page PainPath answers carries the patient's triage, or
why the launch failed. The same launches run in Chromium in test_smart_launch_browser.py."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from live_servers import free_port
from smart_testkit import (
    CONFIDENTIAL_ID,
    CONFIDENTIAL_SECRET,
    EHR_PATIENT_CASE,
    IN_PROCESS_CALLBACK,
    PICKED_PATIENT_CASE,
    RESTRICTED_PATIENT,
    Ehr,
    consent,
    smart_settings,
)

from service.api.app import create_app
from service.api.observability import JsonFormatter, PatientHasher

APP = "http://testserver/smart/launch"
Patients = tuple[str, dict[str, str]]


def page_data(html: str) -> dict[str, Any]:
    """The JSON data block the page's script reads."""
    found = re.search(r'<script type="application/json" id="page-data">(.*?)</script>', html, re.S)
    assert found is not None, html[-2000:]
    data: dict[str, Any] = json.loads(found.group(1))
    return data


def launch(client: TestClient, query: dict[str, str] | None = None) -> str:
    """GET /smart/launch; the EHR authorization URL it redirects to."""
    answer = client.get("/smart/launch", params=query or {}, follow_redirects=False)
    assert answer.status_code == 302, answer.text[-2000:]
    assert answer.headers["set-cookie"].startswith("painpath_smart_")
    return str(answer.headers["location"])


def callback(client: TestClient, url: str) -> tuple[int, dict[str, Any]]:
    """GET the URL the EHR sent the browser back to; the status and the page's launch data."""
    answer = client.get(url.replace("http://testserver", ""), follow_redirects=False)
    assert answer.headers["content-type"].startswith("text/html")
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["referrer-policy"] == "no-referrer"
    smart: dict[str, Any] = page_data(answer.text)["smart"]
    return answer.status_code, smart


def failed(client: TestClient, path: str, params: dict[str, str] | None = None) -> tuple[int, str]:
    """A launch or callback that fails: its status and the reason the page shows."""
    answer = client.get(path, params=params, follow_redirects=False)
    assert answer.headers["content-type"].startswith("text/html")
    smart = page_data(answer.text)["smart"]
    assert smart["status"] == answer.status_code
    return answer.status_code, str(smart["error"])


@contextlib.contextmanager
def painpath(ehr: Ehr, **settings: Any) -> Iterator[TestClient]:
    with TestClient(create_app(smart_settings(ehr, **settings))) as client:
        yield client


# --- launches that work ------------------------------------------------------------------------
def test_ehr_launch_reads_the_patient_in_context_and_evaluates_it(
    smart_client: TestClient, ehr: Ehr, ehr_patients: Patients
) -> None:
    patient = ehr_patients[1][EHR_PATIENT_CASE]
    authorize = launch(smart_client, ehr.launch_params(APP, patient))
    asked = parse_qs(urlsplit(authorize).query)
    assert authorize.startswith(f"{ehr.issuer}/auth?")
    assert asked["scope"] == ["launch patient/*.rs openid fhirUser"]
    assert asked["code_challenge_method"] == ["S256"]
    assert len(asked["code_challenge"][0]) == 43
    assert asked["aud"] == [ehr.fhir]
    assert asked["redirect_uri"] == [IN_PROCESS_CALLBACK]
    assert len(asked["state"][0]) >= 43
    status, smart = callback(smart_client, consent(authorize, IN_PROCESS_CALLBACK))
    assert status == 200, smart
    assert smart["launch"] == {
        "iss": ehr.fhir, "patient": patient, "flow": "ehr", "scope": "launch patient/*.rs",
    }  # fmt: skip
    trace = smart["trace"]
    assert [p["subject"] for p in trace["patients"]] == [f"Patient/{patient}"]
    first = trace["patients"][0]
    assert first["redFlags"][0]["title"] == "Suspected cauda equina syndrome"
    assert first["person"]["name"] == "Ruth Okafor"
    # every entry of the record was read through the EHR's FHIR front and evaluated
    assert {f"Condition/{patient[: -len('patient-1')]}cond-sciatica"} <= set(trace["inputs"])
    assert trace["result"]["resourceType"] == "Bundle"
    assert trace["result"]["type"] == "collection"


def test_standalone_launch_on_a_v1_ehr_asks_v1_scopes_and_takes_the_picked_patient(
    smart_client: TestClient, ehr: Ehr, ehr_patients: Patients
) -> None:
    authorize = launch(smart_client)  # no iss: PAINPATH_SMART_APP_DEFAULT_ISS, the v1 base
    asked = parse_qs(urlsplit(authorize).query)
    assert asked["scope"] == ["launch/patient patient/*.read openid fhirUser"]
    assert asked["aud"] == [ehr.fhir_v1]
    assert "launch" not in asked
    status, smart = callback(smart_client, consent(authorize, IN_PROCESS_CALLBACK))
    assert status == 200, smart
    picked = ehr_patients[1][PICKED_PATIENT_CASE]
    assert smart["launch"]["patient"] == picked
    assert smart["launch"]["flow"] == "standalone"
    assert smart["launch"]["scope"] == "launch/patient patient/*.read"
    first = smart["trace"]["patients"][0]
    assert first["painType"]["display"] == "Mechanical (nociceptive) pain"
    assert first["redFlags"] == []


def test_a_launch_logs_no_code_token_or_patient(
    smart_client: TestClient, ehr: Ehr, ehr_patients: Patients
) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(PatientHasher(b"test-salt")))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        patient = ehr_patients[1][EHR_PATIENT_CASE]
        authorize = launch(smart_client, ehr.launch_params(APP, patient))
        back = consent(authorize, IN_PROCESS_CALLBACK)
        status, _ = callback(smart_client, back)
    finally:
        root.removeHandler(handler)
    assert status == 200
    # what PainPath logged while serving (the test's own client logs its URLs outside requests)
    served = [json.loads(x) for x in stream.getvalue().splitlines()]
    served = [x for x in served if x.get("request_id")]
    text = json.dumps(served)
    code = parse_qs(urlsplit(back).query)["code"][0]
    state = parse_qs(urlsplit(back).query)["state"][0]
    assert any(x.get("route") == "/smart/callback" for x in served)
    for secret in (code, state, patient, "Okafor"):
        assert secret not in text


# --- launches that cannot start ----------------------------------------------------------------
def test_an_iss_not_allowed_is_refused_in_the_page(smart_client: TestClient) -> None:
    status, why = failed(
        smart_client, "/smart/launch", {"launch": "x", "iss": "http://127.0.0.1:1/fhir?x=1"}
    )
    assert status == 400
    assert why == (
        "The FHIR server http://127.0.0.1:1/fhir is not one PainPath is set up to launch from "
        "(PAINPATH_SMART_APP_ISSUERS)."
    )


def test_a_huge_iss_still_answers_the_page(smart_client: TestClient) -> None:
    status, why = failed(smart_client, "/smart/launch", {"iss": "https://x.example/" + "a" * 8000})
    assert status == 400
    assert why.startswith("The FHIR server https://x.example/aaa")
    assert len(why) < 400


def test_launch_requests_that_cannot_start(ehr: Ehr) -> None:
    with painpath(ehr) as client:
        assert failed(client, "/smart/launch", {"launch": "x"}) == (
            400, "An EHR launch must name its FHIR server (iss).",
        )  # fmt: skip
    with painpath(ehr, smart_app_default_iss=None) as client:
        status, why = failed(client, "/smart/launch")
        assert (status, why[:40]) == (400, "A standalone launch needs a FHIR server:")
    with painpath(ehr, smart_app_client_id=None) as client:
        status, why = failed(client, "/smart/launch", {"iss": ehr.fhir})
        assert status == 400
        assert "not set up on this PainPath" in why


def test_an_ehr_whose_configuration_cannot_be_used_fails_in_the_page(ehr: Ehr) -> None:
    gone = f"http://127.0.0.1:{free_port()}/fhir"
    broken = f"{ehr.front}/broken/fhir"
    missing = f"{ehr.front}/missing/fhir"
    with painpath(ehr, smart_app_issuers=[gone, broken, missing]) as client:
        status, why = failed(client, "/smart/launch", {"launch": "x", "iss": gone})
        assert status == 424
        assert why == (
            f"The EHR's SMART configuration ({gone}/.well-known/smart-configuration) could not "
            "be read (ConnectError)."
        )
        status, why = failed(client, "/smart/launch", {"launch": "x", "iss": missing})
        assert (status, why[-21:]) == (424, "available (HTTP 404).")
        status, why = failed(client, "/smart/launch", {"launch": "x", "iss": broken})
        assert why == "The EHR's smart-configuration has no usable authorization_endpoint."


# --- answers that are refused ------------------------------------------------------------------
def test_a_callback_without_its_launch_cookie_is_refused(
    smart_client: TestClient, ehr: Ehr, ehr_patients: Patients
) -> None:
    patient = ehr_patients[1][EHR_PATIENT_CASE]
    back = consent(launch(smart_client, ehr.launch_params(APP, patient)), IN_PROCESS_CALLBACK)
    smart_client.cookies.clear()  # another browser, or the launch expired
    status, why = failed(smart_client, back.replace("http://testserver", ""))
    assert status == 400
    assert why.startswith("This answer from the EHR matches no launch started in this browser")
    assert failed(smart_client, "/smart/callback", {"code": "x"})[0] == 400  # no state at all


def test_a_forged_cookie_or_another_servers_answer_is_refused(
    smart_client: TestClient, ehr: Ehr, ehr_patients: Patients
) -> None:
    patient = ehr_patients[1][EHR_PATIENT_CASE]
    authorize = launch(smart_client, ehr.launch_params(APP, patient))
    state = parse_qs(urlsplit(authorize).query)["state"][0]
    back = consent(authorize, IN_PROCESS_CALLBACK).replace("http://testserver", "")
    mixed_up = back.replace("iss=", "iss=x")  # RFC 9207: another authorization server answered
    status, why = failed(smart_client, mixed_up)
    assert (status, why) == (
        400,
        "This answer names another authorization server than the EHR's (iss): it was not accepted.",
    )
    smart_client.cookies.set(f"painpath_smart_{state}", "forged", path="/smart/")
    assert failed(smart_client, back)[0] == 400


def test_denied_consent_is_shown(
    smart_client: TestClient, ehr: Ehr, ehr_patients: Patients
) -> None:
    patient = ehr_patients[1][EHR_PATIENT_CASE]
    authorize = launch(smart_client, ehr.launch_params(APP, patient))
    back = consent(authorize, IN_PROCESS_CALLBACK, abort=True)
    assert "error=access_denied" in back
    status, why = failed(smart_client, back.replace("http://testserver", ""))
    assert (status, why) == (
        403, "The EHR did not authorize PainPath: access_denied (End-User aborted interaction).",
    )  # fmt: skip


def test_an_answer_without_a_code_is_refused(smart_client: TestClient, ehr: Ehr) -> None:
    authorize = launch(smart_client, {"iss": ehr.fhir})
    state = parse_qs(urlsplit(authorize).query)["state"][0]
    status, why = failed(smart_client, "/smart/callback", {"state": state})
    assert (status, why) == (400, "The EHR's answer carries no authorization code.")


def test_a_code_the_token_endpoint_refuses_is_shown(smart_client: TestClient, ehr: Ehr) -> None:
    authorize = launch(smart_client, {"iss": ehr.fhir})
    state = parse_qs(urlsplit(authorize).query)["state"][0]
    status, why = failed(smart_client, "/smart/callback", {"state": state, "code": "made-up"})
    assert status == 403
    assert why.startswith("The EHR's token endpoint refused the authorization code (HTTP 400: ")
    assert "grant request is invalid" in why


def test_a_token_without_a_patient_in_context_is_shown(ehr: Ehr) -> None:
    # a standalone launch that does not ask for launch/patient: the EHR picks no patient
    with painpath(ehr, smart_app_scope="patient/*.rs openid fhirUser") as client:
        authorize = launch(client, {"iss": ehr.fhir})
        status, why = callback(client, consent(authorize, IN_PROCESS_CALLBACK))
    assert status == 424
    assert why["error"].startswith("The EHR gave no patient in context (a FHIR id)")


def test_a_fhir_server_refusing_the_token_is_shown(ehr: Ehr, ehr_patients: Patients) -> None:
    # the user's token carries no patient read scope: the EHR's FHIR server answers 403
    patient = ehr_patients[1][EHR_PATIENT_CASE]
    with painpath(ehr, smart_app_scope="launch openid fhirUser") as client:
        authorize = launch(client, ehr.launch_params(APP, patient))
        status, smart = callback(client, consent(authorize, IN_PROCESS_CALLBACK))
    assert status == 403
    assert smart["error"] == (
        "The EHR's FHIR server refused the access token (HTTP 403) for GET "
        f"{ehr.fhir}/Patient/{patient}; granted scopes: launch."
    )


def test_a_token_the_fhir_server_no_longer_accepts_is_shown(
    smart_client: TestClient, ehr: Ehr
) -> None:
    # the EHR withdraws the token at once (a restricted chart): its FHIR server answers 401
    authorize = launch(smart_client, ehr.launch_params(APP, RESTRICTED_PATIENT))
    status, smart = callback(smart_client, consent(authorize, IN_PROCESS_CALLBACK))
    assert status == 403
    assert smart["error"] == (
        "The EHR's FHIR server refused the access token (HTTP 401) for GET "
        f"{ehr.fhir}/Patient/{RESTRICTED_PATIENT}; granted scopes: launch patient/*.rs."
    )


def test_a_patient_missing_from_the_fhir_server_is_shown(
    smart_client: TestClient, ehr: Ehr
) -> None:
    authorize = launch(smart_client, ehr.launch_params(APP, "no-such-patient"))
    status, smart = callback(smart_client, consent(authorize, IN_PROCESS_CALLBACK))
    assert status == 424
    assert smart["error"].startswith(
        f"FHIR server: GET {ehr.fhir}/Patient/no-such-patient: answered 404"
    )


@pytest.mark.parametrize("key", ["", "shared-secret"])
def test_the_launch_cookie_is_sealed_with_the_configured_key(ehr: Ehr, key: str) -> None:
    with painpath(ehr, smart_app_session_key=key or None) as one:
        authorize = launch(one, {"iss": ehr.fhir})
        state = parse_qs(urlsplit(authorize).query)["state"][0]
        sealed = one.cookies[f"painpath_smart_{state}"]
        assert "verifier" not in sealed  # encrypted, not only signed
    with painpath(ehr, smart_app_session_key=key or None) as other:  # another worker
        other.cookies.set(f"painpath_smart_{state}", sealed, path="/smart/")
        status, why = failed(other, "/smart/callback", {"state": state})
    # a shared key lets any worker take the answer; a per-process random key does not
    assert status == 400
    expected = "no authorization code" if key else "matches no launch"
    assert expected in why


def test_a_confidential_client_authenticates_at_the_token_endpoint(
    ehr: Ehr, ehr_patients: Patients
) -> None:
    patient = ehr_patients[1][EHR_PATIENT_CASE]
    settings = {"smart_app_client_id": CONFIDENTIAL_ID}
    with painpath(ehr, smart_app_client_secret=CONFIDENTIAL_SECRET, **settings) as client:
        authorize = launch(client, ehr.launch_params(APP, patient))
        assert parse_qs(urlsplit(authorize).query)["client_id"] == [CONFIDENTIAL_ID]
        status, smart = callback(client, consent(authorize, IN_PROCESS_CALLBACK))
        assert status == 200, smart
        assert smart["launch"]["patient"] == patient
    with painpath(ehr, smart_app_client_secret=CONFIDENTIAL_SECRET + "x", **settings) as client:
        authorize = launch(client, ehr.launch_params(APP, patient))
        status, smart = callback(client, consent(authorize, IN_PROCESS_CALLBACK))
    assert status == 403
    assert smart["error"].startswith("The EHR's token endpoint refused the authorization code")
    assert "client authentication failed" in smart["error"]


def test_a_token_endpoint_that_cannot_be_reached_is_shown(smart_client: TestClient) -> None:
    cookies = smart_client.app.state.launch_cookies  # type: ignore[attr-defined]
    state = "s" * 43
    gone = f"http://127.0.0.1:{free_port()}/token"
    launch_state = {"verifier": "v" * 43, "iss": "http://127.0.0.1:9/fhir", "token": gone,
                    "issuer": "", "redirect": IN_PROCESS_CALLBACK, "flow": "ehr"}  # fmt: skip
    sealed = cookies.seal(launch_state)
    smart_client.cookies.set(f"painpath_smart_{state}", sealed, path="/smart/")
    status, why = failed(smart_client, "/smart/callback", {"state": state, "code": "c"})
    assert (status, why) == (424, "The EHR's token endpoint could not be reached (ConnectError).")


def test_the_patient_can_be_read_with_everything(
    ehr: Ehr, ehr_patients: Patients, caplog: pytest.LogCaptureFixture
) -> None:
    patient = ehr_patients[1][EHR_PATIENT_CASE]
    with painpath(ehr, fhir_everything=True) as client:
        authorize = launch(client, ehr.launch_params(APP, patient))
        caplog.set_level(logging.INFO, logger="httpx")
        status, smart = callback(client, consent(authorize, IN_PROCESS_CALLBACK))
    assert status == 200, smart
    read = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert any(f"{ehr.fhir}/Patient/{patient}/$everything" in line for line in read), read
    first = smart["trace"]["patients"][0]
    assert first["redFlags"][0]["title"] == "Suspected cauda equina syndrome"
