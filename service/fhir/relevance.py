"""Which input resources the rules can use: the fast path validates only those with the models.

A real record (``Patient/$everything``) is mostly vital signs, labs and encounters that no rule
reads. The R4B models cost ~0.2 ms per resource (measured with ``make bench``), so only the
resources that can become facts are model-validated; the rest are checked by the R4 JSON Schema
alone.

The test is deliberately conservative: a Condition, Observation, Procedure or DiagnosticReport is
relevant when any concept the readers take from it (``code``, ``component.code``,
``valueCodeableConcept``, a report's ``conclusionCode``) has a code that belongs to a knowledge
concept, when one of those concepts is text-only (text is matched by keyword), or when no code is
known but a coding's display or the text names a concept's keyword (the matcher reads such words
as lower-certainty evidence: rule set 2027.1). A MedicationRequest, MedicationStatement,
MedicationDispense or MedicationAdministration coded inline is relevant when a code names a
concept or a listed ingredient, or its text or a display spells an ingredient, a brand or a
concept's keyword (the three ways the matcher recognises a drug); one given by
``medicationReference`` (or with no readable concept) is always relevant, since the Medication
it names decides. Every other type the readers use (Patient, Medication,
QuestionnaireResponse, CarePlan, ...) is always relevant. An entry left out here is still
schema-validated and still reported as not recognised (``unrecognised``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from service.domain.facts import Matcher
from service.domain.model import Code
from service.fhir.systems import normalise_code, normalise_system

__all__ = ["Relevance"]

# the elements the readers (``ingest._EXTRACTORS``) take concepts from, per filtered type; a
# list-valued element (``conclusionCode``) holds several concepts
_CONCEPT_KEYS = {
    "Condition": ("code",),
    "Observation": ("code", "valueCodeableConcept"),
    "Procedure": ("code",),
    "DiagnosticReport": ("code", "conclusionCode"),
}
_MEDICATION_TYPES = frozenset(
    {"MedicationRequest", "MedicationStatement", "MedicationDispense", "MedicationAdministration"}
)
_CACHE_LIMIT = 65_536  # distinct (system, code) pairs remembered; bounded for a long-lived server


class Relevance:
    """``relevance(resource)``: True when the rules might use the resource."""

    def __init__(self, matcher: Matcher) -> None:
        self._matcher = matcher
        self._known: dict[tuple[str, str], bool] = {}
        self._words: dict[str, bool] = {}
        self._medicines: dict[tuple[str, str], bool] = {}
        self._medicine_words: dict[str, bool] = {}

    def __call__(self, resource: dict[str, Any]) -> bool:
        # Runs on every entry of every request: one flat loop, no generators.
        rtype = resource.get("resourceType")
        keys = _CONCEPT_KEYS.get(rtype)  # type: ignore[arg-type]
        if keys is None:
            return rtype not in _MEDICATION_TYPES or self._medication_relevant(
                resource.get("medicationCodeableConcept")
            )
        return self._names_concept(resource, keys)

    def _names_concept(self, resource: dict[str, Any], keys: tuple[str, ...]) -> bool:
        """True when a concept the readers take (``keys``, on the resource or a component) is
        relevant."""
        components = resource.get("component")
        holders = [resource, *components] if isinstance(components, list) else [resource]
        for holder in holders:
            if type(holder) is not dict:
                continue
            for key in keys:
                concept = holder.get(key)
                if type(concept) is dict:
                    if self._concept_relevant(concept):
                        return True
                elif type(concept) is list:
                    for inner in concept:
                        if type(inner) is dict and self._concept_relevant(inner):
                            return True
        return False

    def _concept_relevant(self, concept: dict[str, Any]) -> bool:
        codings = concept.get("coding")
        if not codings:
            return bool(concept.get("text"))  # text-only: the keyword matcher reads it
        if not isinstance(codings, list):
            return False
        if _any_code(codings, self._known, self._concept_coded):
            return True
        text = _words(concept, codings)
        return bool(text) and _remembered(self._words, text, self._concept_worded)

    def _medication_relevant(self, concept: object) -> bool:
        """True unless an inline medication concept names no concept and no listed ingredient,
        by code or by word (``Matcher.match``: codes, then ingredients, then keywords)."""
        if type(concept) is not dict:
            return True  # by reference (the Medication decides), or nothing to read: kept
        codings = concept.get("coding")
        codings = codings if type(codings) is list else []
        if _any_code(codings, self._medicines, self._medicine_coded):
            return True
        text = _words(concept, codings)
        return bool(text) and _remembered(self._medicine_words, text, self._medicine_worded)

    # the decisions the caches remember (a record repeats its codes and texts)
    def _concept_coded(self, key: tuple[str, str]) -> bool:
        return self._matcher.concept_of(_code(*key)) is not None

    def _concept_worded(self, text: str) -> bool:
        return bool(self._matcher.concepts_in_words(text))

    def _medicine_coded(self, key: tuple[str, str]) -> bool:
        code = _code(*key)
        return (
            self._matcher.concept_of(code) is not None
            or self._matcher.ingredients.by_code(code.system, code.code) is not None
        )

    def _medicine_worded(self, text: str) -> bool:
        matcher = self._matcher
        return bool(matcher.ingredients.in_text([text]) or matcher.concepts_in_words(text))


K = TypeVar("K")


def _remembered(cache: dict[K, bool], key: K, decide: Callable[[K], bool]) -> bool:
    """``decide(key)``, remembered in ``cache`` up to ``_CACHE_LIMIT`` keys."""
    found = cache.get(key)
    return _remember(cache, key, decide(key)) if found is None else found


def _remember(cache: dict[K, bool], key: K, found: bool) -> bool:
    if len(cache) < _CACHE_LIMIT:
        cache[key] = found
    return found


def _any_code(
    codings: list[Any],
    cache: dict[tuple[str, str], bool],
    coded: Callable[[tuple[str, str]], bool],
) -> bool:
    """True when a coding with a system and a code is one ``coded`` knows (remembered). The
    hottest loop of a request: the cache is read here, ``coded`` runs only on a miss."""
    for coding in codings:
        if type(coding) is dict:
            system, code = coding.get("system"), coding.get("code")
            if system and code:
                key = (str(system), str(code))
                found = cache.get(key)
                if found is None:
                    found = _remember(cache, key, coded(key))
                if found:
                    return True
    return False


def _words(concept: dict[str, Any], codings: list[Any]) -> str:
    """The concept's text and its codings' displays, as the matcher reads them."""
    words = [concept.get("text"), *(c.get("display") for c in codings if type(c) is dict)]
    return " | ".join(w for w in words if isinstance(w, str) and w)


def _code(system: str, code: str) -> Code:
    uri = normalise_system(system)
    return Code(uri, normalise_code(uri, code))
