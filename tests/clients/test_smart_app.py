"""The pure parts of PainPath's SMART App Launch client (service.server.smart_app): PKCE, state,
scopes, the authorization URL, the iss allow-list, reading a token answer and the page's words
for a failed read. The launches themselves run against the real test EHR in tests/web."""

from __future__ import annotations

import re

import httpx
import pytest
from pydantic import ValidationError

from service.fhir.errors import InputError
from service.server.errors import UpstreamStatusError, UpstreamUnavailableError
from service.server.http import json_object
from service.server.smart_app import (
    LaunchError,
    SmartEndpoints,
    TokenGrant,
    _read_failure,
    authorize_url,
    check_iss,
    code_challenge,
    launch_scope,
    new_state,
    new_verifier,
)
from service.settings import Settings

GRANT = TokenGrant("token", "p1", "launch patient/*.rs")


def test_the_s256_challenge_is_rfc_7636s() -> None:
    # RFC 7636 Appendix B
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert code_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_verifiers_and_states_are_long_random_and_unreserved() -> None:
    made = {new_verifier() for _ in range(50)} | {new_state() for _ in range(50)}
    assert len(made) == 100
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{43}", item) for item in made)  # RFC 7636: 43-128


@pytest.mark.parametrize(
    ("standalone", "v1", "asked"),
    [
        (False, False, "launch patient/*.rs user/Observation.rs openid fhirUser"),
        (True, False, "launch/patient patient/*.rs user/Observation.rs openid fhirUser"),
        (False, True, "launch patient/*.read user/Observation.read openid fhirUser"),
        (True, True, "launch/patient patient/*.read user/Observation.read openid fhirUser"),
    ],
)
def test_scopes_follow_the_launch_and_the_ehrs_smart_version(
    standalone: bool, v1: bool, asked: str
) -> None:
    scope = "launch patient/*.rs user/Observation.rs openid fhirUser"
    assert launch_scope(scope, standalone=standalone, v1=v1) == asked


def test_v1_only_is_read_from_the_capabilities() -> None:
    def caps(*names: str) -> SmartEndpoints:
        return SmartEndpoints("https://a/auth", "https://a/token", names)

    assert caps("permission-v1").v1_only
    assert not caps("permission-v1", "permission-v2").v1_only
    assert not caps().v1_only  # says nothing: v2, as SMART 2 apps ask


def test_the_authorization_url_keeps_an_endpoints_own_query() -> None:
    endpoints = SmartEndpoints("https://ehr.example/auth?tenant=a b", "https://ehr.example/token")
    built = authorize_url(
        endpoints, client_id="c", redirect_uri="https://pp/smart/callback", scope="launch",
        state="s", challenge="ch", aud="https://ehr.example/fhir", launch=None,
    )  # fmt: skip
    url = httpx.URL(built)
    assert url.params["tenant"] == "a b"
    assert url.params["code_challenge_method"] == "S256"
    assert url.params["response_type"] == "code"
    assert "launch" not in url.params


def test_iss_must_be_allowed_and_is_shown_without_its_query() -> None:
    allowed = ["https://ehr.example/fhir/"]
    assert check_iss("https://ehr.example/fhir/", allowed) == "https://ehr.example/fhir"
    with pytest.raises(LaunchError, match=r"The FHIR server https://evil\.example/fhir is not"):
        check_iss("https://user:pw@evil.example/fhir?token=x", allowed)
    with pytest.raises(LaunchError, match=r"\(empty\)"):
        check_iss(" ", allowed)


@pytest.mark.parametrize(
    ("content", "read"),
    [(b'{"a": 1}', {"a": 1}), (b"[1]", {}), (b"<html>", {}), (b"", {})],
)
def test_a_token_answer_is_read_as_a_json_object_or_nothing(
    content: bytes, read: dict[str, object]
) -> None:
    assert json_object(httpx.Response(200, content=content)) == read


def test_failed_reads_are_worded_for_the_page() -> None:
    refused = UpstreamStatusError("answered 401", request=("GET", "http://e/fhir/Patient/p1"),
                                  status=401)  # fmt: skip
    in_group = _read_failure(ExceptionGroup("searches", [refused]), GRANT)
    assert in_group.status == 403
    assert in_group.message.startswith(
        "The EHR's FHIR server refused the access token (HTTP 401) for GET http://e/fhir/Patient/p1"
    )
    down = _read_failure(UpstreamUnavailableError("connection failed"), GRANT)
    assert (down.status, down.message[:12]) == (424, "FHIR server:")
    invalid = _read_failure(InputError.one("invalid", "too deep"), GRANT)
    assert invalid.message == "The patient's record could not be evaluated: too deep"
    other = _read_failure(ExceptionGroup("searches", [ValueError("x")]), GRANT)
    assert (other.status, other.message) == (424, "Reading the patient failed (ValueError).")


def test_the_smart_issuers_are_checked_like_any_fhir_base_a_token_goes_to() -> None:
    with pytest.raises(ValidationError, match=r"PAINPATH_SMART_APP_ISSUERS: .* the access token"):
        Settings(_env_file=None, smart_app_issuers=["http://ehr.example/fhir"])
    with pytest.raises(ValidationError, match=r"PAINPATH_SMART_APP_DEFAULT_ISS: .* invalid port"):
        Settings(_env_file=None, smart_app_default_iss="https://ehr.example:x/fhir")
    with pytest.raises(ValidationError, match=r"is not an http\(s\) base URL"):
        Settings(_env_file=None, smart_app_default_iss="ftp://ehr.example/fhir")
    settings = Settings(
        _env_file=None,
        smart_app_issuers=["https://a.example/fhir"],
        smart_app_default_iss="http://127.0.0.1:8080/fhir",
    )
    assert settings.smart_app_allowed_issuers == [
        "https://a.example/fhir", "http://127.0.0.1:8080/fhir",
    ]  # fmt: skip
    assert Settings(_env_file=None).smart_app_allowed_issuers == []
