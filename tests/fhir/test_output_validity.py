"""Every resource PainPath emits is valid R4: the vendored R4 JSON Schema (as published) and the
fhir.resources R4B models, for every golden case in both return modes; narratives are
well-formed XHTML using only the elements the R4 narrative rules allow."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B import get_fhir_model_class
from fhir_testkit import (
    CASES,
    CAUDA,
    MECHANICAL,
    OUT_OF_SCOPE,
    Json,
    case_bundle,
    load_case,
    post_triage,
    resources,
    schema_errors,
    with_prefix,
    with_urn_uuids,
)

from service.api.app import create_app
from service.settings import Settings

XHTML = "{http://www.w3.org/1999/xhtml}"
# https://hl7.org/fhir/R4/narrative.html#xhtml: the basic HTML formatting elements only
ALLOWED = {
    "a", "abbr", "acronym", "b", "big", "blockquote", "br", "caption", "cite", "code", "col",
    "colgroup", "dd", "dfn", "div", "dl", "dt", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr",
    "i", "img", "li", "ol", "p", "pre", "q", "samp", "small", "span", "strong", "sub", "sup",
    "table", "tbody", "td", "tfoot", "th", "thead", "tr", "tt", "ul", "var",
}  # fmt: skip
NAMES = sorted(p.stem for p in CASES.glob("*.json"))
MUST_COVER = {
    CAUDA, OUT_OF_SCOPE, "multi-flag-infection-malignancy", "mri-unsafe-pacemaker-cauda-equina-ct",
    "mri-unsafe-device-infection-ct", "fracture-significant-trauma", "inflammatory-stiffness-31",
    "questionnaire-startback-incomplete-reported", "profile-neupsig-chronic-radicular",
}  # fmt: skip


@pytest.fixture(scope="module")
def api() -> Iterator[TestClient]:
    """One API client for the whole sweep (building an app per case costs more than the case)."""
    with TestClient(create_app(Settings(_env_file=None))) as test_client:
        yield test_client


def _result(
    client: TestClient, bundle: Json, *, as_of: str, mode: str, profile: str = "nice-ng59"
) -> Json:
    response = post_triage(
        client, bundle, params={"asOf": as_of, "return": mode, "profile": profile}
    )
    assert response.status_code == 200, response.text
    result: Json = response.json()
    return result


def _case_result(client: TestClient, name: str, mode: str) -> Json:
    case = load_case(name)
    return _result(
        client,
        case["bundle"],
        as_of=case["asOf"],
        mode=mode,
        profile=case.get("profile", "nice-ng59"),
    )


def _assert_valid(result: Json, *, whole_bundle: bool = True) -> None:
    """Each resource against its schema definition and R4B model; the Bundle against both too
    (the Bundle schema check is slow - a oneOf over every resource type per entry - so the
    full sweep checks resources and the Bundle model, and a representative set the Bundle)."""
    problems = [f"Bundle {e}" for e in schema_errors(result)] if whole_bundle else []
    for resource in resources(result):
        problems += [f"{resource['resourceType']} {e}" for e in schema_errors(resource)]
    assert problems == []
    for resource in resources(result):
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    get_fhir_model_class("Bundle").model_validate(result)


def test_the_sweep_covers_the_required_kinds_of_case() -> None:
    assert set(NAMES) >= MUST_COVER
    assert len(NAMES) >= 20


@pytest.mark.parametrize("mode", ["collection", "transaction"])
@pytest.mark.parametrize("name", NAMES)
def test_golden_case_output_is_valid_r4(api: TestClient, name: str, mode: str) -> None:
    result = _case_result(api, name, mode)
    assert result["type"] == mode
    _assert_valid(result, whole_bundle=False)


@pytest.mark.parametrize("mode", ["collection", "transaction"])
@pytest.mark.parametrize("name", sorted(MUST_COVER))
def test_whole_result_bundle_is_valid_r4(api: TestClient, name: str, mode: str) -> None:
    _assert_valid(_case_result(api, name, mode))


def test_multi_patient_output_is_valid_r4(client: TestClient) -> None:
    entries = [
        e
        for p, n in (("a", CAUDA), ("b", MECHANICAL), ("c", OUT_OF_SCOPE))
        for e in with_prefix(case_bundle(n), p)["entry"]
    ]
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": entries}
    for mode in ("collection", "transaction"):
        _assert_valid(_result(client, bundle, as_of="2026-11-24", mode=mode))


def test_urn_subject_output_is_valid_r4(client: TestClient) -> None:
    bundle, _ = with_urn_uuids(case_bundle(CAUDA))
    for mode in ("collection", "transaction"):
        _assert_valid(_result(client, bundle, as_of="2026-11-24", mode=mode))


def test_schema_check_can_fail() -> None:
    """The validators used above do reject a broken resource (guards against a vacuous sweep)."""
    bad = {"resourceType": "CarePlan", "status": "draft", "intent": "proposal"}  # no subject
    assert schema_errors(bad) == ["[]: 'subject' is a required property"]
    with pytest.raises(ValueError, match="subject"):
        get_fhir_model_class("CarePlan").model_validate(bad)
    entry = {"fullUrl": "urn:uuid:x", "resource": {**bad, "colour": "red"}}
    assert schema_errors({"resourceType": "Bundle", "type": "collection", "entry": [entry]})


# ------------------------------------------------------------------ narratives


def _narratives(result: Json) -> list[str]:
    return [r["text"]["div"] for r in resources(result) if "text" in r]


def _assert_narrative(div: str) -> None:
    root = ET.fromstring(div)  # noqa: S314 - our own output; raises unless well-formed
    assert root.tag == f"{XHTML}div"
    for element in root.iter():
        assert element.tag.startswith(XHTML), element.tag
        assert element.tag.removeprefix(XHTML) in ALLOWED, element.tag
        assert not element.attrib, element.attrib
    assert "".join(root.itertext()).strip()


@pytest.mark.parametrize(
    "name",
    [
        CAUDA,
        "multi-flag-infection-malignancy",
        "mri-unsafe-pacemaker-cauda-equina-ct",
        MECHANICAL,
        "nice-sciatica-active-pregabalin-advised-against",
        "age-unknown-evaluated",
    ],
)
def test_narratives_are_allowed_xhtml(client: TestClient, name: str) -> None:
    result = _case_result(client, name, "collection")
    narratives = _narratives(result)
    assert len(narratives) == len(resources(result))  # every resource has one (R4 dom-6)
    for div in narratives:
        _assert_narrative(div)


def test_markup_in_input_is_escaped_in_narratives(client: TestClient) -> None:
    bundle = case_bundle(CAUDA)
    saddle = bundle["entry"][4]  # the red-flag evidence, cited in the DetectedIssue narrative
    del saddle["resource"]["id"]
    saddle["fullUrl"] = 'https://ehr.example.org/fhir/Observation?q=<script>alert(1)</script>&x="1"'
    result = _result(client, bundle, as_of="2026-11-24", mode="collection")
    [issue] = resources(result, "DetectedIssue")
    assert "&lt;script&gt;" in issue["text"]["div"]
    for div in _narratives(result):
        _assert_narrative(div)
        assert "<script" not in div


def test_care_plan_narrative_reads_the_decision(client: TestClient) -> None:
    result = _case_result(client, CAUDA, "collection")
    [plan] = resources(result, "CarePlan")
    text = "".join(ET.fromstring(plan["text"]["div"]).itertext())  # noqa: S314 - our output
    assert "Pain type: " in text
    assert "Red flags" in text
    assert "(recommended)" not in text or "Urgent referral" in text
    assert "a clinician decides" in text


def test_capability_statement_is_valid_r4(client: TestClient) -> None:
    capability = client.get("/fhir/metadata").json()
    assert schema_errors(capability) == []
    get_fhir_model_class("CapabilityStatement").model_validate(capability)


def test_vendored_schema_is_the_official_r4_schema() -> None:
    """The vendored schema is byte-for-byte the official R4 JSON Schema (HL7 fhir.schema.json,
    4.0.1), pinned by digest so that tests never read outside the repository."""
    import hashlib

    from fhir_testkit import SCHEMA

    assert hashlib.sha256(SCHEMA.read_bytes()).hexdigest() == (
        "4091ab0911b2cb4d4d0730ed7fa4bbc5c5fec6caf62740bed2d6ffc721b7e37a"
    )
