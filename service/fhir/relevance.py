"""Which input resources the rules can use: the fast path validates only those with the models.

A real record (``Patient/$everything``) is mostly vital signs, labs and encounters that no rule
reads. The R4B models cost ~0.2 ms per resource (reference/TOOLS.md Q3), so only the resources
that can become facts are model-validated; the rest are checked by the R4 JSON Schema alone.

The test is deliberately conservative: a Condition or Observation is relevant when any code it
carries (``code``, ``component.code``, ``valueCodeableConcept``) belongs to a knowledge concept,
or when one of those concepts is text-only (text is matched by keyword). Every other type the
readers use (Patient, Procedure, medications, QuestionnaireResponse, ...) is always relevant.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from service.domain.facts import Matcher
from service.domain.model import Code
from service.fhir.systems import normalise_code, normalise_system

__all__ = ["Relevance"]

_FILTERED_TYPES = frozenset({"Condition", "Observation"})
_CONCEPT_KEYS = ("code", "valueCodeableConcept")
_CACHE_LIMIT = 65_536  # distinct (system, code) pairs remembered; bounded for a long-lived server


class Relevance:
    """``relevance(resource)``: True when the rules might use the resource."""

    def __init__(self, matcher: Matcher) -> None:
        self._matcher = matcher
        self._known: dict[tuple[str, str], bool] = {}

    def __call__(self, resource: dict[str, Any]) -> bool:
        if resource.get("resourceType") not in _FILTERED_TYPES:
            return True
        return any(self._concept_relevant(concept) for concept in _concepts(resource))

    def _concept_relevant(self, concept: Any) -> bool:
        if not isinstance(concept, dict):
            return False
        codings = concept.get("coding")
        if not codings:
            return bool(concept.get("text"))  # text-only: the keyword matcher reads it
        for coding in codings:
            if (
                isinstance(coding, dict)
                and coding.get("system")
                and coding.get("code")
                and self._coded(str(coding["system"]), str(coding["code"]))
            ):
                return True
        return False

    def _coded(self, system: str, code: str) -> bool:
        """True when the code belongs to a concept; memoised (a record repeats its codes)."""
        found = self._known.get((system, code))
        if found is None:
            uri = normalise_system(system)
            found = self._matcher.concept_of(Code(uri, normalise_code(uri, code))) is not None
            if len(self._known) < _CACHE_LIMIT:
                self._known[(system, code)] = found
        return found


def _concepts(resource: dict[str, Any]) -> Iterator[Any]:
    """Every CodeableConcept the readers turn into item codes."""
    holders = [resource, *resource.get("component", ())]
    for holder in holders:
        if isinstance(holder, dict):
            for key in _CONCEPT_KEYS:
                if key in holder:
                    yield holder[key]
