"""scope.deceased: no care plan for a patient recorded as deceased on the evaluation date (a death
dated after it does not count); the ``deceased`` operator on both sides."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta

import pytest
from painpath_testkit import AS_OF

from service.domain.assessment import Assessment
from service.domain.engine import evaluate
from service.domain.expressions import compile_expr
from service.domain.knowledge import KnowledgeBase
from service.domain.model import Demographics, Item, PatientRecord

ItemOf = Callable[..., Item]


def _assess(
    kb: KnowledgeBase, items: list[Item], *, deceased: bool, deceased_at: datetime | None
) -> Assessment:
    who = Demographics("Patient/p1", date(1970, 1, 1), "female", deceased, deceased_at)
    record = PatientRecord("Patient/p1", who, tuple(items))
    return evaluate(kb, record, as_of=AS_OF, profile="nice-ng59")


@pytest.mark.parametrize(
    ("deceased", "deceased_at", "in_scope"),
    [
        (True, None, False),  # deceasedBoolean true
        (True, AS_OF - timedelta(days=1), False),  # died before the evaluation date
        (True, AS_OF, False),  # on it
        (True, AS_OF + timedelta(days=1), True),  # after it: alive on the evaluation date
        (False, None, True),
    ],
)
def test_deceased_on_the_evaluation_date_is_out_of_scope(
    kb: KnowledgeBase, item: ItemOf, deceased: bool, deceased_at: datetime | None, in_scope: bool
) -> None:
    items = [item("sciatica"), item("saddle-anaesthesia")]
    assessment = _assess(kb, items, deceased=deceased, deceased_at=deceased_at)
    assert assessment.in_scope is in_scope
    if in_scope:
        assert [f.code for f in assessment.red_flags] == ["cauda-equina"]
        assert all(n.code != "out-of-scope-deceased" for n in assessment.notes)
    else:
        assert assessment.red_flags == ()
        assert assessment.proposals == ()
        (note,) = [n for n in assessment.notes if n.code == "out-of-scope-deceased"]
        assert [e.ref for e in note.evidence] == ["Patient/p1"]
        fired = [f.rule.id for f in assessment.firings if f.fired]
        assert fired == ["scope.deceased"]  # and evaluation stopped there


def test_the_deceased_operator_needs_a_boolean() -> None:
    assert compile_expr({"deceased": False}) is not None
    with pytest.raises(ValueError, match="deceased: needs true or false"):
        compile_expr({"deceased": "yes"})
