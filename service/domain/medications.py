"""Medications by ingredient (``knowledge/medications.toml``): schema, start-up checks and the
index the matcher uses.

A medication is recognised by what it contains, whatever the coding: a listed ingredient code
(RxNorm ingredient, ATC), or an ingredient name or brand found as a whole word in a coding's
display or the concept's text. Each ingredient belongs to one or more drug classes, which are
concepts of ``valuesets.toml`` that the rules name (``opioid``, ``benzodiazepine``…).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from service.domain.errors import KnowledgeError

__all__ = [
    "Combination",
    "Ingredient",
    "IngredientHit",
    "IngredientIndex",
    "Medications",
    "MmeFactor",
    "RouteSplit",
    "SupplyWindows",
    "check_medications",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IngredientCode(_Strict):
    """A code that names the ingredient (RxNorm IN, ATC), with its grade and source."""

    system: str
    code: str
    display: str
    status: str
    source: str


class Ingredient(_Strict):
    """One ingredient: its names as displays spell them, brand names, codes and classes."""

    classes: list[str]
    names: list[str]
    brands: list[str] = Field(default_factory=list)
    codes: list[IngredientCode] = Field(default_factory=list)


class Combination(_Strict):
    """A product name that stands for several ingredients (BNF "co-" names such as co-codamol,
    or a combination brand), with the ingredients in the order its strengths are written
    ("Co-codamol 30mg/500mg": codeine 30 mg, paracetamol 500 mg), and the naming source."""

    names: list[str]
    ingredients: list[str]
    source: str


class RouteSplit(_Strict):
    """How the route splits a drug class (RULES §5 "oral corticosteroids"; a cream or an
    inhaler is no systemic corticosteroid): words of a local route (skin, eye, ear, nose, lung,
    rectum, joint) give the ``local`` concept instead of the class; words of a parenteral route
    keep the class; otherwise (oral, or no route stated) the class and the ``oral`` concept."""

    local: str
    oral: str
    local_words: list[str]
    parenteral_words: list[str]
    source: str


class MmeFactor(_Strict):
    """A CDC 2022 morphine-milligram-equivalent conversion factor."""

    factor: float = Field(gt=0)
    per: Literal["mg", "ug/h"]
    status: str
    source: str


class RenalBand(_Strict):
    """One renal-function band of a label's dosing table: the daily dose range that applies
    from ``egfr_from`` up to (not including) ``egfr_below`` (``inf``: no upper bound)."""

    egfr_from: float
    egfr_below: float
    daily_mg: tuple[float, float]


class RenalDosing(_Strict):
    """A drug's label dosing by renal function, with its verification grade and source."""

    status: str
    source: str
    measure: str  # what the label's bands are in (creatinine clearance), and how PainPath reads it
    bands: list[RenalBand]


class SupplyWindows(_Strict):
    """How long a medication known from its supply counts as current when the record gives no
    end: a dispense (days after its hand-over) and an administration that is over (hours after
    it was given), with their source."""

    dispensed_days: float = Field(gt=0)
    administered_hours: float = Field(gt=0)
    source: str


class Medications(_Strict):
    """``medications.toml``."""

    version: str
    opioid_class: str  # the class concept whose members' daily dose is counted in MME
    supply: SupplyWindows
    ingredients: dict[str, Ingredient]
    combinations: dict[str, Combination] = Field(default_factory=dict)
    route_split: dict[str, RouteSplit] = Field(default_factory=dict)
    mme: dict[str, MmeFactor] = Field(default_factory=dict)
    renal_dosing: dict[str, RenalDosing] = Field(default_factory=dict)


def check_medications(
    medications: Medications, *, concepts: set[str], systems: dict[str, str], taken: set[str]
) -> None:
    """Refuse classes that are not concepts, unknown systems and codes listed twice
    (``taken``: ``system|code`` of every valuesets.toml code)."""
    seen = set(taken)
    for name, ingredient in medications.ingredients.items():
        where = f"medications.toml ingredients.{name}"
        unknown = sorted(set(ingredient.classes) - concepts)
        if unknown or not ingredient.classes:
            raise KnowledgeError(f"{where}: classes must be valuesets.toml concepts: {unknown}")
        if not ingredient.names:
            raise KnowledgeError(f"{where}: names must not be empty")
        for code in ingredient.codes:
            if code.system not in systems:
                raise KnowledgeError(f"{where}: unknown system {code.system!r}")
            key = f"{code.system}|{code.code}"
            if key in seen:
                raise KnowledgeError(f"{where}: code {key} is listed twice")
            seen.add(key)
    _check_combinations(medications)
    _check_route_splits(medications, concepts)
    _check_tables(medications, concepts)


def _check_route_splits(medications: Medications, concepts: set[str]) -> None:
    """A route split belongs to a class some ingredient has, and names concepts."""
    classes = {c for i in medications.ingredients.values() for c in i.classes}
    for name, split in medications.route_split.items():
        where = f"medications.toml route_split.{name}"
        if name not in classes:
            raise KnowledgeError(f"{where}: not a class of any ingredient")
        unknown = sorted({split.local, split.oral} - concepts)
        if unknown:
            raise KnowledgeError(f"{where}: not valuesets.toml concepts: {unknown}")
        if not split.local_words or not split.parenteral_words:
            raise KnowledgeError(f"{where}: local_words and parenteral_words must not be empty")


def _check_combinations(medications: Medications) -> None:
    """A combination names two or more listed ingredients, by names no ingredient uses."""
    words = {w.lower() for i in medications.ingredients.values() for w in (*i.names, *i.brands)}
    for name, combination in medications.combinations.items():
        where = f"medications.toml combinations.{name}"
        unknown = sorted(set(combination.ingredients) - set(medications.ingredients))
        if unknown or len(set(combination.ingredients)) <= 1:
            raise KnowledgeError(f"{where}: needs two or more listed ingredients: {unknown}")
        if not combination.names:
            raise KnowledgeError(f"{where}: names must not be empty")
        taken = sorted(w for w in combination.names if w.lower() in words)
        if taken:
            raise KnowledgeError(f"{where}: {taken} already name an ingredient")


def _check_tables(medications: Medications, concepts: set[str]) -> None:
    """The MME factors belong to opioid ingredients; the renal dosing tables are whole."""
    if medications.opioid_class not in concepts:
        raise KnowledgeError("medications.toml: opioid_class must be a valuesets.toml concept")
    for name in medications.mme:
        member = medications.ingredients.get(name)
        if member is None or medications.opioid_class not in member.classes:
            raise KnowledgeError(f"medications.toml mme.{name}: not an opioid ingredient")
    for name, dosing in medications.renal_dosing.items():
        _check_renal_dosing(name, dosing, medications)


def _check_renal_dosing(name: str, dosing: RenalDosing, medications: Medications) -> None:
    """A renal dosing table belongs to an ingredient and its bands tile every eGFR from 0 up."""
    where = f"medications.toml renal_dosing.{name}"
    if name not in medications.ingredients:
        raise KnowledgeError(f"{where}: not an ingredient")
    bands = sorted(dosing.bands, key=lambda band: band.egfr_from)
    for low, high in pairwise(bands):
        if low.egfr_below != high.egfr_from:
            raise KnowledgeError(f"{where}: bands must meet without gap or overlap")
    if not bands or bands[0].egfr_from != 0 or bands[-1].egfr_below != math.inf:
        raise KnowledgeError(f"{where}: bands must cover every eGFR from 0 up")


@dataclass(frozen=True, slots=True)
class IngredientHit:
    """An ingredient found in a medication, and how (``code``, ``name`` or ``brand``)."""

    ingredient: str
    classes: tuple[str, ...]
    how: str


_TEXT_CACHE_LIMIT = 65_536  # distinct medication texts remembered; bounded for a long-lived server


class IngredientIndex:
    """Ingredient codes and one compiled whole-word pattern over every name and brand."""

    def __init__(self, medications: Medications, systems: dict[str, str]) -> None:
        self._by_code: dict[tuple[str, str], str] = {}
        # lower-case word -> the (ingredient, how) it names: one, or a combination's, in order
        self._by_word: dict[str, tuple[tuple[str, str], ...]] = {}
        self._classes = {n: tuple(i.classes) for n, i in medications.ingredients.items()}
        self._words = {n: (*i.names, *i.brands) for n, i in medications.ingredients.items()}
        for name, ingredient in medications.ingredients.items():
            for code in ingredient.codes:
                self._by_code[(systems[code.system], code.code)] = name
            for word in ingredient.names:
                self._by_word.setdefault(word.lower(), ((name, "name"),))
            for word in ingredient.brands:
                self._by_word.setdefault(word.lower(), ((name, "brand"),))
        for combination in medications.combinations.values():
            named = tuple((name, "combination") for name in combination.ingredients)
            for word in combination.names:
                self._by_word.setdefault(word.lower(), named)
        self._texts: dict[str, tuple[IngredientHit, ...]] = {}
        words = sorted(self._by_word, key=lambda w: (-len(w), w))  # longest first
        self._pattern = re.compile(r"\b(" + "|".join(map(re.escape, words)) + r")\b")

    def by_code(self, system: str, code: str) -> IngredientHit | None:
        """The ingredient a code names, if it is listed."""
        name = self._by_code.get((system, code))
        return None if name is None else IngredientHit(name, self._classes[name], "code")

    def words_of(self, ingredient: str) -> tuple[str, ...]:
        """The names and brands that spell an ingredient."""
        return self._words[ingredient]

    def mentions(self, text: str) -> list[tuple[int, int, tuple[str, ...]]]:
        """Where a lower-case text names ingredients: (start, end, the ingredients named, in
        the order a combination's name gives them)."""
        return [
            (match.start(), match.end(), tuple(name for name, _ in self._by_word[match.group(1)]))
            for match in self._pattern.finditer(text)
        ]

    def in_text(self, texts: Iterable[str]) -> list[IngredientHit]:
        """Every ingredient named (by name or brand) in the texts, once each, in text order."""
        found: dict[str, IngredientHit] = {}
        for text in texts:
            for hit in self._in_one(text):
                found.setdefault(hit.ingredient, hit)
        return list(found.values())

    def _in_one(self, text: str) -> tuple[IngredientHit, ...]:
        """The ingredients one text names, memoised: a record repeats its product names
        (hundreds of refills of the same clinical drug), and the pattern spans every name."""
        hits = self._texts.get(text)
        if hits is None:
            found: dict[str, IngredientHit] = {}
            for match in self._pattern.finditer(text.lower()):
                for name, how in self._by_word[match.group(1)]:
                    found.setdefault(name, IngredientHit(name, self._classes[name], how))
            hits = tuple(found.values())
            if len(self._texts) < _TEXT_CACHE_LIMIT:
                self._texts[text] = hits
        return hits
