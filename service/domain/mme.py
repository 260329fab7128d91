"""Daily opioid dose in morphine milligram equivalents (MME), RULES §7 (CDC 2022).

For each current opioid medication: the strength of each opioid ingredient (the Medication's
``ingredient.strength``, else the strength its display states, e.g. "Oxycodone Hydrochloride
5 MG / Acetaminophen 325 MG Oral Tablet" or "72 HR Fentanyl 0.025 MG/HR Transdermal System"),
times the amount per administration and the administrations a day, times the ingredient's CDC 2022
factor (``medications.toml [mme]``); a dose stated as a mass (60 mg) is the opioid's own
amount when the product holds no other known ingredient. A transdermal system counts by its
delivery rate (µg/h) times the patches worn. Dosage lines that apply together are added;
sequential lines (a taper) count at their highest day. What the record does not state is never
guessed: the dose is "not computable", with the reason, and the rules report it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from service.domain.medications import IngredientIndex, MmeFactor
from service.domain.model import Dose, DoseLine, Item

__all__ = ["OpioidDose", "opioid_doses"]

_MASS = r"mg|mcg|ug|µg|micrograms?|milligrams?|grams?|g"
# A strength in a display: "30mg", "0.025 MG/HR", "25micrograms/hour", "10mg/5ml", "0.05 MG/MG";
# "30mg/500mg" is two strengths (a number before the second unit), not a ratio.
_STRENGTH = re.compile(
    rf"(\d+(?:\.\d+)?)\s*({_MASS})\b"
    rf"(?:\s*/\s*(?:(\d+(?:\.\d+)?)\s*)?(ml|hr|h|hour)\b|\s*/\s*({_MASS})\b)?"
)
_UNIT = {"mg": "mg", "milligram": "mg", "milligrams": "mg", "g": "mg", "gram": "mg",
         "grams": "mg", "mcg": "ug", "ug": "ug", "µg": "ug", "microgram": "ug",
         "micrograms": "ug"}  # fmt: skip
_WORD = re.compile(r"[^\W\d_]")
_NO_STRENGTH = "no strength stated"
_UNCLEAR = "strength stated but not attributable to the ingredient unambiguously"
_MICRO = {"mcg", "ug", "µg"}
# A dose stated as a mass of the ingredient itself (UCUM mg, g, ug; the common spellings beside
# them), in milligrams per unit.
_MASS_MG = {"mg": 1.0, "g": 1000.0, "ug": 0.001, "mcg": 0.001, "µg": 0.001, "milligram": 1.0,
            "milligrams": 1.0, "gram": 1000.0, "grams": 1000.0, "microgram": 0.001,
            "micrograms": 0.001}  # fmt: skip
_COUNTS = {"1", "{tbl}", "{tablet}", "tablet", "tablets", "tab", "tabs", "{capsule}", "capsule",
           "capsules", "cap", "caps", "patch", "patches", "{patch}", "{spray}", "film", "lozenge",
           "suppository", "{puff}"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class OpioidDose:
    """One opioid ingredient of one medication entry: its MME a day, or why not; ``note``: how
    several dosage lines were read."""

    ref: str
    ingredient: str
    mme: float | None
    why: str | None = None
    note: str | None = None

    def describe(self) -> str:
        """For the trace: ``oxycodone 45 MME/day`` or ``fentanyl: not computable (…)``."""
        if self.mme is None:
            return f"{self.ingredient}: MME not computable ({self.why})"
        note = f" ({self.note})" if self.note else ""
        return f"{self.ingredient} {self.mme:g} MME/day{note}"


def opioid_doses(
    item: Item, index: IngredientIndex, factors: dict[str, MmeFactor], opioid: str
) -> list[OpioidDose]:
    """The opioid ingredients of a medication item, each with its daily MME or the reason it
    cannot be computed (``opioid``: the class concept name)."""
    hits = [hit for code in item.codes if (hit := index.by_code(code.system, code.code))]
    if not hits and item.text:
        hits = index.in_text([item.text])
    found = []
    for hit in hits:
        if opioid not in hit.classes:
            continue
        factor = factors.get(hit.ingredient)
        if factor is None:
            found.append(OpioidDose(item.ref, hit.ingredient, None, "no CDC 2022 factor"))
            continue
        found.append(_dose(item, hit.ingredient, index, factor, alone=len(hits) == 1))
    return found


@dataclass(frozen=True, slots=True)
class _Reading:
    """What one medication entry says of one opioid ingredient, for its dosage lines."""

    strength: tuple[float, str] | None
    missing: str  # why there is no strength
    factor: MmeFactor
    alone: bool  # no other known ingredient: a mass dose is this opioid's own amount


def _dose(
    item: Item, ingredient: str, index: IngredientIndex, factor: MmeFactor, *, alone: bool
) -> OpioidDose:
    """Lines with the same (or no) ``sequence`` are taken together and added; lines with
    different sequences follow one another (a taper): the highest day counts, and says so."""
    dose = item.dose or Dose()
    lines = dose.lines or (DoseLine(),)
    strength = _strength(dose, item.text or "", ingredient, index)
    if isinstance(strength, str):
        reading = _Reading(None, strength, factor, alone)
    else:
        reading = _Reading(strength, "", factor, alone)
    groups: dict[int | None, float] = {}
    for number, line in enumerate(lines, 1):
        amount, why = _line_amount(line, reading)
        if amount is None:
            why = why if len(lines) == 1 else f"dosage line {number}: {why}"
            return OpioidDose(item.ref, ingredient, None, why)
        groups[line.sequence] = groups.get(line.sequence, 0.0) + amount
    sequence, best = max(groups.items(), key=lambda pair: pair[1])
    note = None
    if len(groups) > 1:
        note = f"highest of {len(groups)} sequential dosage lines: sequence {sequence}"
    elif len(lines) > 1:
        note = f"{len(lines)} dosage lines taken together"
    return OpioidDose(item.ref, ingredient, round(best * factor.factor, 1), note=note)


def _line_amount(line: DoseLine, reading: _Reading) -> tuple[float | None, str]:
    """One line's daily amount in the factor's unit (mg a day, or µg/h worn), or why not; a
    line's ``maxDosePerPeriod`` caps it, and stands for it when the line gives no timing."""
    mass = _MASS_MG.get((line.unit or "").lower())
    if mass is not None:  # a mass: the opioid's own amount only in a one-ingredient product
        amount, why = _mass_dose(line, mass, reading)
    elif reading.strength is None:
        return None, reading.missing
    elif reading.factor.per == "ug/h":
        return _transdermal(line, *reading.strength)
    else:
        amount, why = _oral(line, *reading.strength)
    most = _most_per_day(line, reading)
    if most is None:
        return amount, why
    return (most, "") if amount is None else (min(amount, most), "")


def _most_per_day(line: DoseLine, reading: _Reading) -> float | None:
    """mg a day that ``maxDosePerPeriod`` allows: a mass of this opioid, or a count of units."""
    if line.max_per_day is None or reading.factor.per != "mg":
        return None
    mass = _MASS_MG.get((line.max_unit or "").lower())
    if mass is not None:
        return line.max_per_day * mass if reading.alone else None
    if not _counted(line.max_unit) or reading.strength is None:
        return None
    value, unit = reading.strength
    if "/" in unit:
        return None
    return line.max_per_day * value * (1 / 1000 if unit in _MICRO else 1)


def _counted(unit: str | None) -> bool:
    return unit is None or unit.lower() in _COUNTS


def _mass_dose(line: DoseLine, mass: float, reading: _Reading) -> tuple[float | None, str]:
    """mg a day of a dose given as a mass (60 mg): the opioid's own amount, when the product
    holds no other ingredient PainPath knows (in a combination it could be either one's)."""
    if reading.factor.per != "mg":
        return None, "a mass dose, not a transdermal delivery rate"
    if not reading.alone:
        return None, "a mass dose of a product of several ingredients"
    if line.amount is None:
        return None, "no amount per dose"
    if line.per_day is None:
        return None, "no frequency"
    return line.amount * mass * line.per_day, ""


def _transdermal(line: DoseLine, value: float, unit: str) -> tuple[float | None, str]:
    """µg/h delivered: the system's rate times the patches worn."""
    if not unit.endswith(("/hr", "/h")):
        return None, "not a transdermal system"
    rate = value * (1 if unit.split("/")[0] in _MICRO else 1000)
    patches = line.amount if line.amount is not None and _counted(line.unit) else 1.0
    return rate * patches, ""


def _oral(line: DoseLine, value: float, unit: str) -> tuple[float | None, str]:
    """mg a day: strength times the amount per dose times the doses a day."""
    if "/" in unit:  # per hour, per mL or per mg: a liquid needs the volume, not read
        return None, "strength per hour or per mL"
    if line.amount is None or not _counted(line.unit):
        return None, "no amount per dose"
    if line.per_day is None:
        return None, "no frequency"
    mg = value / 1000 if unit in _MICRO else value
    return mg * line.amount * line.per_day, ""


def _strength(
    dose: Dose, text: str, ingredient: str, index: IngredientIndex
) -> tuple[float, str] | str:
    """The ingredient's strength: from the Medication's ingredient list, else from the text,
    where each strength belongs to the ingredient named before it ("Paracetamol 500mg/Codeine
    phosphate 30mg") or, after several names or a combination's name, to each in turn
    ("Co-codamol 30mg/500mg"). A strength that cannot be given to one ingredient is never
    guessed: the reason is returned instead."""
    names = [w.lower() for w in index.words_of(ingredient)]
    for label, value, unit in dose.strengths:
        if any(n in label.lower() for n in names):
            return value, unit.lower()
    unclear = False
    for part in text.lower().split(" | "):
        found = _attributed(part, index)
        if ingredient in found:
            strength = found[ingredient]
            if strength is not None:
                return strength
            unclear = True
    return _UNCLEAR if unclear else _NO_STRENGTH


def _attributed(part: str, index: IngredientIndex) -> dict[str, tuple[float, str] | None]:
    """Each ingredient named in one text and its strength (None: stated, but not attributable
    to it alone: "Percocet 5 MG/325 MG" names one ingredient and two strengths)."""
    events: list[tuple[int, int, tuple[str, ...], tuple[float, str] | None]]
    events = [(start, end, names, None) for start, end, names in index.mentions(part)]
    events += [(m.start(), m.end(), (), _read_strength(m)) for m in _STRENGTH.finditer(part)]
    events.sort(key=lambda event: event[0])
    found: dict[str, tuple[float, str] | None] = {}
    named: list[str] = []
    strengths: list[tuple[float, str]] = []
    closed, end = False, 0
    for start, stop, names, strength in events:
        gap, end = part[end:start], stop
        if strength is None:  # a name: a new run of names after a run of strengths
            if strengths:
                _settle(found, named, strengths)
                named, strengths, closed = [], [], False
            named += [n for n in names if n not in found and n not in named]
        elif named:
            # a word between two strengths names something PainPath does not know
            # ("Oxycodone 5 mg / Naloxone 2.5 mg"): what follows is not this run's
            closed = closed or bool(strengths and _WORD.search(gap))
            if not closed:
                strengths.append(strength)
    _settle(found, named, strengths)
    return found


def _settle(
    found: dict[str, tuple[float, str] | None],
    named: list[str],
    strengths: list[tuple[float, str]],
) -> None:
    """Give a run of names its run of strengths, one each in order; when the counts differ,
    the strengths belong to none of them unambiguously."""
    if not strengths:
        return
    if len(named) == len(strengths):
        found.update(zip(named, strengths, strict=True))
    else:
        found.update(dict.fromkeys(named))


def _read_strength(match: re.Match[str]) -> tuple[float, str]:
    """A strength as (value, unit): the unit mg or ug, per hour ("mg/h"), per mL (a liquid:
    "10mg/5ml" is 2 "mg/ml") or per mass (a concentration, "mg/mg")."""
    value, unit = float(match.group(1)), _UNIT[match.group(2)]
    scale = 1000.0 if match.group(2) in {"g", "gram", "grams"} else 1.0
    over = match.group(4) or match.group(5)
    if over is None:
        return value * scale, unit
    per = float(match.group(3)) if match.group(3) else 1.0
    kind = "h" if over in {"hr", "h", "hour"} else "ml" if over == "ml" else "mg"
    return value * scale / per, f"{unit}/{kind}"
