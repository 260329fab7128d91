"""Terminology: one source of truth. The CodeSystems, ValueSets and ConceptMaps of the package say
exactly what the knowledge files say and what the code emits."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from profiles_testkit import PP, ROOT, Json

from service.cds_hooks.cards import OVERRIDE_SYSTEM, override_reasons
from service.domain.facts import Matcher
from service.domain.knowledge import KnowledgeBase
from service.domain.model import Code
from service.fhir.systems import cs
from tools.conformance_package.codesystems import OUTCOME_CODES

OUTPUT_VALUE_SETS = {"coded-answers", "service-request-code"}


def _code_system(package: dict[str, Json], name: str) -> dict[str, Json]:
    return {c["code"]: c for c in package[f"CodeSystem/{name}"]["concept"]}


def _value_set(package: dict[str, Json], url: str) -> Json:
    [found] = [r for r in package.values() if r["resourceType"] == "ValueSet" and r["url"] == url]
    return found


def _filter_matches(flt: Json, code: str) -> bool:
    if flt["op"] == "is-a":
        return code.startswith(flt["value"])
    return flt["op"] == "regex" and re.fullmatch(flt["value"], code) is not None


def _matches(package: dict[str, Json], include: Json, system: str, code: str) -> bool:
    nested = [_value_set(package, url) for url in include.get("valueSet", [])]
    if include.get("system") not in (None, system) or not all(
        _contains(package, value_set, system, code) for value_set in nested
    ):
        return False
    if "system" not in include:
        return bool(nested)
    if "concept" in include:
        return code in {c["code"] for c in include["concept"]}
    return all(_filter_matches(flt, code) for flt in include.get("filter", []))


def _contains(package: dict[str, Json], value_set: Json, system: str, code: str) -> bool:
    """ValueSet membership from the compose (R4 semantics; ICD is-a = the code prefix)."""
    compose = value_set["compose"]
    included = any(_matches(package, i, system, code) for i in compose["include"])
    excluded = any(_matches(package, i, system, code) for i in compose.get("exclude", []))
    return included and not excluded


# --- ValueSets = valuesets.toml ------------------------------------------------------------------


def _words_only(kb: KnowledgeBase) -> set[str]:
    """Concepts with no code of their own, no included concept and no coded ingredient: known by
    their words alone (a drug class of ingredient names), so with no ValueSet."""
    coded_classes = {
        name for i in kb.medications.ingredients.values() if i.codes for name in i.classes
    }
    return {
        name
        for name, c in kb.valuesets.concepts.items()
        if not c.codes and not c.includes and name not in coded_classes
    }


def test_a_value_set_per_concept_and_per_code_system(
    package: dict[str, Json], kb: KnowledgeBase
) -> None:
    value_sets = {r["id"] for r in package.values() if r["resourceType"] == "ValueSet"}
    code_systems = {r["id"] for r in package.values() if r["resourceType"] == "CodeSystem"}
    concepts = set(kb.valuesets.concepts) - _words_only(kb)
    assert value_sets == concepts | code_systems | OUTPUT_VALUE_SETS


def test_value_sets_hold_exactly_the_codes_of_valuesets_toml(
    package: dict[str, Json], kb: KnowledgeBase
) -> None:
    systems = kb.valuesets.systems
    words_only = _words_only(kb)
    for name, concept in kb.valuesets.concepts.items():
        if name in words_only:
            continue
        compose = package[f"ValueSet/{name}"]["compose"]
        listed = {
            (i["system"], c["code"], c["display"])
            for i in compose["include"]
            for c in i.get("concept", [])
        }
        filtered = {
            (i["system"], f["value"]) for i in compose["include"] for f in i.get("filter", [])
        }
        included = [u for i in compose["include"] for u in i.get("valueSet", [])]
        ingredient_codes = {
            (systems[c.system], c.code, c.display)
            for ingredient in kb.medications.ingredients.values()
            if name in ingredient.classes
            for c in ingredient.codes
        }
        assert (
            listed
            == {(systems[e.system], e.code, e.display) for e in concept.codes if e.match == "exact"}
            | ingredient_codes
        ), name
        prefixes = {(systems[e.system], e.code) for e in concept.codes if e.match == "prefix"}
        assert {(s, v.removesuffix(".*")) for s, v in filtered} == prefixes, name
        assert included == [f"{PP}/ValueSet/{child}" for child in concept.includes], name


def _probes(kb: KnowledgeBase) -> list[Code]:
    """Every code of valuesets.toml, plus codes under each prefix and a few unknown ones."""
    found = set()
    for concept in kb.valuesets.concepts.values():
        for entry in concept.codes:
            system = kb.valuesets.systems[entry.system]
            found.add(Code(system, entry.code))
            if entry.match == "prefix":
                found |= {Code(system, entry.code + suffix) for suffix in ("9", "0.1", "1XA")}
    found |= {Code("http://hl7.org/fhir/sid/icd-10-cm", c) for c in ("C50.911", "M54.2", "Z86.0")}
    found.add(Code("http://snomed.info/sct", "22298006"))
    for ingredient in kb.medications.ingredients.values():
        found |= {Code(kb.valuesets.systems[c.system], c.code) for c in ingredient.codes}
    return sorted(found, key=lambda c: (c.system, c.code))


def test_value_set_membership_is_what_the_engine_matches(
    package: dict[str, Json], kb: KnowledgeBase
) -> None:
    matcher = Matcher(kb)
    parents = {
        name: {p for p, c in kb.valuesets.concepts.items() if name in c.includes}
        for name in kb.valuesets.concepts
    }
    disagreements = []
    for code in _probes(kb):
        owner = matcher.concept_of(code)
        expected = {owner, *parents[owner]} if owner else set()
        hit = matcher.ingredients.by_code(code.system, code.code)
        for drug_class in hit.classes if hit else ():
            expected |= {drug_class, *parents[drug_class]}
        got = {
            name
            for name in kb.valuesets.concepts
            if f"ValueSet/{name}" in package
            and _contains(package, package[f"ValueSet/{name}"], code.system, code.code)
        }
        if got != expected:
            disagreements.append(
                f"{code.system}|{code.code}: engine {sorted(expected)}, ValueSets {sorted(got)}"
            )
    assert not disagreements, "\n".join(disagreements)


def test_coded_answers_value_set(package: dict[str, Json], kb: KnowledgeBase) -> None:
    # one include per code system (LOINC answer lists; SNOMED CT "Not pregnant", rule set 2027.1)
    includes = package["ValueSet/coded-answers"]["compose"]["include"]
    got = {(i["system"], c["code"]) for i in includes for c in i["concept"]}
    systems = kb.valuesets.systems
    assert got == {(systems[a.system], a.code) for a in kb.valuesets.answers}
    assert len({i["system"] for i in includes}) == len(includes)


# --- CodeSystems = what the code emits -----------------------------------------------------------


def test_painpath_code_system_is_every_local_input_and_output_code(
    package: dict[str, Json], kb: KnowledgeBase
) -> None:
    inputs = {
        e.code for c in kb.valuesets.concepts.values() for e in c.codes if e.system == "painpath"
    }
    assert set(_code_system(package, "painpath")) == inputs | set(kb.catalogue.displays["painpath"])


def test_catalogue_code_systems(package: dict[str, Json], kb: KnowledgeBase) -> None:
    cat = kb.catalogue
    assert set(_code_system(package, "service")) == set(cat.services)
    assert set(_code_system(package, "red-flag")) == set(cat.red_flags)
    assert set(_code_system(package, "care-activity")) == set(cat.activities)
    assert set(_code_system(package, "painpath-meta")) == set(cat.profiles)
    names = ("pain-type", "neuropathic-certainty", "treatment-stage", "eligibility")
    for name in (*names, "cds-override-reason"):
        assert {k: v["display"] for k, v in _code_system(package, name).items()} == cat.displays[
            name
        ]


def test_cds_override_reasons_are_the_published_code_system(
    package: dict[str, Json], kb: KnowledgeBase
) -> None:
    published = package["CodeSystem/cds-override-reason"]
    assert published["url"] == OVERRIDE_SYSTEM
    assert [
        {"system": OVERRIDE_SYSTEM, "code": c["code"], "display": c["display"]}
        for c in published["concept"]
    ] == override_reasons(kb)


def _detail_literals(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.keyword)
            and node.arg == "detail"
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            found.add(node.value.value)
    return found


def test_outcome_code_system_has_every_detail_code_the_code_reports(
    package: dict[str, Json], kb: KnowledgeBase
) -> None:
    literals = set().union(*(_detail_literals(p) for p in (ROOT / "service").rglob("*.py")))
    literals.discard(None)
    codes = set(_code_system(package, "outcome"))
    assert literals <= codes, (
        f"add to OUTCOME_CODES (tools/conformance_package/codesystems.py): "
        f"{sorted(literals - codes)}"
    )
    assert codes == set(kb.catalogue.notes) | set(OUTCOME_CODES)
    assert set(OUTCOME_CODES) <= literals, "OUTCOME_CODES lists a code nothing reports"


def test_instrument_answer_codes(package: dict[str, Json], kb: KnowledgeBase) -> None:
    mapped = {
        code
        for i in kb.instruments["instruments"].values()
        for item in i["items"]
        for code in item.get("map", {})
    }
    answers = _code_system(package, "instrument-answers")
    assert set(answers) == mapped
    offered = {
        (o["valueCoding"]["code"], o["valueCoding"].get("display"))
        for r in package.values()
        if r["resourceType"] == "Questionnaire"
        for item in r["item"]
        for o in item.get("answerOption", [])
        if o.get("valueCoding", {}).get("system") == cs("instrument-answers")
    }
    assert offered
    assert {(code, answers[code]["display"]) for code, _ in offered} == offered


# --- ConceptMaps ---------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["service", "care-activity"])
def test_concept_maps_carry_only_verified_catalogue_codes(
    package: dict[str, Json], kb: KnowledgeBase, source: str
) -> None:
    catalogue = kb.catalogue.services if source == "service" else kb.catalogue.activities
    maps = [
        r
        for r in package.values()
        if r["resourceType"] == "ConceptMap" and r["group"][0]["source"] == cs(source)
    ]
    assert maps
    for concept_map in maps:
        [group] = concept_map["group"]
        for element in group["element"]:
            entry = catalogue[element["code"]]
            standard = {
                (c.system, c.code, c.display)
                for c in (entry.code, getattr(entry, "category", None))
                if c and c.status.startswith("VERIFIED")
            }
            for target in element["target"]:
                assert (group["target"], target["code"], target["display"]) in standard
    mapped = {e["code"] for m in maps for e in m["group"][0]["element"]}
    unmapped = {code for code, entry in catalogue.items() if entry.code is None}
    assert not mapped & unmapped
