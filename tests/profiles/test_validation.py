"""Validation: the package against base R4, every golden output against the PainPath profiles, and
a deliberately broken resource per profile and defect kind that the validator must reject.

Two validators: the official R4 JSON Schema (Python ``jsonschema``) and ``validator/validate.mjs``
(@medplum/core 4.5.2 plus a snapshot walker for what it leaves out; see its header).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from profiles_testkit import CASES, PP, ROOT, Json, golden_output, reference_types, schema_errors

from service.app.pipeline import Pipeline
from service.fhir import canonicals as cn
from tools.conformance_package.pathway import service_categories

Validate = Callable[[list[dict[str, Any]]], dict[str, Json]]
CAUDA = ROOT / "tests" / "golden" / "cases" / "cauda-equina-saddle-anaesthesia.json"
# R4 allows Observation.derivedFrom to point at DocumentReference, ImagingStudy, Media,
# QuestionnaireResponse, Observation and MolecularSequence only; the validator reports any other
# target as below (test_derived_from_targets_are_r4).
TARGET_ERROR = re.compile(r"^\[profile\] Observation\.derivedFrom(\[\d+\])?: reference to a ")


def _errors(result: Json) -> list[str]:
    return list(result["errors"])


def _skeleton(bundle: Json) -> Json:
    """The Bundle without its resources (validated one by one: the schema's resource ``oneOf``
    over every resource type costs ~100 ms per entry)."""
    entries = [{k: v for k, v in e.items() if k != "resource"} for e in bundle["entry"]]
    return {**bundle, "entry": entries}


def _resources(bundle: Json) -> Iterator[Json]:
    return (entry["resource"] for entry in bundle.get("entry", []))


# --- the package ----------------------------------------------------------------------------------


def test_every_artifact_and_example_matches_the_r4_json_schema(package: dict[str, Json]) -> None:
    problems = {key: errors for key, r in package.items() if (errors := schema_errors(r))}
    assert not problems, json.dumps(problems, indent=1)[:4000]


def test_every_artifact_validates_against_its_base_definition(
    package: dict[str, Json], validate: Validate
) -> None:
    items = [{"key": key, "resource": r, "profile": "base"} for key, r in package.items()]
    items += [
        {"key": f"{key} (profiles)", "resource": r, "profile": "meta"}
        for key, r in package.items()
        if r.get("meta", {}).get("profile")
    ]
    results = validate(items)
    failed = {key: errors for key, result in results.items() if (errors := _errors(result))}
    assert not failed, json.dumps(failed, indent=1)[:4000]
    assert len(results) == len(items) > len(package)


# --- every output of every golden vignette ---------------------------------------------------


@pytest.fixture(scope="module")
def golden(pipeline: Pipeline) -> list[tuple[str, Json, Json]]:
    """``(case id, input Bundle, result Bundle)`` for every golden vignette."""
    return [(path.stem, *golden_output(pipeline, path)) for path in CASES]


@pytest.fixture(scope="module")
def golden_results(golden: list[tuple[str, Json, Json]], validate: Validate) -> dict[str, Json]:
    """The validator's verdict on every resource of every golden result, one node run."""
    items = [
        {
            "key": f"{case}: {r['resourceType']}/{r['id']}",
            "resource": r,
            "profile": "meta",
            "references": reference_types(given, result),
        }
        for case, given, result in golden
        for r in _resources(result)
    ]
    return validate(items)


def test_golden_outputs_match_the_r4_json_schema(golden: list[tuple[str, Json, Json]]) -> None:
    problems = {
        f"{case}: {r['resourceType']}": errors
        for case, _, result in golden
        for r in [_skeleton(result), *_resources(result)]
        if (errors := schema_errors(r))
    }
    assert not problems, json.dumps(problems, indent=1)[:4000]


def test_golden_outputs_validate_against_the_painpath_profiles(
    golden_results: dict[str, Json],
) -> None:
    assert len(golden_results) > 500
    failed = {key: errors for key, result in golden_results.items() if (errors := _errors(result))}
    assert not failed, json.dumps(failed, indent=1)[:4000]


def test_derived_from_targets_are_r4(golden_results: dict[str, Json]) -> None:
    deviations = [
        e for result in golden_results.values() for e in result["errors"] if TARGET_ERROR.match(e)
    ]
    assert not deviations, deviations[:5]


def _profile_of(resource: Json) -> str | None:
    profiles = resource.get("meta", {}).get("profile", [])
    return profiles[0] if len(profiles) == 1 else None


def test_every_emitted_resource_names_its_profile(golden: list[tuple[str, Json, Json]]) -> None:
    seen = set()
    for case, _, result in golden:
        for r in _resources(result):
            if r["resourceType"] in cn.PROFILES:
                assert _profile_of(r) in cn.PROFILES[r["resourceType"]], (case, r["resourceType"])
                seen.add(_profile_of(r))
    assert seen == {p for profiles in cn.PROFILES.values() for p in profiles}


def test_proposals_instantiate_the_activity_definitions_of_the_package(
    golden: list[tuple[str, Json, Json]], package: dict[str, Json], kb: Any
) -> None:
    definitions = {
        r["url"]: r for r in package.values() if r["resourceType"] == "ActivityDefinition"
    }
    for case, _, result in golden:
        for r in _resources(result):
            if r["resourceType"] == "ServiceRequest":
                [canonical] = r["instantiatesCanonical"]
                service = definitions[canonical]["id"].removeprefix("service-")
                assert definitions[canonical]["code"] == r["code"], case
                assert service_categories(kb.catalogue, service) == r["category"], case
            if r["resourceType"] == "CarePlan":
                assert r["instantiatesCanonical"] == [cn.PLAN_DEFINITION]
                for activity in (a["detail"] for a in r.get("activity", []) if "detail" in a):
                    [canonical] = activity["instantiatesCanonical"]
                    definition = definitions[canonical]
                    assert definition["code"]["coding"] == activity["code"]["coding"], case
                    assert definition["kind"] == activity["kind"]
                    assert definition.get("doNotPerform", False) == activity["doNotPerform"]


def _codings(node: object) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        if isinstance(node.get("system"), str) and isinstance(node.get("code"), str):
            yield node["system"], node["code"]
        for value in node.values():
            yield from _codings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _codings(value)


def test_every_painpath_code_emitted_is_in_its_code_system(
    golden: list[tuple[str, Json, Json]], package: dict[str, Json]
) -> None:
    systems = {
        r["url"]: {c["code"] for c in r["concept"]}
        for r in package.values()
        if r["resourceType"] == "CodeSystem"
    }
    unknown = {
        f"{system}|{code}"
        for _, _, result in golden
        for system, code in _codings(result)
        if system.startswith(f"{PP}/CodeSystem/") and code not in systems.get(system, set())
    }
    assert not unknown, sorted(unknown)


# --- broken samples: the validator must reject each ---------------------------------------------


def _coding(resource: Json, *path: str | int) -> Any:
    """The node at ``path`` (an object or a list: the last step indexes it)."""
    node: Any = resource
    for step in path:
        node = node[step]
    return node


def _set(path: tuple[str | int, ...], value: object) -> Callable[[Json], None]:
    def mutate(resource: Json) -> None:
        _coding(resource, *path[:-1])[path[-1]] = value

    return mutate


def _drop(path: tuple[str | int, ...]) -> Callable[[Json], None]:
    def mutate(resource: Json) -> None:
        del _coding(resource, *path[:-1])[path[-1]]

    return mutate


def _pick(role: str) -> Callable[[Json], bool]:
    checks = {
        "pain-type": lambda r: r["code"]["coding"][0]["code"] == "pain-type",
        "stage-eligibility": lambda r: (
            r["code"]["coding"][0]["code"] == "treatment-stage-eligibility"
        ),
    }
    return checks.get(role, lambda r: True)


VALUE = ("valueCodeableConcept", "coding", 0, "code")
CODE = ("code", "coding", 0, "code")
CATEGORY = ("category", 0, "coding", 0, "code")
OBS = "Observation"


def _as_string(resource: Json) -> None:
    resource["valueString"] = resource.pop("valueCodeableConcept")["coding"][0]["code"]


# profile, defect kind, resource type, mutation
BROKEN: list[tuple[str, str, str, Callable[[Json], None]]] = [
    ("pain-type", "wrong fixed code", OBS, _set(CODE, "pain-kind")),
    ("pain-type", "missing required element", OBS, _drop(("valueCodeableConcept",))),
    ("pain-type", "code outside required binding", OBS, _set(VALUE, "psychogenic")),
    ("pain-type", "nested code outside binding", OBS, _set(("component", 0, *VALUE), "certain")),
    ("pain-type", "choice type not allowed", OBS, _as_string),
    ("stage-eligibility", "wrong fixed code", OBS, _set(("component", 0, *CODE), "physiotherapy")),
    ("stage-eligibility", "missing required element", OBS, lambda r: r["component"].pop(1)),
    ("stage-eligibility", "code outside required binding", OBS,
     _set(("component", 1, *VALUE), "maybe")),
    ("stage-eligibility", "nested required element missing", OBS,
     _drop(("component", 2, "valueCodeableConcept"))),
    ("careplan", "wrong fixed code", "CarePlan", _set(("intent",), "plan")),
    ("careplan", "missing required element", "CarePlan", _drop(("text",))),
    ("careplan", "code outside required binding", "CarePlan", _set(CATEGORY, "watchful-waiting")),
    ("servicerequest", "wrong fixed code", "ServiceRequest", _set(("status",), "active")),
    ("servicerequest", "missing required element", "ServiceRequest", _drop(("note",))),
    ("servicerequest", "code outside required binding", "ServiceRequest",
     _set(CATEGORY, "massage")),
    ("servicerequest", "wrong reference target", "ServiceRequest",
     _set(("subject",), {"reference": "Group/g1"})),
    ("detectedissue", "wrong fixed code", "DetectedIssue", _set(("status",), "final")),
    ("detectedissue", "missing required element", "DetectedIssue", _drop(("code",))),
    ("detectedissue", "code outside required binding", "DetectedIssue", _set(CODE, "headache")),
]  # fmt: skip


@pytest.fixture(scope="module")
def broken_verdicts(pipeline: Pipeline, validate: Validate) -> dict[str, Json]:
    """The validator's verdicts on the valid originals and on every broken sample (one run)."""
    _, result = golden_output(pipeline, CAUDA)
    originals = {}
    for profile, _, rtype, _ in BROKEN:
        [original, *_] = [
            r for r in _resources(result) if r["resourceType"] == rtype and _pick(profile)(r)
        ]
        originals[profile] = original
    items = [{"key": f"{p}: valid", "resource": r, "profile": "meta"} for p, r in originals.items()]
    for profile, defect, _, mutate in BROKEN:
        resource = copy.deepcopy(originals[profile])
        mutate(resource)
        items.append({"key": f"{profile}: {defect}", "resource": resource, "profile": "meta"})
    verdicts = validate(items)
    out = ROOT / "test-artifacts"
    out.mkdir(exist_ok=True)
    (out / "broken-samples.json").write_text(json.dumps(verdicts, indent=2))
    return verdicts


@pytest.mark.parametrize("profile", sorted({p for p, *_ in BROKEN}))
def test_the_valid_original_is_accepted(broken_verdicts: dict[str, Json], profile: str) -> None:
    assert _errors(broken_verdicts[f"{profile}: valid"]) == []


@pytest.mark.parametrize(("profile", "defect"), [(p, d) for p, d, *_ in BROKEN])
def test_a_broken_resource_is_rejected(
    broken_verdicts: dict[str, Json], profile: str, defect: str
) -> None:
    assert _errors(broken_verdicts[f"{profile}: {defect}"]), "the validator accepted it"
