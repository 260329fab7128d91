"""A medication's dosage read from the wire: ``MedicationRequest.dosageInstruction`` or
``MedicationStatement.dosage`` (R4 Dosage, https://hl7.org/fhir/R4/dosage.html).

The first dosage line gives the amount per administration (``doseAndRate.doseQuantity``, or
the high end of ``doseRange``: the most the prescription allows) and the administrations a day:
``timing.repeat`` (``frequency`` - or ``frequencyMax``, the most that may be taken - per
``period`` ``periodUnit``) or a ``timing.code`` from the HL7 timing abbreviations (BID,
TID…). A referenced Medication's ``ingredient.strength`` gives the strengths. Nothing is
guessed: what the dosage does not say stays None; the engine reports a dose it cannot compute.
"""

from __future__ import annotations

from service.domain.model import Dose
from service.fhir.types import Json

__all__ = ["dose_of"]

# Administrations a day for the HL7 timing abbreviations that state one
# (http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation, the FHIR timing-abbreviation set).
_TIMING_CODES = {
    "QD": 1.0, "QOD": 0.5, "BID": 2.0, "TID": 3.0, "QID": 4.0, "AM": 1.0, "PM": 1.0,
    "Q4H": 6.0, "Q6H": 4.0, "Q8H": 3.0, "Q12H": 2.0,
}  # fmt: skip
_DAYS = {"s": 1 / 86400, "min": 1 / 1440, "h": 1 / 24, "d": 1.0, "wk": 7.0, "mo": 30.4375}


def dose_of(resource: Json, medication: Json | None) -> Dose | None:
    """The dosage of a MedicationRequest/MedicationStatement, or None when it gives none."""
    lines = resource.get("dosageInstruction") or resource.get("dosage")
    line = lines[0] if isinstance(lines, list) and lines and isinstance(lines[0], dict) else {}
    amount, unit = _amount(line)
    per_day = _per_day(line.get("timing"))
    strengths = _strengths(medication)
    if amount is None and per_day is None and not strengths:
        return None
    return Dose(amount, unit, per_day, strengths)


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
