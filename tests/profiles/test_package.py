"""The package is generated from the knowledge files: committed = generated, complete, coherent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from profiles_testkit import PROFILES, SAMPLES, Json

from service.domain.knowledge import KnowledgeBase
from service.fhir import canonicals as cn
from tools.conformance_package.__main__ import main
from tools.conformance_package.base import BASE_TYPES, base_definition
from tools.conformance_package.package import (
    HAND_WRITTEN,
    build_package,
    check_package,
    write_package,
)
from tools.conformance_package.snapshot import SnapshotError, element, snapshot


@pytest.fixture(scope="module")
def built(kb: KnowledgeBase) -> dict[str, bytes]:
    """What the generator produces now."""
    return build_package(kb, root=PROFILES, samples=SAMPLES)


def test_committed_package_is_what_the_generator_builds(built: dict[str, bytes]) -> None:
    problems = check_package(built, PROFILES)
    assert not problems, (
        "fhir_profiles/ is out of date; run `python -m tools.conformance_package build`:\n  "
        + "\n  ".join(problems)
    )


def test_build_is_deterministic(kb: KnowledgeBase, built: dict[str, bytes]) -> None:
    assert build_package(kb, root=PROFILES, samples=SAMPLES) == built


def test_write_creates_replaces_and_removes_stale_files(
    built: dict[str, bytes], tmp_path: Path
) -> None:
    (tmp_path / HAND_WRITTEN).mkdir()
    (tmp_path / HAND_WRITTEN / "Questionnaire-x.json").write_text("{}")
    (tmp_path / "valuesets").mkdir()
    (tmp_path / "valuesets" / "ValueSet-gone.json").write_text("{}")
    write_package(built, tmp_path)
    assert check_package(built, tmp_path) == []
    assert not (tmp_path / "valuesets" / "ValueSet-gone.json").exists()
    assert (tmp_path / HAND_WRITTEN / "Questionnaire-x.json").exists()  # never touched
    first = sorted(built)[0]
    (tmp_path / first).write_text("{}")
    assert check_package(built, tmp_path) == [f"differs: {first}"]


def test_check_command_fails_on_a_stale_package(tmp_path: Path) -> None:
    for source in (PROFILES / HAND_WRITTEN).glob("*.json"):
        (tmp_path / HAND_WRITTEN).mkdir(exist_ok=True)
        (tmp_path / HAND_WRITTEN / source.name).write_bytes(source.read_bytes())
    argv = ["--root", str(tmp_path), "--samples", str(SAMPLES)]
    assert main(["check", *argv]) == 1
    assert main(["build", *argv]) == 0
    assert main(["check", *argv]) == 0


def test_package_manifest(kb: KnowledgeBase) -> None:
    manifest = json.loads((PROFILES / "package.json").read_bytes())
    assert manifest["name"] == "painpath.fhir"
    assert manifest["version"] == kb.version == kb.rules_file.version
    assert manifest["fhirVersions"] == ["4.0.1"]
    assert manifest["dependencies"] == {"hl7.fhir.r4.core": "4.0.1"}
    assert manifest["canonical"] == "https://painpath.dev/fhir"


def test_guide_lists_every_resource_of_the_package(package: dict[str, Json]) -> None:
    guide = package["ImplementationGuide/painpath.fhir"]
    listed = [r["reference"]["reference"] for r in guide["definition"]["resource"]]
    assert len(listed) == len(set(listed))
    assert set(listed) == set(package) - {"ImplementationGuide/painpath.fhir"}
    groups = {g["id"] for g in guide["definition"]["grouping"]}
    assert {r["groupingId"] for r in guide["definition"]["resource"]} == groups
    examples = [r for r in guide["definition"]["resource"] if r["groupingId"] == "examples"]
    assert {e.get("exampleCanonical") for e in examples} >= {
        p for profiles in cn.PROFILES.values() for p in profiles
    }


def test_every_canonical_resource_is_versioned_with_the_rule_set(
    package: dict[str, Json], kb: KnowledgeBase
) -> None:
    generated = {
        key: r
        for key, r in package.items()
        if "url" in r and r["resourceType"] not in {"Questionnaire", "CapabilityStatement"}
    }
    assert generated
    for key, resource in generated.items():
        assert resource["url"] == cn.canonical(*key.split("/")), key
        assert resource["version"] == kb.version, key


def test_profiles_are_where_the_emitter_points(package: dict[str, Json]) -> None:
    urls = {r["url"]: r for r in package.values() if r["resourceType"] == "StructureDefinition"}
    for rtype, profiles in cn.PROFILES.items():
        for url in profiles:
            assert urls[url]["type"] == rtype
            assert urls[url]["baseDefinition"] == f"http://hl7.org/fhir/StructureDefinition/{rtype}"
    assert cn.TRIAGE_OPERATION in {r.get("url") for r in package.values()}
    assert cn.PLAN_DEFINITION in {r.get("url") for r in package.values()}


# --- snapshot generation -----------------------------------------------------------------------


@pytest.mark.parametrize("rtype", BASE_TYPES)
def test_vendored_base_is_r4(rtype: str) -> None:
    definition = base_definition(rtype)
    assert definition["fhirVersion"] == "4.0.1"
    assert definition["url"] == f"http://hl7.org/fhir/StructureDefinition/{rtype}"
    assert definition["snapshot"]["element"][0]["id"] == rtype


def test_snapshot_keeps_base_order_and_places_slices_after_the_sliced_children() -> None:
    base = base_definition("Observation")["snapshot"]["element"]
    diff = [
        element("Observation.component", slicing={"rules": "open"}),
        element("Observation.component:a", min=1),
        element("Observation.component:a.code", short="a code"),
    ]
    ids = [e["id"] for e in snapshot(base, diff)]
    assert ids[: len(base)] == [e["id"] for e in base]  # component is the last base subtree
    assert ids[len(base)] == "Observation.component:a"
    assert ids[len(base) + 1 :] == [
        e["id"].replace("Observation.component", "Observation.component:a")
        for e in base
        if e["id"].startswith("Observation.component.")
    ]


def test_snapshot_merges_constraints_and_keeps_the_rest_of_the_base() -> None:
    base = base_definition("Observation")["snapshot"]["element"]
    [status] = [
        e
        for e in snapshot(base, [element("Observation.status", patternCode="final")])
        if e["id"] == "Observation.status"
    ]
    [original] = [e for e in base if e["id"] == "Observation.status"]
    assert status == {**original, "patternCode": "final"}


def test_snapshot_refuses_a_differential_element_that_constrains_nothing() -> None:
    base = base_definition("Observation")["snapshot"]["element"]
    with pytest.raises(SnapshotError, match=r"Observation\.stauts"):
        snapshot(base, [element("Observation.stauts", min=1)])


def test_every_profile_differential_element_is_in_its_snapshot(package: dict[str, Json]) -> None:
    for key, resource in package.items():
        if resource["resourceType"] != "StructureDefinition":
            continue
        snap = {e["id"]: e for e in resource["snapshot"]["element"]}
        for diff in resource["differential"]["element"]:
            merged = snap[diff["id"]]
            assert {k: merged[k] for k in diff} == diff, (key, diff["id"])
