"""One display per code: across the whole of ``fhir_profiles/`` (ValueSets, CodeSystems,
ConceptMaps, examples) and every golden output (tests/golden/expected), a (system, code) pair is
never given two different displays. A ValueSet naming a code by its fully specified name while the
outputs use the preferred term was the defect this guards against."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from profiles_testkit import ROOT

PACKAGE = ROOT / "fhir_profiles"
GOLDEN = ROOT / "tests" / "golden" / "expected"

Displays = dict[tuple[str, str], dict[str, set[str]]]


def _collect(node: object, where: str, system: str | None, into: Displays) -> None:
    """Every ``{system?, code, display}`` (a Coding, a ValueSet ``compose`` concept under its
    include's system, a CodeSystem concept under the CodeSystem's url)."""
    if isinstance(node, list):
        for item in node:
            _collect(item, where, system, into)
        return
    if not isinstance(node, dict):
        return
    if node.get("resourceType") == "CodeSystem":
        system = node.get("url")
    elif isinstance(node.get("system"), str):
        system = node["system"]
    code, display = node.get("code"), node.get("display")
    if system and isinstance(code, str) and isinstance(display, str):
        into[(system, code)][display].add(where)
    for key, value in node.items():
        if key != "resourceType":
            _collect(value, where, system, into)


def _displays(*folders: Path) -> Displays:
    found: Displays = defaultdict(lambda: defaultdict(set))
    for folder in folders:
        for path in sorted(folder.rglob("*.json")):
            _collect(json.loads(path.read_text(encoding="utf-8")), path.name, None, found)
    return found


def _conflicts(found: Displays) -> dict[str, list[str]]:
    return {
        f"{system}|{code}": sorted(displays)
        for (system, code), displays in found.items()
        if len(displays) > 1
    }


def test_every_code_has_one_display_across_the_package_and_the_outputs() -> None:
    found = _displays(PACKAGE, GOLDEN)
    assert len(found) > 500  # the walk reached the package's terminology and the outputs
    assert ("http://snomed.info/sct", "308447003") in found
    assert _conflicts(found) == {}


def test_a_second_display_is_caught(tmp_path: Path) -> None:
    """The check itself: a ValueSet using the fully specified name beside an output's preferred
    term is reported."""
    (tmp_path / "vs.json").write_text(
        json.dumps(
            {
                "resourceType": "ValueSet",
                "compose": {
                    "include": [
                        {
                            "system": "http://snomed.info/sct",
                            "concept": [
                                {
                                    "code": "229065009",
                                    "display": "Exercise therapy (regime/therapy)",
                                }
                            ],
                        }
                    ]
                },
            }
        )
    )
    (tmp_path / "out.json").write_text(
        json.dumps(
            {
                "resourceType": "CarePlan",
                "activity": [
                    {
                        "detail": {
                            "code": {
                                "coding": [
                                    {
                                        "system": "http://snomed.info/sct",
                                        "code": "229065009",
                                        "display": "Exercise therapy",
                                    }
                                ]
                            }
                        }
                    }
                ],
            }
        )
    )
    assert _conflicts(_displays(tmp_path)) == {
        "http://snomed.info/sct|229065009": [
            "Exercise therapy",
            "Exercise therapy (regime/therapy)",
        ]
    }
