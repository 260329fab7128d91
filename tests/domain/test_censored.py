"""Censored readings (``valueQuantity.comparator``): a comparison holds only when it holds for
every value the reading stands for, so ``<15 mg/L`` never counts as a CRP above 10 mg/L and
``>15 mg/L`` always does."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from service.domain.assessment import Assessment
from service.domain.expressions import Reading
from service.domain.model import Item
from service.domain.trace import Evidence

EV = Evidence(ref="Observation/x", concept="crp")


@pytest.mark.parametrize(
    ("comparator", "value", "op", "threshold", "holds"),
    [
        (None, 11, "gt", 10, True), (None, 10, "gt", 10, False), (None, 10, "gte", 10, True),
        (None, 9, "lt", 10, True), (None, 10, "lt", 10, False), (None, 10, "lte", 10, True),
        (">", 10, "gt", 10, True), (">", 9, "gt", 10, False), (">=", 10, "gt", 10, False),
        (">=", 10, "gte", 10, True), (">", 9.9, "gte", 10, False), (">=", 11, "gt", 10, True),
        ("<", 10, "gt", 10, False), ("<", 15, "gt", 10, False), ("<=", 5, "gte", 1, False),
        ("<", 10, "lt", 10, True), ("<=", 10, "lt", 10, False), ("<=", 10, "lte", 10, True),
        ("<", 11, "lte", 10, False), (">", 1, "lt", 10, False), (">=", 1, "lte", 10, False),
    ],
)  # fmt: skip
def test_a_reading_holds_only_for_every_value_it_stands_for(
    comparator: str | None, value: float, op: str, threshold: float, holds: bool
) -> None:
    assert Reading(value, comparator, EV).holds(op, threshold) is holds


@pytest.mark.parametrize(
    ("later", "earlier", "above"),
    [
        ((5, None), (4, None), True), ((4, None), (4, None), False),
        ((4, ">"), (4, None), True), ((4, None), (4, "<"), True), ((4, ">="), (4, "<="), False),
        ((9, "<"), (1, None), False), ((5, None), (1, ">"), False), ((5, ">"), (5, "<="), True),
    ],
)  # fmt: skip
def test_rising_needs_every_later_value_above_every_earlier_one(
    later: tuple[float, str | None], earlier: tuple[float, str | None], above: bool
) -> None:
    assert Reading(later[0], later[1], EV).above(Reading(earlier[0], earlier[1], EV)) is above


@pytest.mark.parametrize(
    ("comparator", "value", "raised"),
    [(">", 15, True), (">", 10, True), (">=", 10, False), ("<", 15, False), ("<", 5, False),
     ("<=", 10, False), (None, 11, True)],
)  # fmt: skip
def test_censored_crp_and_the_infection_flag(
    assess: Callable[..., Assessment],
    item: Callable[..., Item],
    comparator: str | None,
    value: float,
    raised: bool,
) -> None:
    items = [
        item("low-back-pain"),
        item("immunosuppression"),
        item("crp", value=value, unit="mg/L", comparator=comparator),
    ]
    flags = assess(items).red_flags
    assert ("infection" in {f.code for f in flags}) is raised
    if raised and comparator:
        (flag,) = [f for f in flags if f.code == "infection"]
        assert f"{comparator}{value:g} mg/L" in {e.value for e in flag.evidence}
