"""RULES §0: a Condition recorded as current whose abatement is on or before the evaluation date
counts only as history, and the note ``condition-abated`` names it (FHIR R4 con-4)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from service.domain.assessment import Assessment
from service.domain.expressions import References, compile_expr
from service.domain.model import Item, Origin, Polarity

Assess = Callable[..., Assessment]
ItemOf = Callable[..., Item]


@pytest.mark.parametrize(
    ("abated_days_ago", "polarity", "expected"),
    [
        (None, Polarity.PRESENT, (True, False)),  # (flagged, noted)
        (-10, Polarity.PRESENT, (True, False)),  # abates after the evaluation date
        (0, Polarity.PRESENT, (False, True)),  # on it
        (400, Polarity.PRESENT, (False, True)),
        (400, Polarity.HISTORY, (False, False)),  # resolved, as con-4 wants: nothing to report
    ],
)
def test_an_abated_condition_is_history_and_reported(
    assess: Assess,
    item: ItemOf,
    abated_days_ago: float | None,
    polarity: Polarity,
    expected: tuple[bool, bool],
) -> None:
    flagged, noted = expected
    ces = item(
        "cauda-equina-syndrome", origin=Origin.CONDITION, polarity=polarity, days_ago=600,
        until_days_ago=abated_days_ago,
    )  # fmt: skip
    assessment = assess([item("low-back-pain", origin=Origin.CONDITION), ces])
    assert ("cauda-equina" in {f.code for f in assessment.red_flags}) is flagged
    notes = {note.code: note for note in assessment.notes}
    assert ("condition-abated" in notes) is noted
    if noted:
        assert {e.ref for e in notes["condition-abated"].evidence} == {ces.ref}


def test_the_operator_takes_only_true() -> None:
    assert compile_expr({"condition_abated": True}).references() == References()
    with pytest.raises(ValueError, match="needs true"):
        compile_expr({"condition_abated": False})
