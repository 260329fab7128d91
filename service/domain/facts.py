"""Matching input items to knowledge concepts.

Codes match on (system, code) — exactly, or by category prefix for ICD-10(-CM) entries marked
``match = "prefix"``. Codes without a system or with an unknown system never match. A
CodeableConcept that carries only text is matched against each concept's keyword list (whole
words, skipping a keyword preceded by a negation cue such as "no" or "denies"); such facts are
marked lower-certainty in the trace. The compiled matcher is built once per knowledge base.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from service.domain.knowledge import Concept, KnowledgeBase
from service.domain.medications import IngredientIndex, RouteSplit
from service.domain.model import Code, Item, Origin, Polarity
from service.domain.trace import Evidence

__all__ = ["Fact", "Matcher", "OutOfRange"]

# Where a coding's display may stand in for an unknown code: findings and diagnoses. A procedure's
# or report's display is not read this way ("Screening for malignant neoplasm" is no cancer).
_WORDS_FOR_UNKNOWN_CODES = frozenset({Origin.CONDITION, Origin.OBSERVATION})


@dataclass(frozen=True, slots=True)
class Fact:
    """An item recognised as a concept."""

    concept: str
    item: Item
    code: Code | None
    lower_certainty: bool = False
    unit: str | None = None  # the concept's canonical unit, which ``item.value`` is now in
    how: str | None = None  # how a fact not read from a listed code was found, for the trace

    def evidence(self) -> Evidence:
        """The trace entry for this fact."""
        code = f"{self.code.system}|{self.code.code}" if self.code else None
        value = _describe(self.item)
        return Evidence(
            ref=self.item.ref,
            concept=self.concept,
            code=code,
            value=f"{value} {self.unit}" if self.unit and self.item.value is not None else value,
            lower_certainty=self.lower_certainty,
            how=self.how,
        )


@dataclass(frozen=True, slots=True)
class OutOfRange:
    """An item whose value PainPath does not use; it is ignored and reported. Its value lies
    outside the concept's range, or its unit is not understood (``unit``: the unit as sent), or
    the value cannot be read at all (``reason``: why; ``value`` is then None)."""

    ref: str
    concept: str
    value: float | None
    unit: str | None = None
    reason: str | None = None
    # the value said nothing (an "unknown" answer, a dataAbsentReason) rather than something
    # PainPath cannot read
    absent: bool = False


@dataclass(frozen=True, slots=True)
class _Unread:
    """Why an item's value cannot be used (``absent``: it says nothing, rather than something
    unreadable)."""

    why: str
    absent: bool = False


def _describe(item: Item) -> str:
    if item.value is not None:
        return f"{item.comparator or ''}{item.value:g}"
    return {Polarity.ABSENT: "false", Polarity.HISTORY: "history"}.get(item.polarity, "true")


class Matcher:
    """Compiled value sets of one knowledge base."""

    def __init__(self, kb: KnowledgeBase) -> None:
        systems = kb.valuesets.systems
        self._exact: dict[tuple[str, str], str] = {}
        self._prefix: dict[str, list[tuple[str, str]]] = {}
        # codes that stand for a number (Z3A.20 = 20 weeks), read when the input has no value
        self._values: dict[tuple[str, str], tuple[float, str | None]] = {}
        self._concepts: dict[str, Concept] = dict(kb.valuesets.concepts)
        self._parents = _parents(kb.valuesets.concepts)
        for name, concept in kb.valuesets.concepts.items():
            for entry in concept.codes:
                uri = systems[entry.system]
                if entry.match == "prefix":
                    self._prefix.setdefault(uri, []).append((entry.code, name))
                else:
                    self._exact[(uri, entry.code)] = name
                    if entry.value is not None:
                        self._values[(uri, entry.code)] = (entry.value, entry.comparator)
        for prefixes in self._prefix.values():
            prefixes.sort(key=lambda pair: (-len(pair[0]), pair[0]))
        self._keywords = [
            (name, re.compile(r"\b(" + "|".join(map(re.escape, c.keywords)) + r")\b"))
            for name, c in kb.valuesets.concepts.items()
            if c.keywords
        ]
        self._answers: dict[tuple[str, str], str | float] = {
            (systems[a.system], a.code): a.means for a in kb.valuesets.answers
        }
        self._absent_words = frozenset(kb.valuesets.absent_words)
        self._present_words = frozenset(kb.valuesets.present_words)
        self._units = {
            canonical: (dict(unit.convert), {k.lower(): v for k, v in unit.convert.items()})
            for canonical, unit in kb.valuesets.units.items()
        }
        self.ingredients = IngredientIndex(kb.medications, systems)
        self._routes: dict[str, tuple[re.Pattern[str], re.Pattern[str], RouteSplit]] = {
            name: (_words(split.local_words), _words(split.parenteral_words), split)
            for name, split in kb.medications.route_split.items()
        }
        self._excluded = {
            name: re.compile(r"\b(" + "|".join(map(re.escape, c.exclude)) + r")\b")
            for name, c in kb.valuesets.concepts.items()
            if c.exclude
        }
        cues = "|".join(map(re.escape, kb.rules_file.text.negation_cues))
        window = kb.rules_file.text.negation_window_words
        self._negated = re.compile(rf"\b({cues})\b(\W+\w+){{0,{window}}}\W*$")

    def concept_of(self, code: Code) -> str | None:
        """The concept a code belongs to, if any."""
        found = self._exact.get((code.system, code.code))
        if found is not None:
            return found
        for prefix, name in self._prefix.get(code.system, ()):
            if code.code.startswith(prefix):
                return name
        return None

    def match(self, item: Item) -> tuple[list[Fact], list[OutOfRange]]:
        """The facts an item yields, and any value rejected as out of range.

        Listed codes first; a medication also by ingredient (its codes, then the ingredient names
        and brands in its displays and text); when no code is known, the words (text and
        displays) against the concepts' keyword lists, as lower-certainty facts.
        """
        item, unread = self._read_value(item)
        found = {(name, code) for code in item.codes if (name := self.concept_of(code)) is not None}
        facts = [
            Fact(name, self._coded_value(item, code), code)
            for name, code in sorted(found, key=_order)
        ]
        if item.origin is Origin.MEDICATION:
            facts += self._by_ingredient(item)
        if not facts and (not item.codes or item.origin in _WORDS_FOR_UNKNOWN_CODES):
            how = "keyword in text" if not item.codes else "keyword in display (code not listed)"
            first = item.codes[0] if item.codes else None
            facts = [
                Fact(name, item, first, lower_certainty=True, how=how)
                for name in self._by_text(item)
            ]
        facts, unusable = self._usable(facts, unread)
        facts += [
            Fact(parent, item, fact.code, fact.lower_certainty, how=fact.how)
            for fact in list(facts)
            for parent in self._parents.get(fact.concept, ())
        ]
        kept, rejected = self._in_range(facts)
        return kept, unusable + rejected

    def _usable(
        self, facts: list[Fact], unread: _Unread | None
    ) -> tuple[list[Fact], list[OutOfRange]]:
        """The facts whose value fits their concept, and the rest as rejected values."""
        kept: list[Fact] = []
        rejected: list[OutOfRange] = []
        for fact in facts:
            reason = self._unusable(fact, unread)
            if reason is None:
                kept.append(fact)
                continue
            ref, concept = fact.item.ref, fact.concept
            rejected.append(OutOfRange(ref, concept, None, reason=reason.why, absent=reason.absent))
        return kept, rejected

    def _unusable(self, fact: Fact, unread: _Unread | None) -> _Unread | None:
        """Why an Observation's fact cannot be used: a finding (a yes/no concept, or one with no
        value type) whose answer says nothing or cannot be read, or that a yes/no concept got as
        a number; a score or measure (an integer or quantity concept) without a number."""
        item = fact.item
        if item.origin is not Origin.OBSERVATION:
            return None
        kind = self._concepts[fact.concept].value_type
        if kind in {"integer", "quantity"}:
            return (unread or _Unread("no numeric value")) if item.value is None else None
        if kind not in {None, "boolean"} or unread is not None:
            return unread
        if kind == "boolean" and item.value is not None:
            return _Unread("a number is not a yes/no answer")
        return None

    def _coded_value(self, item: Item, code: Code) -> Item:
        """The item with the number its code stands for, when it carries no value itself."""
        coded = self._values.get((code.system, code.code))
        if coded is None or item.value is not None:
            return item
        return replace(item, value=coded[0], comparator=coded[1])

    def _by_ingredient(self, item: Item) -> list[Fact]:
        """Drug-class facts of a medication's ingredients: listed ingredient codes, else the
        ingredient names and brands its displays or text spell (an RxNorm clinical drug's
        display names its ingredients); free text alone is lower certainty."""
        hits = [
            hit
            for code in item.codes
            if (hit := self.ingredients.by_code(code.system, code.code)) is not None
        ]
        if not hits and item.text:
            hits = self.ingredients.in_text([item.text])
        first = item.codes[0] if item.codes else None
        words = " | ".join(w for w in (item.text, item.dose and item.dose.route) if w).lower()
        return [
            Fact(
                concept, item, first, lower_certainty=not item.codes,
                how=f"ingredient {hit.ingredient} ({hit.how}){route}",
            )
            for hit in hits
            for cls in hit.classes
            for concept, route in self._by_route(cls, words)
        ]  # fmt: skip

    def _by_route(self, cls: str, words: str) -> list[tuple[str, str]]:
        """The concepts a drug class gives by the route its words state (``route_split``): a
        local route gives the local concept instead; an oral or unstated route adds the oral
        one. Each with what the trace says of the route."""
        split = self._routes.get(cls)
        if split is None:
            return [(cls, "")]
        local, parenteral, concepts = split
        if (found := local.search(words)) is not None:
            return [(concepts.local, f"; route: local ({found.group(1)})")]
        if (found := parenteral.search(words)) is not None:
            return [(cls, f"; route: parenteral ({found.group(1)})")]
        oral = "; route: oral or not stated"
        return [(cls, oral), (concepts.oral, oral)]

    def _read_value(self, item: Item) -> tuple[Item, _Unread | None]:
        """Apply a coded yes/no/number answer, or a negative word, to the item's value; and say
        why the value cannot be used, when it cannot: the Observation carries none (a
        ``dataAbsentReason``), its answer is "unknown", or its coded answer is none PainPath
        reads, spelled by no yes/no word and naming no concept of its own."""
        if item.value_absent is not None:
            return item, _Unread(f"no value ({item.value_absent})", absent=True)
        answers = (self._answers.get((c.system, c.code)) for c in item.value_codes)
        means = next((m for m in answers if m is not None), None)
        if means is None:
            words = (item.value_text or "").strip().lower().split()
            first = words[0].strip(".,;:") if words else None
            means = "no" if first in self._absent_words else None
            means = "yes" if first in self._present_words else means
        if means == "no":
            return replace(item, polarity=Polarity.ABSENT), None
        if isinstance(means, float | int):
            return replace(item, value=float(means)), None
        if means == "unknown":
            return item, _Unread("the answer is 'unknown'", absent=True)
        if means is None and item.value_codes and not any(map(self.concept_of, item.value_codes)):
            return item, _Unread("the coded answer is not one PainPath reads")
        return item, None

    def concepts_in_words(self, words: str) -> list[str]:
        """The concepts whose keywords the words name (negations and exclusions applied)."""
        return self._by_text(Item("", Origin.OBSERVATION, (), words))

    def _by_text(self, item: Item) -> list[str]:
        text = (item.text or "").lower()
        if not text:
            return []
        names = []
        for name, pattern in self._keywords:
            hit = pattern.search(text)
            if hit and not self._negated.search(text[: hit.start()]):
                excluded = self._excluded.get(name)
                if excluded is None or not excluded.search(text):
                    names.append(name)
        return names

    def _in_range(self, facts: list[Fact]) -> tuple[list[Fact], list[OutOfRange]]:
        kept: list[Fact] = []
        rejected: list[OutOfRange] = []
        seen: set[str] = set()
        for fact in facts:
            if fact.concept in seen:
                continue
            seen.add(fact.concept)
            concept = self._concepts[fact.concept]
            value = fact.item.value
            if value is not None and concept.unit is not None:
                factor = self.factor(concept.unit, fact.item.unit)
                if factor is None:
                    rejected.append(OutOfRange(fact.item.ref, fact.concept, value, fact.item.unit))
                    continue
                value *= factor
                item = replace(fact.item, value=value, unit=concept.unit)
                fact = replace(fact, item=item, unit=concept.unit)
            bounds = concept.range
            if bounds is not None and value is not None and not bounds[0] <= value <= bounds[1]:
                rejected.append(OutOfRange(fact.item.ref, fact.concept, value))
            else:
                kept.append(fact)
        return kept, rejected

    def factor(self, canonical: str, unit: str | None) -> float | None:
        """What a value in ``unit`` is multiplied by to read in ``canonical`` (no unit: 1);
        None when the unit is not one ``[units]`` converts into ``canonical``."""
        if unit is None:
            return 1.0
        exact, folded = self._units[canonical]
        found = exact.get(unit)
        return found if found is not None else folded.get(unit.lower())


def _words(words: list[str]) -> re.Pattern[str]:
    """One whole-word pattern over a word list, longest first, ignoring case."""
    ordered = sorted((w.lower() for w in words), key=lambda w: (-len(w), w))
    return re.compile(r"\b(" + "|".join(map(re.escape, ordered)) + r")\b")


def _order(pair: tuple[str, Code]) -> tuple[str, str, str]:
    return (pair[0], pair[1].system, pair[1].code)


def _parents(concepts: dict[str, Concept]) -> dict[str, tuple[str, ...]]:
    """Every concept's ancestors through ``includes`` (a chronic LBP code is also LBP)."""
    direct: dict[str, set[str]] = {}
    for name, concept in concepts.items():
        for child in concept.includes:
            direct.setdefault(child, set()).add(name)
    result: dict[str, tuple[str, ...]] = {}
    for name in concepts:
        seen: set[str] = set()
        stack = list(direct.get(name, ()))
        while stack:
            parent = stack.pop()
            if parent not in seen:
                seen.add(parent)
                stack.extend(direct.get(parent, ()))
        if seen:
            result[name] = tuple(sorted(seen))
    return result
