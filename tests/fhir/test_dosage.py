"""Dosage as sent (R4 Dosage): every line, each with its own timing, sequence and
maxDosePerPeriod; nothing guessed."""

from __future__ import annotations

from typing import Any

from service.domain.model import Dose, DoseLine
from service.fhir.dosage import dose_of


def _line(amount: float | None = None, **extra: Any) -> dict[str, Any]:
    line: dict[str, Any] = dict(extra)
    if amount is not None:
        line["doseAndRate"] = [{"doseQuantity": {"value": amount}}]
    return line


def _daily(frequency: int = 1, period: float = 1, unit: str = "d") -> dict[str, Any]:
    return {"repeat": {"frequency": frequency, "period": period, "periodUnit": unit}}


def test_every_dosage_line_is_read_with_its_own_timing_and_sequence() -> None:
    request = {
        "resourceType": "MedicationRequest",
        "dosageInstruction": [
            _line(1, sequence=1, timing=_daily()),
            _line(2, sequence=2, timing={"code": {"coding": [{"code": "BID"}]}}),
            _line(1, timing=_daily(1, 6, "h")),
        ],
    }
    assert dose_of(request, None) == Dose(
        (DoseLine(1, None, 1, sequence=1), DoseLine(2, None, 2, sequence=2),
         DoseLine(1, None, 4)),
    )  # fmt: skip


def test_a_statement_reads_its_dosage_lines_and_the_mass_unit() -> None:
    statement = {
        "resourceType": "MedicationStatement",
        "dosage": [
            {"timing": _daily(2), "doseAndRate": [{"doseQuantity": {
                "value": 60, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}}]},
        ],
    }  # fmt: skip
    assert dose_of(statement, None) == Dose((DoseLine(60, "mg", 2),))


def test_max_dose_per_period_is_read_per_day() -> None:
    most = {"numerator": {"value": 8, "unit": "tablet"}, "denominator": {"value": 24, "code": "h"}}
    request = {"dosageInstruction": [_line(2, timing=_daily(1, 4, "h"), maxDosePerPeriod=most)]}
    assert dose_of(request, None) == Dose((DoseLine(2, None, 6, max_per_day=8, max_unit="tablet"),))


def test_an_unreadable_max_dose_per_period_is_not_guessed() -> None:
    bad = [
        {"numerator": {"value": 8}, "denominator": {"value": 1, "code": "fortnight"}},
        {"numerator": {"value": 8}, "denominator": {"value": 0, "code": "d"}},
        {"numerator": {"value": "8"}, "denominator": {"value": 1, "code": "d"}},
        {"numerator": {"value": 8}},
        "8 a day",
    ]
    for most in bad:
        (line,) = dose_of({"dosage": [_line(1, maxDosePerPeriod=most)]}, None).lines  # type: ignore[union-attr]
        assert (line.max_per_day, line.max_unit) == (None, None)


def test_no_dosage_or_text_only_lines_give_no_dose() -> None:
    assert dose_of({"dosage": [{"text": "as directed", "sequence": 1}]}, None) is None
    assert dose_of({"dosageInstruction": "twice a day"}, None) is None
    assert dose_of({}, None) is None


def test_the_route_and_form_words_are_read() -> None:
    statement = {
        "dosage": [{"route": {"coding": [{"display": "Cutaneous use"}], "text": "topical"}}],
    }
    medication = {"form": {"coding": [{"display": "Cream"}]}}
    dose = dose_of(statement, medication)
    assert dose is not None
    assert dose.route == "topical | Cutaneous use | Cream"
    assert dose_of({"dosage": [{"route": {"coding": [{"code": "x"}]}}]}, None) is None
