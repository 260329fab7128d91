"""Error answers exactly as docs/interface.md "Errors" says: status, OperationOutcome body
(severity, code, diagnostics, expression), FHIR JSON, never a stack trace, never a 5xx for bad
input."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fhir_testkit import CAUDA, CLAIM, FHIR_JSON, Json, case_bundle, post_triage
from httpx import Response

from service.api.app import create_app
from service.app.pipeline import Pipeline
from service.settings import Settings


def _settings(**overrides: Any) -> Settings:
    return Settings(_env_file=None, **overrides)


@pytest.fixture
def make_client() -> Iterator[Callable[..., TestClient]]:
    """``make_client(max_body_bytes=..., ...)``: a client over an app with those settings."""
    opened: list[TestClient] = []

    def make(**overrides: Any) -> TestClient:
        client = TestClient(create_app(_settings(**overrides)), raise_server_exceptions=False)
        opened.append(client.__enter__())
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


def _outcome(response: Response, status: int, code: str) -> Json:
    """The OperationOutcome of an error answer, checked for what every error must carry."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON)
    assert "Traceback" not in response.text
    assert 'File "' not in response.text
    body: Json = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"], body
    for issue in body["issue"]:
        assert issue["severity"] == ("fatal" if status >= 500 else "error")
        assert issue["code"] == code
        assert issue["diagnostics"].strip()
    return body


def _only_issue(response: Response, status: int, code: str) -> Json:
    body = _outcome(response, status, code)
    assert len(body["issue"]) == 1, body
    issue: Json = body["issue"][0]
    return issue


# ------------------------------------------------------------------ 400: not JSON, not FHIR


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b'{"resourceType": "Bundle", "type": "collection", "total": NaN}',
        b'{"resourceType": "Bundle", "type": "collection", "total": Infinity}',
        b'{"resourceType": "Bundle", "type": "collection", "total": -Infinity}',
        b'{"resourceType": "Bundle"',
        b"\xff\xfe{}",
    ],
    ids=["garbage", "nan", "infinity", "minus-infinity", "truncated", "not-utf8"],
)
def test_not_json_is_400_invalid(client: TestClient, body: bytes) -> None:
    issue = _only_issue(post_triage(client, body), 400, "invalid")
    assert issue["diagnostics"].startswith("Body is not valid JSON")


def test_empty_body_is_400_invalid(client: TestClient) -> None:
    issue = _only_issue(post_triage(client, b""), 400, "invalid")
    assert issue["diagnostics"] == "Body is empty; send a FHIR Bundle or Parameters"


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b'[{"resourceType": "Bundle"}]',
        b'"Bundle"',
        b"42",
        b"null",
        b'{"type": "collection"}',
    ],
)
def test_json_that_is_not_a_resource_is_400_structure(client: TestClient, body: bytes) -> None:
    issue = _only_issue(post_triage(client, body), 400, "structure")
    assert issue["diagnostics"] == "Body is not a FHIR resource (no resourceType)"


@pytest.mark.parametrize("rtype", ["Foo", "bundle", 7])
def test_unknown_resource_type_is_400_structure(client: TestClient, rtype: object) -> None:
    issue = _only_issue(post_triage(client, {"resourceType": rtype}), 400, "structure")
    assert issue["diagnostics"] == "Unknown resourceType; send a Bundle, or a Parameters"
    assert issue["expression"] == ["resourceType"]


# ------------------------------------------------------------------ 400: FHIR-invalid entries


def _set(path: str, value: Any) -> Callable[[Json], None]:
    """A mutation setting ``entry[i].resource.<path>`` (dots; ``-`` deletes)."""

    def mutate(bundle: Json) -> None:
        keys: list[Any] = [int(k) if k.isdigit() else k for k in path.split(".")]
        node: Any = bundle
        for key in keys[:-1]:
            node = node[key]
        if value == "-":
            del node[keys[-1]]
        else:
            node[keys[-1]] = value

    return mutate


# entry 1: Condition cond-sciatica, entry 2: Observation obs-nrs (valueQuantity)
INVALID = {
    "bad-status-code": (
        _set("entry.2.resource.status", "done"),
        "Bundle.entry[2].resource.status",
        "Value is not one of",
    ),
    "bad-date": (
        _set("entry.1.resource.onsetDateTime", "2026-13-45"),
        "Bundle.entry[1].resource.onsetDateTime",
        "Value does not match",
    ),
    "impossible-date": (
        _set("entry.2.resource.effectiveDateTime", "2026-02-30T10:00:00Z"),
        "Bundle.entry[2].resource.effectiveDateTime",
        "day value is outside expected range",
    ),
    "string-in-decimal": (
        _set("entry.2.resource.valueQuantity.value", "six"),
        "Bundle.entry[2].resource.valueQuantity.value",
        "Value (a string) is not of type 'number'",
    ),
    "unknown-element": (
        _set("entry.2.resource.colour", "red"),
        "Bundle.entry[2].resource.colour",
        "Unknown element 'colour'",
    ),
    "unknown-nested-element": (
        _set("entry.2.resource.valueQuantity.approx", True),
        "Bundle.entry[2].resource.valueQuantity.approx",
        "Unknown element 'approx'",
    ),
    "missing-required": (
        _set("entry.2.resource.code", "-"),
        "Bundle.entry[2].resource.code",
        "Missing required element 'code'",
    ),
    "missing-required-subject": (
        _set("entry.1.resource.subject", "-"),
        "Bundle.entry[1].resource.subject",
        "Missing required element 'subject'",
    ),
    "missing-required-status": (
        _set("entry.2.resource.status", "-"),
        "Bundle.entry[2].resource.status",
        "required",
    ),
    "string-for-reference": (
        _set("entry.1.resource.subject", "Patient/patient-1"),
        "Bundle.entry[1].resource.subject",
        "is not of type 'object'",
    ),
    "number-for-codeable-concept": (
        _set("entry.1.resource.code", 5),
        "Bundle.entry[1].resource.code",
        "is not of type 'object'",
    ),
    "entry-not-an-object": (
        _set("entry.3", 1),
        "Bundle.entry[3]",
        "Value (a number) is not of type 'object'",
    ),
    "bundle-without-type": (_set("type", "-"), "Bundle.type", "Missing required element 'type'"),
    "entry-without-resource-type": (
        _set("entry.3.resource.resourceType", "-"),
        "Bundle.entry[3].resource.resourceType",
        "unknown resourceType",
    ),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_fhir_invalid_input_is_400_with_expression(client: TestClient, case: str) -> None:
    mutate, expression, diagnostics = INVALID[case]
    bundle = case_bundle(CAUDA)
    mutate(bundle)
    body = _outcome(post_triage(client, bundle), 400, "invalid")
    matching = [i for i in body["issue"] if i.get("expression") == [expression]]
    assert matching, body
    assert any(diagnostics in i["diagnostics"] for i in matching), matching


def test_medication_statement_non_object_reference_is_400_not_500(client: TestClient) -> None:
    """MedicationStatement is checked by the schema alone; a number for a Reference used to reach
    the reader and crash it."""
    bundle = case_bundle("nice-sciatica-active-pregabalin-advised-against")
    index, statement = next(
        (i, e["resource"])
        for i, e in enumerate(bundle["entry"])
        if e["resource"]["resourceType"] == "MedicationStatement"
    )
    del statement["medicationCodeableConcept"]
    statement["medicationReference"] = 5
    issue = _only_issue(post_triage(client, bundle), 400, "invalid")
    assert issue["expression"] == [f"Bundle.entry[{index}].resource.medicationReference"]


def test_choice_element_sent_twice_is_400(client: TestClient) -> None:
    bundle = case_bundle(CAUDA)
    bundle["entry"][2]["resource"]["valueString"] = "six"  # besides valueQuantity
    body = _outcome(post_triage(client, bundle), 400, "invalid")
    assert all(i["expression"][0].startswith("Bundle.entry[2].resource") for i in body["issue"])


def test_errors_inside_parameters_point_into_the_parameters(client: TestClient) -> None:
    bundle = case_bundle(CAUDA)
    bundle["entry"][2]["resource"]["status"] = "done"
    parameters = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "asOf", "valueDate": "2026-11-24"},
            {"name": "bundle", "resource": bundle},
        ],
    }
    issue = _only_issue(post_triage(client, parameters), 400, "invalid")
    assert issue["expression"] == ["Parameters.parameter[1].resource.entry[2].resource.status"]


def test_problems_are_reported_together(client: TestClient) -> None:
    bundle = case_bundle(CAUDA)
    bundle["entry"][2]["resource"]["status"] = "done"
    bundle["entry"][3]["resource"]["status"] = "over"
    body = _outcome(post_triage(client, bundle), 400, "invalid")
    assert [i["expression"] for i in body["issue"]] == [
        ["Bundle.entry[2].resource.status"],
        ["Bundle.entry[3].resource.status"],
    ]


# ------------------------------------------------------------------ 413


def test_body_over_the_limit_is_413(make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_body_bytes=2000)
    body = json.dumps(case_bundle(CAUDA)).encode()
    assert len(body) > 2000
    issue = _only_issue(post_triage(client, body), 413, "too-costly")
    assert f"Body is {len(body)} bytes; the limit is 2000 bytes" == issue["diagnostics"]


def test_streamed_body_over_the_limit_is_413(make_client: Callable[..., TestClient]) -> None:
    """No Content-Length (chunked): the limit is enforced while reading."""
    client = make_client(max_body_bytes=2000)
    body = json.dumps(case_bundle(CAUDA)).encode()
    chunks = iter([body[i : i + 500] for i in range(0, len(body), 500)])
    response = client.post("/fhir/$triage", content=chunks, headers={"content-type": FHIR_JSON})
    assert "content-length" not in response.request.headers
    issue = _only_issue(response, 413, "too-costly")
    assert issue["diagnostics"] == "Body exceeds the limit of 2000 bytes"


def test_body_at_the_limit_is_accepted(make_client: Callable[..., TestClient]) -> None:
    body = json.dumps(case_bundle(CAUDA)).encode()
    client = make_client(max_body_bytes=len(body))
    assert post_triage(client, body).status_code == 200


def test_too_many_entries_is_413(make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_entries=4)
    issue = _only_issue(post_triage(client, case_bundle(CAUDA)), 413, "too-costly")
    assert issue["diagnostics"] == "Bundle has 5 entries; the limit is 4"
    assert issue["expression"] == ["Bundle.entry"]
    wrapped = {
        "resourceType": "Parameters",
        "parameter": [{"name": "bundle", "resource": case_bundle(CAUDA)}],
    }
    issue = _only_issue(post_triage(client, wrapped), 413, "too-costly")
    assert issue["expression"] == ["Parameters.parameter[0].resource.entry"]


# ------------------------------------------------------------------ 415


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/xml", "application/fhir+xml", "multipart/form-data; boundary=x"],
)
def test_other_content_types_are_415(client: TestClient, content_type: str) -> None:
    response = post_triage(client, case_bundle(CAUDA), content_type=content_type)
    issue = _only_issue(response, 415, "not-supported")
    assert "send application/fhir+json" in issue["diagnostics"]


@pytest.mark.parametrize(
    ("content_type", "accepted"),
    [
        ("application/fhir+json; charset=utf-8", True),
        ("application/fhir+json; charset=UTF-8", True),
        ("application/fhir+json; charset=iso-8859-1", False),
        ("application/fhir+json; fhirVersion=4.0", True),
        ("application/fhir+json; fhirVersion=4.3", True),  # R4B, which docs/interface.md accepts
        ("application/fhir+json; fhirVersion=5.0", False),
        ("application/json; fhirVersion=3.0", False),
    ],
)
def test_charset_and_fhir_version_of_the_body(
    client: TestClient, content_type: str, accepted: bool
) -> None:
    response = post_triage(client, case_bundle(CAUDA), content_type=content_type)
    if accepted:
        assert response.status_code == 200, response.text[:300]
    else:
        _only_issue(response, 415, "not-supported")


# ------------------------------------------------------------------ 406


@pytest.mark.parametrize(
    ("accept", "format_", "status"),
    [
        ("application/fhir+xml", None, 406),
        ("application/xml, text/xml", None, 406),
        ("text/html", None, 406),
        ("application/fhir+json;q=0, application/xml", None, 406),
        ("application/fhir+json; fhirVersion=5.0", None, 406),
        ("application/fhir+json; fhirVersion=4.0", None, 200),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", None, 200),  # browser
        ("application/*", None, 200),
        ("application/json", None, 200),
        (None, None, 200),
        ("application/fhir+xml", "json", 200),  # _format overrides Accept
        ("application/fhir+json", "xml", 406),
        (None, "application/fhir+json", 200),
        (None, "html", 406),
    ],
)
def test_content_negotiation(
    client: TestClient, accept: str | None, format_: str | None, status: int
) -> None:
    headers = {"Content-Type": FHIR_JSON, **({"Accept": accept} if accept else {})}
    params = {"asOf": "2026-11-24T10:00:00+01:00", **({"_format": format_} if format_ else {})}
    body = json.dumps(case_bundle(CAUDA))
    for response in (
        client.post("/fhir/$triage", content=body, headers=headers, params=params),
        client.get("/fhir/metadata", headers=headers, params=params),
    ):
        if status == 406:
            issue = _only_issue(response, 406, "not-supported")
            assert "application/fhir+json" in issue["diagnostics"]
        else:
            assert response.status_code == 200, response.text[:300]
            assert response.headers["content-type"].startswith(FHIR_JSON)


def test_health_answers_whatever_the_accept_header(client: TestClient) -> None:
    assert client.get("/healthz", headers={"Accept": "text/plain"}).status_code == 200


# ------------------------------------------------------------------ 422


def test_a_patient_alone_is_422(client: TestClient) -> None:
    patient = case_bundle(CAUDA)["entry"][0]["resource"]
    issue = _only_issue(post_triage(client, patient), 422, "processing")
    assert issue["diagnostics"].startswith("A Patient cannot be evaluated")
    assert issue["expression"] == ["resourceType"]


@pytest.mark.parametrize(
    "bundle_type", ["message", "history", "batch-response", "transaction-response", "searchset-x"]
)
def test_bundle_types_that_cannot_be_evaluated_are_422(
    client: TestClient, bundle_type: str
) -> None:
    bundle = case_bundle(CAUDA)
    bundle["type"] = bundle_type
    response = post_triage(client, bundle)
    if bundle_type == "searchset-x":  # not an R4 bundle type at all: FHIR-invalid
        issue = _only_issue(response, 400, "invalid")
    else:
        issue = _only_issue(response, 422, "processing")
        assert "This Bundle type cannot be evaluated; accepted: collection" in issue["diagnostics"]
    assert issue["expression"] == ["Bundle.type"]


def test_a_bundle_without_a_patient_is_422(client: TestClient) -> None:
    empty = {"resourceType": "Bundle", "type": "collection"}
    issue = _only_issue(post_triage(client, empty), 422, "processing")
    assert issue["diagnostics"] == "The Bundle names no patient: no Patient entry and no subject"


def test_a_bundle_whose_entries_name_no_patient_is_422_with_the_reasons(client: TestClient) -> None:
    bundle = case_bundle(CAUDA)
    del bundle["entry"][0]
    for entry in bundle["entry"][1:]:
        del entry["resource"]["subject"]  # Observations may omit it; the Condition keeps Group
    bundle["entry"][0]["resource"]["subject"] = {"reference": "Group/g1"}
    issue = _only_issue(post_triage(client, bundle), 422, "processing")
    assert (
        "Bundle.entry[0]: Condition: subject does not resolve to a patient" in issue["diagnostics"]
    )


def test_only_an_anonymous_patient_is_422(client: TestClient) -> None:
    bundle = case_bundle(CAUDA)
    del bundle["entry"][0]["fullUrl"]
    del bundle["entry"][0]["resource"]["id"]
    issue = _only_issue(post_triage(client, bundle), 422, "processing")
    assert "Bundle.entry[0]: Patient has neither id nor fullUrl" in issue["diagnostics"]


def test_parameters_without_a_bundle_is_422(client: TestClient) -> None:
    parameters = {
        "resourceType": "Parameters",
        "parameter": [{"name": "asOf", "valueDate": "2026-11-24"}],
    }
    issue = _only_issue(post_triage(client, parameters), 422, "processing")
    assert issue["diagnostics"] == "Parameters has no 'bundle' part"
    assert issue["expression"] == ["Parameters.parameter"]


# ------------------------------------------------------------------ 400: parameters and options


def _parameters(*parts: Json) -> Json:
    return {
        "resourceType": "Parameters",
        "parameter": [{"name": "bundle", "resource": case_bundle(CAUDA)}, *parts],
    }


@pytest.mark.parametrize(
    ("parts", "expression", "diagnostics"),
    [
        (
            [{"name": "colour", "valueString": "red"}],
            "Parameters.parameter[1].name",
            "Unknown parameter; this operation takes bundle, asOf, profile, return, validation",
        ),
        (
            [{"valueString": "red"}],
            "Parameters.parameter[1].name",
            "Missing required element 'name'",
        ),
        (
            [
                {"name": "asOf", "valueDate": "2026-11-24"},
                {"name": "asOf", "valueDate": "2026-11-25"},
            ],
            "Parameters.parameter[2].name",
            "Parameter 'asOf' is repeated",
        ),
        (
            [{"name": "asOf", "valueString": "2026-11-24"}],
            "Parameters.parameter[1]",
            "Parameter 'asOf' needs valueDateTime or valueDate or valueInstant",
        ),
        (
            [{"name": "asOf", "valueDateTime": "yesterday"}],
            "Parameters.parameter[1].valueDateTime",
            "Value does not match",
        ),
        (
            [{"name": "profile", "valueCode": "who-2023"}],
            "profile",
            "Unknown profile; known: neupsig, nice-ng59",
        ),
        (
            [{"name": "bundle", "resource": case_bundle(CAUDA)}],
            "Parameters.parameter[1].name",
            "Parameter 'bundle' is repeated",
        ),
        (  # Patient/{id}/$triage's alone: on a posted Bundle it would be silently ignored
            [{"name": "writeback", "valueBoolean": True}],
            "Parameters.parameter[1].name",
            "Unknown parameter",
        ),
    ],
    ids=[
        "unknown-part",
        "part-without-name",
        "repeated-part",
        "asof-wrong-type",
        "asof-bad-value",
        "unknown-profile",
        "two-bundles",
        "writeback-on-system-triage",
    ],
)
def test_bad_parameters_are_400(
    client: TestClient, parts: list[Json], expression: str, diagnostics: str
) -> None:
    issue = _only_issue(post_triage(client, _parameters(*parts)), 400, "invalid")
    assert diagnostics in issue["diagnostics"]
    assert issue["expression"] == [expression]


def test_a_bundle_part_that_is_not_a_bundle_is_400(client: TestClient) -> None:
    patient = case_bundle(CAUDA)["entry"][0]["resource"]
    parameters = {
        "resourceType": "Parameters",
        "parameter": [{"name": "bundle", "resource": patient}],
    }
    issue = _only_issue(post_triage(client, parameters), 400, "invalid")
    assert issue["expression"] == ["Parameters.parameter[0].resource"]


@pytest.mark.parametrize(
    ("params", "expression", "diagnostics"),
    [
        ({"asOf": "tomorrow"}, "asOf", "asOf is not a FHIR dateTime"),
        ({"asOf": "2026-02-30"}, "asOf", "asOf is not a FHIR dateTime"),
        ({"asOf": "0001-01-01T00:00:00+01:00"}, "asOf", "is not a FHIR dateTime"),
        ({"asOf": "9999-12-31T23:59:59-01:00"}, "asOf", "is not a FHIR dateTime"),
        # FHIR dateTime: "If hours and minutes are specified, a time zone SHALL be populated"
        ({"asOf": "2026-10-01T10:00:00"}, "asOf", "with a time zone"),
        ({"asOf": ""}, "asOf", "asOf is not a FHIR dateTime"),  # not "now"
        ({"profile": "who-2023"}, "profile", "Unknown profile; known: neupsig, nice-ng59"),
        ({"profile": ""}, "profile", "Unknown profile"),
        ({"return": "xml"}, "return", "return must be one of collection, transaction"),
        ({"return": ""}, "return", "return must be one of"),
        ({"validation": ""}, "validation", "validation must be one of lenient, strict"),
        ([("asOf", "2026-10-01"), ("asOf", "2025-01-01")], "asOf", "asOf is repeated"),
        ([("profile", "neupsig"), ("profile", "nice-ng59")], "profile", "profile is repeated"),
        ([("return", "collection"), ("return", "collection")], "return", "return is repeated"),
    ],
    ids=[
        "asof-word",
        "asof-impossible-day",
        "asof-before-year-1-in-utc",
        "asof-after-9999-in-utc",
        "asof-time-without-zone",
        "asof-empty",
        "profile",
        "profile-empty",
        "return",
        "return-empty",
        "validation-empty",
        "asof-repeated",
        "profile-repeated",
        "return-repeated",
    ],
)
def test_bad_query_options_are_400(
    client: TestClient, params: Any, expression: str, diagnostics: str
) -> None:
    if isinstance(params, list):  # a repeated parameter
        response = client.post("/fhir/$triage", content=json.dumps(case_bundle(CAUDA)),
                               params=params, headers={"content-type": FHIR_JSON})  # fmt: skip
    else:
        response = post_triage(client, case_bundle(CAUDA), params=params)
    issue = _only_issue(response, 400, "invalid")
    assert diagnostics in issue["diagnostics"]
    assert issue["expression"] == [expression]


# ------------------------------------------------------------------ 404, 405, Patient $triage


@pytest.mark.parametrize(
    "path",
    [
        "/fhir/Questionnaire/nope",
        "/fhir/StructureDefinition/dn4",
        "/fhir/Basic",
        "/fhir/Foo",
        "/nowhere",
    ],
)
def test_unknown_paths_and_resources_are_404(client: TestClient, path: str) -> None:
    _only_issue(client.get(path), 404, "not-found")


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/fhir/$triage", "POST"),
        ("PUT", "/fhir/$triage", "POST"),
        ("DELETE", "/fhir/$triage", "POST"),
        ("POST", "/fhir/metadata", "GET, HEAD"),
        ("DELETE", "/fhir/Questionnaire/dn4", "GET, HEAD"),
        ("PATCH", "/healthz", "GET, HEAD"),
    ],
)
def test_wrong_method_is_405(client: TestClient, method: str, path: str, allow: str) -> None:
    response = client.request(method, path)
    _only_issue(response, 405, "not-supported")
    assert response.headers["allow"] == allow


POST_ONLY = [
    "/fhir/$triage",
    "/fhir/Patient/p1/$triage",
    "/fhir/PlanDefinition/$apply",
    "/fhir/PlanDefinition/back-pain-pathway/$apply",
    "/fhir/Questionnaire/$populate",
    "/fhir/Questionnaire/red-flag-screen/$populate",
    "/ui/summary",
]


@pytest.mark.parametrize("path", POST_ONLY)
@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "DELETE", "PATCH"])
def test_every_other_method_on_an_operation_is_405_allowing_post(
    client: TestClient, method: str, path: str
) -> None:
    # GET on a type-level operation used to be read as a conformance resource named "$apply"
    # (404), GET /ui/summary as a page asset (400), and PUT /ui/summary said Allow: GET
    response = client.request(method, path)
    assert response.status_code == 405, response.text[:200]
    assert response.headers["allow"] == "POST"
    if method != "HEAD":
        assert response.json()["issue"][0]["code"] == "not-supported"


@pytest.mark.parametrize(
    "path",
    ["/fhir/metadata", "/fhir/Questionnaire", "/fhir/Questionnaire/red-flag-screen",
     "/fhir/PlanDefinition/back-pain-pathway", "/healthz", "/", "/cds-services"],
)  # fmt: skip
def test_head_is_answered_wherever_get_is(client: TestClient, path: str) -> None:
    got = client.get(path)
    head = client.head(path)
    assert got.status_code == head.status_code == 200, head.text[:200]
    assert head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]
    assert head.headers["content-length"] == str(len(got.content))


@pytest.mark.parametrize(
    "body",
    [
        b"",
        json.dumps(
            {
                "resourceType": "Parameters",
                "parameter": [{"name": "writeback", "valueBoolean": True}],
            }
        ).encode(),
    ],
)
def test_patient_triage_without_a_fhir_server_is_422(
    make_client: Callable[..., TestClient], body: bytes
) -> None:
    client = make_client(fhir_server=None)
    response = client.post(
        "/fhir/Patient/123/$triage", content=body, headers={"content-type": FHIR_JSON}
    )
    issue = _only_issue(response, 422, "processing")
    assert "No FHIR server is configured" in issue["diagnostics"]
    assert "PAINPATH_FHIR_SERVER" in issue["diagnostics"]
    assert "Patient/123/$triage" in issue["diagnostics"]


# ------------------------------------------------------------------ 500


def test_an_unexpected_failure_is_a_generic_500(
    make_client: Callable[..., TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*_: object, **__: object) -> None:
        raise RuntimeError("secret-internal-detail at /srv/painpath/engine.py line 42")

    monkeypatch.setattr(Pipeline, "evaluate", explode)
    client = make_client()
    response = post_triage(client, case_bundle(CAUDA))
    issue = _only_issue(response, 500, "exception")
    assert issue["diagnostics"] == "Internal error; the request was not evaluated"
    for leak in ("secret-internal-detail", "RuntimeError", "engine.py"):
        assert leak not in response.text


def test_bad_input_never_gets_a_5xx(client: TestClient) -> None:
    """A sweep of odd-but-parseable bodies: each gets a 4xx OperationOutcome or a 200 Bundle."""
    base = case_bundle(CAUDA)
    bodies: list[Any] = [
        {"resourceType": "Bundle", "type": "collection", "entry": [{}]},
        {"resourceType": "Bundle", "type": "collection", "entry": [{"fullUrl": 5}]},
        {"resourceType": "Parameters"},
        {"resourceType": "Parameters", "parameter": [7]},
        {"resourceType": "Parameters", "parameter": [{"name": "bundle"}]},
        {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": []}]},
    ]
    for index in range(len(base["entry"])):
        value: object
        for value in (None, [], {}, "x", 0, True):
            bundle = copy.deepcopy(base)
            bundle["entry"][index]["resource"]["subject" if index else "birthDate"] = value
            bodies.append(bundle)
    for body in bodies:
        response = post_triage(client, body)
        assert response.status_code < 500, (body, response.text)
        assert response.json()["resourceType"] in {"Bundle", "OperationOutcome"}


def _deep_extension(levels: int) -> Json:
    """A valid nested extension ``levels`` extensions deep (2 JSON levels each)."""
    extension: Json = {"url": "https://example.org/x", "valueString": "leaf"}
    for _ in range(levels - 1):
        extension = {"url": "https://example.org/x", "extension": [extension]}
    return extension


def test_the_depth_limit_cannot_exceed_what_the_service_can_re_serialise() -> None:
    with pytest.raises(ValueError, match="max_json_depth"):
        _settings(max_json_depth=201)
    assert _settings(max_json_depth=200).max_json_depth == 200


@pytest.mark.parametrize("path", ["/fhir/$triage", "/ui/summary"])
def test_input_at_the_highest_depth_limit_is_evaluated_not_a_5xx(
    make_client: Callable[..., TestClient], path: str
) -> None:
    client = make_client(max_json_depth=200)
    bundle = case_bundle(CAUDA)
    bundle["entry"][0]["resource"]["extension"] = [_deep_extension(95)]  # ~196 levels in all
    params = {"asOf": "2026-11-24T10:00:00+01:00"}
    response = client.post(path, content=json.dumps(bundle), params=params,
                           headers={"Content-Type": FHIR_JSON})  # fmt: skip
    assert response.status_code == 200, response.text[:300]
    deeper = copy.deepcopy(bundle)
    deeper["entry"][0]["resource"]["extension"] = [_deep_extension(110)]
    refused = client.post(path, content=json.dumps(deeper), params=params,
                          headers={"Content-Type": FHIR_JSON})  # fmt: skip
    assert refused.status_code == 413


@pytest.mark.parametrize(
    ("where", "levels", "invalid", "status"),
    [
        # an entry no rule reads is checked by jsonschema-rs alone (no Python recursion): a
        # whole record is not walked twice, so nesting past the limit there is accepted...
        ("unread", 60, False, 200),
        # ...up to what the digest can serialise (254 levels), then refused, never a 5xx
        ("unread", 130, False, 413),
        # an unread entry the Python validator must explain is held to the limit first
        ("unread", 60, True, 413),
        # the entries the rules read, at both sides of the default limit (64: 3 for the Bundle)
        ("read", 30, False, 200),
        ("read", 31, False, 413),
    ],
)
def test_the_depth_limit_holds_where_the_service_recurses(
    client: TestClient, where: str, levels: int, invalid: bool, status: int
) -> None:
    bundle = case_bundle(CAUDA)
    if where == "read":  # the Condition: resource 1 + extension list/object pairs
        bundle["entry"][1]["resource"]["extension"] = [_deep_extension(levels)]
    else:
        claim = copy.deepcopy(CLAIM) | {"extension": [_deep_extension(levels)]}
        if invalid:
            claim["colour"] = "red"
        bundle["entry"].append({"resource": claim})
    response = post_triage(client, bundle)
    assert response.status_code == status, response.text[:300]
    if status == 413:
        assert response.json()["issue"][0]["code"] == "too-costly"


@pytest.mark.parametrize(
    "path",
    ["/fhir/$triage", "/ui/summary", "/fhir/PlanDefinition/back-pain-pathway/$apply",
     "/cds-services/painpath-patient-view"],
)  # fmt: skip
def test_nesting_past_what_the_parser_takes_is_413_not_bad_json(
    client: TestClient, path: str
) -> None:
    # valid JSON, ~1,200 levels: past orjson's own limit (1024), which it reports as an error
    # (written as text: json.dumps recurses)
    deep = '{"url": "https://example.org/x", "valueString": "leaf"}'
    for _ in range(599):
        deep = '{"url": "https://example.org/x", "extension": [' + deep + "]}"
    bundle = case_bundle(CAUDA)
    bundle["entry"][0]["resource"]["extension"] = ["DEEP"]
    body = json.dumps(bundle).replace('"DEEP"', deep)
    response = client.post(path, content=body, headers={"Content-Type": FHIR_JSON})
    issue = _only_issue(response, 413, "too-costly")
    assert "1024" in issue["diagnostics"]


def test_every_input_error_kind_has_one_status() -> None:
    """The closed set of InputError kinds and the HTTP mapping stay in step."""
    from typing import get_args

    from service.api.errors import STATUS_BY_KIND
    from service.fhir.errors import InputErrorKind

    assert set(STATUS_BY_KIND) == set(get_args(InputErrorKind))
    assert all(400 <= status < 600 for status in STATUS_BY_KIND.values())


@pytest.mark.parametrize(
    "path",
    [
        "/fhir/PlanDefinition/back-pain-pathway/$apply",
        "/fhir/Questionnaire/red-flag-screen/$populate",
    ],
)
def test_apply_and_populate_keep_the_same_limits(
    make_client: Callable[..., TestClient], path: str
) -> None:
    body = {
        "resourceType": "Parameters",
        "parameter": [{"name": "data", "resource": case_bundle(CAUDA)}],
    }
    small = make_client(max_body_bytes=2000)
    content = json.dumps(body).encode()
    answer = small.post(path, content=content, headers={"content-type": FHIR_JSON})
    issue = _only_issue(answer, 413, "too-costly")
    assert issue["diagnostics"] == f"Body is {len(content)} bytes; the limit is 2000 bytes"
    few = make_client(max_entries=4)
    answer = few.post(path, content=content, headers={"content-type": FHIR_JSON})
    issue = _only_issue(answer, 413, "too-costly")
    assert issue["expression"] == ["Parameters.parameter[0].resource.entry"]


# ------------------------------------------------------------------ no input value echoed

SECRET = "ZQXSECRETNOTE"  # noqa: S105 - distinctive: found in an answer only if copied from the request


def _echo_cases() -> list[tuple[str, dict[str, Any]]]:
    bundle = case_bundle(CAUDA)
    parts = [{"name": "bundle", "resource": bundle}, {"name": f"p{SECRET}", "valueString": "x"}]
    part = {"resourceType": "Parameters", "parameter": parts}
    fhir_json = "application/fhir+json"
    body = json.dumps(bundle)
    return [
        ("asOf", {"params": {"asOf": f"Zebulon {SECRET}"}, "content": body}),
        ("asOf-no-zone", {"params": {"asOf": f"2026-10-01T10:00:00{SECRET}"}, "content": body}),
        ("profile", {"params": {"asOf": "2026-11-24", "profile": SECRET}, "content": body}),
        ("return", {"params": {"asOf": "2026-11-24", "return": SECRET}, "content": body}),
        ("validation", {"params": {"asOf": "2026-11-24", "validation": SECRET}, "content": body}),
        ("resourceType-object", {"content": json.dumps({"resourceType": {SECRET: 1}})}),
        ("resourceType-string", {"content": json.dumps({"resourceType": SECRET})}),
        ("part-name", {"content": json.dumps(part)}),
        ("content-type", {"content": body, "headers": {"content-type": f"text/{SECRET}"}}),
        ("charset", {"content": body,
                     "headers": {"content-type": f"{fhir_json}; charset={SECRET}"}}),
        ("fhirVersion", {"content": body,
                         "headers": {"content-type": f"{fhir_json}; fhirVersion={SECRET}"}}),
        ("accept", {"content": body, "headers": {"accept": f"text/{SECRET}"}}),
        ("_format", {"params": {"_format": f"xml{SECRET}"}, "content": body}),
        ("query-name", {"params": {"asOf": "2026-11-24", f"{SECRET} x": "1"}, "content": body}),
        ("query-name-strict", {"params": {"asOf": "2026-11-24", f"{SECRET} x": "1"},
                               "content": body, "headers": {"prefer": "handling=strict"}}),
    ]  # fmt: skip


@pytest.mark.parametrize(("where", "request_"), _echo_cases(), ids=[c[0] for c in _echo_cases()])
def test_no_answer_copies_a_value_from_the_input(
    client: TestClient, where: str, request_: dict[str, Any]
) -> None:
    headers = {"content-type": FHIR_JSON, **request_.get("headers", {})}
    response = client.post(
        "/fhir/$triage", content=request_["content"], params=request_.get("params"),
        headers=headers,
    )  # fmt: skip
    assert response.status_code != 500
    assert SECRET.lower() not in response.text.lower(), (where, response.text[:400])
    if where not in ("query-name",):
        assert response.status_code >= 400, (where, response.text[:300])
