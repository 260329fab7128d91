"""RULES §3: long-term corticosteroids read from the medication list (a current systemic
corticosteroid started at least ``long_term_steroid_min_months`` before the evaluation date);
RULES §7: a medication whose period ended is not current, and is reported."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from painpath_testkit import AS_OF

from service.domain.assessment import Assessment
from service.domain.model import Dose, Item, Origin, Polarity, Supply

Assess = Callable[..., Assessment]
ItemOf = Callable[..., Item]


def _drug(
    text: str,
    days_ago: float | None,
    *,
    ended_days_ago: float | None = None,
    route: str | None = None,
    polarity: Polarity = Polarity.PRESENT,
) -> Item:
    when = AS_OF - timedelta(days=days_ago) if days_ago is not None else None
    until = AS_OF - timedelta(days=ended_days_ago) if ended_days_ago is not None else None
    dose = Dose(route=route) if route else None
    return Item(
        "MedicationStatement/steroid", Origin.MEDICATION, (), text, polarity, when=when,
        until=until, dose=dose,
    )  # fmt: skip


def _flags(assessment: Assessment) -> set[str]:
    return {flag.code for flag in assessment.red_flags}


_PRED = "Prednisolone 10mg tablets"
_THREE_MONTHS = 3 * 365.25 / 12  # days


@pytest.mark.parametrize(
    ("steroid", "flagged"),
    [
        (_drug(_PRED, 540), True),                    # since 18 months
        (_drug(_PRED, _THREE_MONTHS + 1), True),      # just over 3 months
        (_drug(_PRED, _THREE_MONTHS - 1), False),     # just under: not yet long-term
        (_drug(_PRED, None), False),                  # no documented start
        (_drug("Hydrocortisone 1% cream", 540), False),     # local route: not systemic
        (_drug(_PRED, 540, route="Rectal use"), False),
        (_drug(_PRED, 540, ended_days_ago=30), False),      # ended: not current
        (_drug(_PRED, 540, polarity=Polarity.HISTORY), False),
        (_drug("Dexamethasone 2mg/ml solution for injection", 200), True),  # systemic
    ],
)  # fmt: skip
def test_long_term_systemic_corticosteroid_is_a_risk_factor(
    assess: Assess, item: ItemOf, steroid: Item, flagged: bool
) -> None:
    fracture = assess([item("low-back-pain"), item("minor-trauma"), steroid], age=56)
    infection = assess([item("low-back-pain"), item("fever"), steroid], age=56)
    assert ("fracture" in _flags(fracture)) is flagged
    assert ("infection" in _flags(infection)) is flagged


def test_the_trace_names_the_steroid_and_its_start(assess: Assess, item: ItemOf) -> None:
    assessment = assess([item("minor-trauma"), _drug(_PRED, 540)], age=56)
    (flag,) = assessment.red_flags
    (steroid,) = [e for e in flag.evidence if e.concept == "systemic-corticosteroid"]
    start = (AS_OF - timedelta(days=540)).date().isoformat()
    assert (steroid.ref, steroid.value) == ("MedicationStatement/steroid", f"since {start}")


def _benzo(ended_days_ago: float | None) -> Item:
    until = AS_OF - timedelta(days=ended_days_ago) if ended_days_ago is not None else None
    return Item(
        "MedicationStatement/b", Origin.MEDICATION, (), "Diazepam 5mg tablets",
        when=AS_OF - timedelta(days=400), until=until,
    )  # fmt: skip


_OPIOID = Item("MedicationStatement/o", Origin.MEDICATION, (), "Oxycodone 5mg capsules")


@pytest.mark.parametrize(
    ("ended_days_ago", "current"), [(None, True), (-30, True), (0.5, False), (300, False)]
)
def test_a_medication_whose_period_ended_is_not_current_and_is_reported(
    assess: Assess, ended_days_ago: float | None, current: bool
) -> None:
    assessment = assess([_OPIOID, _benzo(ended_days_ago)])
    issues = {issue.code for issue in assessment.medication_issues}
    notes = {note.code: note for note in assessment.notes}
    assert ("opioid-benzodiazepine" in issues) is current
    assert ("medication-period-ended" in notes) is not current
    if not current:
        (evidence,) = {e.ref for e in notes["medication-period-ended"].evidence}
        assert evidence == "MedicationStatement/b"


def _supplied(supply: Supply, hours_ago: float, *, days: float | None = None) -> Item:
    when = AS_OF - timedelta(hours=hours_ago)
    until = when + timedelta(days=days) if days is not None else None
    return Item(
        "MedicationDispense/b", Origin.MEDICATION, (), "Diazepam 5mg tablets", when=when,
        until=until, supply=supply,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("benzo", "current"),
    [
        (_supplied(Supply.DISPENSED, 29 * 24), True),  # [supply] dispensed_days: 30
        (_supplied(Supply.DISPENSED, 31 * 24), False),
        (_supplied(Supply.DISPENSED, 31 * 24, days=60), True),  # its own days' supply
        (_supplied(Supply.DISPENSED, 10 * 24, days=7), False),
        (_supplied(Supply.ADMINISTERED, 47), True),     # [supply] administered_hours: 48
        (_supplied(Supply.ADMINISTERED, 49), False),
    ],
)  # fmt: skip
def test_a_supplied_medication_is_current_for_its_window_and_then_silently_history(
    assess: Assess, benzo: Item, current: bool
) -> None:
    assessment = assess([_OPIOID, benzo])
    issues = {issue.code for issue in assessment.medication_issues}
    assert ("opioid-benzodiazepine" in issues) is current
    assert "medication-period-ended" not in {note.code for note in assessment.notes}
