"""A medication's dosage read from the wire: ``MedicationRequest.dosageInstruction``,
``MedicationDispense.dosageInstruction`` or ``MedicationStatement.dosage`` (R4 Dosage,
https://hl7.org/fhir/R4/dosage.html), and ``MedicationAdministration.dosage`` (one
administration: its ``dose`` and ``route``, with no timing, so never a daily dose by itself).

Every dosage line is read, each with its own ``sequence`` (the engine adds lines that apply
together and takes the highest of sequential ones). A line gives the amount per administration
(``doseAndRate.doseQuantity``, or the high end of ``doseRange``: the most the prescription
allows), the administrations a day: ``timing.repeat`` (``frequency`` - or ``frequencyMax``, the
most that may be taken - per ``period`` ``periodUnit``) or a ``timing.code`` from the HL7 timing
abbreviations (BID, TID…), and ``maxDosePerPeriod`` as the most allowed a day. A referenced
Medication's ``ingredient.strength`` gives the strengths; each line's ``route`` and the
Medication's ``form`` give the route words (a corticosteroid cream is not a systemic one).
Nothing is guessed: what the dosage does not say stays None; the engine reports a dose it
cannot compute.
"""

from __future__ import annotations

from service.domain.model import Dose, DoseLine
from service.fhir.types import Json

__all__ = ["days_supplied", "dose_of"]

# Administrations a day for the HL7 timing abbreviations that state one
# (http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation, the FHIR timing-abbreviation set).
_TIMING_CODES = {
    "QD": 1.0, "QOD": 0.5, "BID": 2.0, "TID": 3.0, "QID": 4.0, "AM": 1.0, "PM": 1.0,
    "Q4H": 6.0, "Q6H": 4.0, "Q8H": 3.0, "Q12H": 2.0,
}  # fmt: skip
_DAYS = {"s": 1 / 86400, "min": 1 / 1440, "h": 1 / 24, "d": 1.0, "wk": 7.0, "mo": 30.4375}
# a days' supply is often written with a unit text instead of a UCUM code
_DAY_WORDS = {
    "day": 1.0,
    "days": 1.0,
    "week": 7.0,
    "weeks": 7.0,
    "month": 30.4375,
    "months": 30.4375,
}


def dose_of(resource: Json, medication: Json | None) -> Dose | None:
    """The dosage of a medication resource, or None when it gives none."""
    found = resource.get("dosageInstruction") or resource.get("dosage")
    if isinstance(found, dict):  # MedicationAdministration.dosage: what was given, once
        found = [_administered(found)]
    found = found if isinstance(found, list) else []
    lines = tuple(_line(line) for line in found if isinstance(line, dict))
    strengths = _strengths(medication)
    concepts = [line.get("route") for line in found or () if isinstance(line, dict)]
    if isinstance(medication, dict):
        concepts.append(medication.get("form"))
    route = " | ".join(w for concept in concepts for w in _words(concept)) or None
    empty = all(line == DoseLine(sequence=line.sequence) for line in lines)
    if empty and not strengths and route is None:
        return None
    return Dose(lines, strengths, route)


def _administered(dosage: Json) -> Json:
    """A MedicationAdministration's ``dosage`` as a Dosage line: its dose and route (no timing:
    one administration says nothing of how often)."""
    line: Json = {"route": dosage.get("route")}
    if isinstance(dosage.get("dose"), dict):
        line["doseAndRate"] = [{"doseQuantity": dosage["dose"]}]
    return line


def days_supplied(quantity: object) -> float | None:
    """``MedicationDispense.daysSupply`` in days (a Quantity in days, weeks or months; no unit
    means days), or None when it is missing, not positive or in another unit."""
    if not isinstance(quantity, dict):
        return None
    value = quantity.get("value")
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        return None
    unit = quantity.get("code") or quantity.get("unit") or "d"
    days = _DAYS.get(str(unit)) or _DAY_WORDS.get(str(unit).strip().lower())
    return float(value) * days if days else None


def _words(concept: object) -> list[str]:
    """A CodeableConcept's text and coding displays (a route or dose form, as words)."""
    if not isinstance(concept, dict):
        return []
    codings = concept.get("coding")
    words = [concept.get("text")] + [
        c.get("display")
        for c in (codings if isinstance(codings, list) else ())
        if isinstance(c, dict)
    ]
    return [w for w in words if isinstance(w, str) and w.strip()]


def _line(line: Json) -> DoseLine:
    amount, unit = _amount(line)
    sequence = line.get("sequence")
    most, most_unit = _max_per_day(line.get("maxDosePerPeriod"))
    return DoseLine(
        amount, unit, _per_day(line.get("timing")),
        sequence if isinstance(sequence, int) and not isinstance(sequence, bool) else None,
        most, most_unit,
    )  # fmt: skip


def _max_per_day(ratio: object) -> tuple[float | None, str | None]:
    """``maxDosePerPeriod`` (e.g. 8 tablets per 24 h) as the most a day, with its unit."""
    if not isinstance(ratio, dict):
        return None, None
    numerator, denominator = ratio.get("numerator"), ratio.get("denominator")
    if not isinstance(numerator, dict) or not isinstance(denominator, dict):
        return None, None
    value, period = numerator.get("value"), denominator.get("value")
    days = _DAYS.get(str(denominator.get("code") or denominator.get("unit")))
    if not isinstance(value, int | float) or not isinstance(period, int | float) or not days:
        return None, None
    if period <= 0:
        return None, None
    unit = numerator.get("code") or numerator.get("unit")
    return float(value) / (period * days), str(unit) if unit else None


def _amount(line: Json) -> tuple[float | None, str | None]:
    for rate in line.get("doseAndRate") or ():
        if not isinstance(rate, dict):
            continue
        quantity = rate.get("doseQuantity")
        dose_range = rate.get("doseRange")
        if not isinstance(quantity, dict) and isinstance(dose_range, dict):
            quantity = dose_range.get("high") or dose_range.get("low")  # the most allowed
        if isinstance(quantity, dict) and isinstance(quantity.get("value"), int | float):
            unit = quantity.get("code") or quantity.get("unit")
            return float(quantity["value"]), str(unit) if unit else None
    return None, None


def _per_day(timing: object) -> float | None:
    if not isinstance(timing, dict):
        return None
    repeat = timing.get("repeat")
    if isinstance(repeat, dict):
        frequency = repeat.get("frequencyMax") or repeat.get("frequency") or 1
        period = repeat.get("period")
        days = _DAYS.get(str(repeat.get("periodUnit")))
        if isinstance(period, int | float) and period > 0 and days and isinstance(frequency, int):
            return frequency / (period * days)
    for coding in (timing.get("code") or {}).get("coding") or ():
        if isinstance(coding, dict) and str(coding.get("code")).upper() in _TIMING_CODES:
            return _TIMING_CODES[str(coding["code"]).upper()]
    return None


def _strengths(medication: Json | None) -> tuple[tuple[str, float, str], ...]:
    """``(ingredient text, value, unit)`` of each ``Medication.ingredient.strength``
    (numerator per one unit of the denominator, e.g. 5 mg per tablet)."""
    if not isinstance(medication, dict):
        return ()
    found = []
    for ingredient in medication.get("ingredient") or ():
        if not isinstance(ingredient, dict):
            continue
        concept = ingredient.get("itemCodeableConcept") or {}
        words = [concept.get("text"), *(c.get("display") for c in concept.get("coding") or ())]
        name = " ".join(w for w in words if isinstance(w, str))
        numerator = (ingredient.get("strength") or {}).get("numerator") or {}
        value, unit = numerator.get("value"), numerator.get("code") or numerator.get("unit")
        if name and isinstance(value, int | float) and isinstance(unit, str):
            found.append((name, float(value), unit))
    return tuple(found)
