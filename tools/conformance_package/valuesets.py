"""The PainPath ValueSets (https://hl7.org/fhir/R4/valueset.html).

- One per valuesets.toml concept (id = the concept name): the codes the engine matches for it;
  none for a concept recognised by its words alone (a drug class known only by ingredient names).
  Exact codes are ``compose.include.concept`` lists, one include per system. An ICD category
  matched by prefix (``match = "prefix"``) is an include with the filter ``concept is-a <code>``:
  in the ICD-10 and ICD-10-CM hierarchies that is the category and every code below it, which is
  what the prefix matches. A prefix that is not a code itself (``C``, the malignant-neoplasm
  block) uses ``code regex 'C.*'``. Codes under a prefix that the engine assigns to another
  concept (an exact code wins, then the longest prefix) are in ``compose.exclude``. A concept that
  ``includes`` others includes their ValueSets.
- ``coded-answers``: the coded yes/no/number answers valuesets.toml ``answers`` lists.
- One per PainPath CodeSystem (same id): all of its codes (the targets of required bindings).
- ``service-request-code``: the ServiceRequest.code codings the catalogue gives each service.
"""

from __future__ import annotations

import re

from service.domain.knowledge import CodeEntry, Concept
from service.domain.medications import IngredientCode
from service.fhir.canonicals import value_set
from service.fhir.systems import cs
from tools.conformance_package.common import Json, Meta

__all__ = ["prefix_filter", "value_sets"]

Entry = tuple[str, CodeEntry, str]  # system URI, entry, concept name


def prefix_filter(code: str) -> Json:
    """The compose filter standing for the engine's ICD prefix match of ``code``."""
    if len(code) >= 3:
        return {"property": "concept", "op": "is-a", "value": code}
    return {"property": "code", "op": "regex", "value": re.escape(code) + ".*"}


def _descendants(concepts: dict[str, Concept], name: str) -> set[str]:
    found: set[str] = set()
    stack = list(concepts[name].includes)
    while stack:
        child = stack.pop()
        if child not in found:
            found.add(child)
            stack.extend(concepts[child].includes)
    return found


def _group(entries: list[tuple[str, Json]]) -> list[Json]:
    """``(system, concept)`` pairs -> one include per system, in first-seen order."""
    by_system: dict[str, list[Json]] = {}
    for system, concept in entries:
        by_system.setdefault(system, []).append(concept)
    return [{"system": system, "concept": concepts} for system, concepts in by_system.items()]


class _Composer:
    def __init__(self, meta: Meta) -> None:
        self.concepts = meta.kb.valuesets.concepts
        self.systems = meta.kb.valuesets.systems
        self.medications = meta.kb.medications.ingredients
        self.entries: list[Entry] = [
            (self.systems[e.system], e, name) for name, c in self.concepts.items() for e in c.codes
        ]

    def compose(self, name: str) -> Json:
        concept = self.concepts[name]
        exact = [e for e in concept.codes if e.match == "exact"]
        pairs = [(self.systems[e.system], {"code": e.code, "display": e.display}) for e in exact]
        pairs += [
            (self.systems[c.system], {"code": c.code, "display": c.display})
            for c in self._ingredient_codes(name)
        ]
        include = _group(pairs)
        include += [
            {"system": self.systems[e.system], "filter": [prefix_filter(e.code)]}
            for e in concept.codes
            if e.match == "prefix"
        ]
        include += [{"valueSet": [value_set(child)]} for child in concept.includes]
        compose: Json = {"include": include}
        exclude = self._exclude(name, concept)
        if exclude:
            compose["exclude"] = exclude
        return compose

    def _ingredient_codes(self, name: str) -> list[IngredientCode]:
        """The codes of the ingredients in drug class ``name`` (medications.toml)."""
        return [
            code
            for ingredient in self.medications.values()
            if name in ingredient.classes
            for code in ingredient.codes
        ]

    def ingredient_names(self, name: str) -> list[str]:
        """The ingredients in drug class ``name``, by their first name."""
        return [i.names[0] for i in self.medications.values() if name in i.classes]

    def _exclude(self, name: str, concept: Concept) -> list[Json]:
        mine = {name} | _descendants(self.concepts, name)
        exact: list[tuple[str, Json]] = []
        narrower: list[Json] = []
        for prefix in (e for e in concept.codes if e.match == "prefix"):
            system = self.systems[prefix.system]
            for uri, other, owner in self.entries:
                if uri != system or owner in mine or not other.code.startswith(prefix.code):
                    continue
                if other.match == "exact":
                    exact.append((uri, {"code": other.code, "display": other.display}))
                elif len(other.code) > len(prefix.code):
                    narrower.append({"system": uri, "filter": [prefix_filter(other.code)]})
        return _group(exact) + narrower

    def description(self, name: str) -> str:
        concept = self.concepts[name]
        text = f"{concept.title}. The codes PainPath matches for valuesets.toml concept `{name}`."
        if concept.value_type:
            bounds = f" {concept.range[0]:g} to {concept.range[1]:g}" if concept.range else ""
            text += f" Value: {concept.value_type}{bounds}."
        ingredients = self.ingredient_names(name)
        if ingredients:
            text += (
                " A medication is a member by ingredient (medications.toml), whatever its coding:"
                " the ingredient codes listed here, or one of these ingredients named in a"
                f" coding's display or the text: {', '.join(ingredients)}."
            )
        if any(e.match == "prefix" for e in concept.codes):
            text += (
                " ICD categories are matched by prefix: filter `concept is-a` = the category and"
                " every code below it (`code regex` where the prefix is not a code itself);"
                " codes PainPath assigns to a more specific concept are excluded."
            )
        return text


def _vs(meta: Meta, rid: str, title: str, description: str, compose: Json) -> Json:
    resource = meta.header("ValueSet", rid, title=title, description=description)
    resource.update(immutable=False, compose=compose)
    return resource


def _service_request_codes(meta: Meta) -> Json:
    entries = []
    for code, service in meta.kb.catalogue.services.items():
        if service.code:
            entries.append(
                (service.code.system, {"code": service.code.code, "display": service.code.display})
            )
        else:
            entries.append((cs("service"), {"code": code, "display": service.title}))
    return {"include": _group(entries)}


def value_sets(meta: Meta, code_systems: list[Json]) -> list[Json]:
    """Every PainPath ValueSet: input concepts, coded answers, CodeSystems, service codes."""
    composer = _Composer(meta)
    found = [
        _vs(meta, name, concept.title, composer.description(name), compose)
        for name, concept in meta.kb.valuesets.concepts.items()
        if (compose := composer.compose(name))["include"]  # a concept known by words alone: none
    ]
    answers = [
        (meta.kb.valuesets.systems[a.system], {"code": a.code, "display": a.display})
        for a in meta.kb.valuesets.answers
    ]
    found.append(
        _vs(
            meta,
            "coded-answers",
            "Coded answers",
            "Coded values read as yes, no or a number (valuesets.toml `answers`).",
            {"include": _group(answers)},
        )
    )
    found += [
        _vs(
            meta,
            system["id"],
            system["title"],
            f"All codes of {system['url']}.",
            {"include": [{"system": system["url"]}]},
        )
        for system in code_systems
    ]
    found.append(
        _vs(
            meta,
            "service-request-code",
            "PainPath ServiceRequest codes",
            "The code of each PainPath service: its verified SNOMED CT or LOINC code, or "
            "the PainPath service code where none is verified (catalogue.toml).",
            _service_request_codes(meta),
        )
    )
    ids = [resource["id"] for resource in found]
    clashes = sorted({rid for rid in ids if ids.count(rid) > 1})
    if clashes:
        raise ValueError(f"ValueSet ids used twice (concept name = CodeSystem id?): {clashes}")
    return found
