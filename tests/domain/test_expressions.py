"""The rule language (service/knowledge/README.md): operators no shipped rule uses yet, on both
sides, and every kind of malformed expression rejected at compile time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from painpath_testkit import AS_OF, make_record

from service.domain.engine import Evaluation, match_facts
from service.domain.expressions import compile_expr
from service.domain.facts import Matcher
from service.domain.knowledge import KnowledgeBase
from service.domain.model import Demographics, Item, PatientRecord, Polarity

ItemOf = Callable[..., Item]


def _context(kb: KnowledgeBase, record: PatientRecord) -> Evaluation:
    """The engine's working state for a record before any rule ran (what rules are asked in)."""
    matcher = Matcher(kb)
    facts, rejected = match_facts(matcher, record.items)
    return Evaluation(kb, record, AS_OF, "nice-ng59", facts, rejected, matcher.ingredients)


def _holds(kb: KnowledgeBase, expression: dict[str, Any], record: PatientRecord) -> bool:
    return compile_expr(expression).evaluate(_context(kb, record)).ok


@pytest.mark.parametrize(
    ("polarity", "expected"),
    [(Polarity.ABSENT, True), (Polarity.PRESENT, False), (Polarity.HISTORY, False), (None, False)],
)
def test_negative_holds_only_for_a_screened_absence(
    kb: KnowledgeBase, item: ItemOf, polarity: Polarity | None, expected: bool
) -> None:
    """``negative``: screened and found absent; present, past or never screened is not."""
    items = [] if polarity is None else [item("fever", polarity=polarity)]
    assert _holds(kb, {"negative": "fever"}, make_record(items)) is expected


def test_negative_cites_the_screen(kb: KnowledgeBase, item: ItemOf) -> None:
    screen = item("fever", polarity=Polarity.ABSENT)
    other = item("sciatica")
    context = _context(kb, make_record([screen, other]))
    outcome = compile_expr({"negative": "fever"}).evaluate(context)
    assert [e.ref for e in outcome.evidence] == [screen.ref]


@pytest.mark.parametrize("deceased", [True, False])
def test_deceased_false_holds_only_for_the_living(kb: KnowledgeBase, deceased: bool) -> None:
    who = Demographics("Patient/p1", date(1970, 1, 1), "female", deceased, None)
    record = PatientRecord("Patient/p1", who, ())
    assert _holds(kb, {"deceased": False}, record) is not deceased
    assert _holds(kb, {"deceased": True}, record) is deceased
    alive = compile_expr({"deceased": False}).evaluate(_context(kb, record))
    assert alive.evidence == ()  # nothing to cite for an absence of a death record


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ({"age": {"gte": "adult_min_age", "lt": "trial_weeks"}}, "age: needs exactly one of"),
        ({"duration": {}}, "duration: needs exactly one of"),
        ({"value": {"concept": "nrs"}}, "value: needs exactly one of"),
        ({"all": []}, "all: needs a non-empty list"),
        ({"any": {"has": "fever"}}, "any: needs a non-empty list"),
        ({"treated": 6}, "treated: needs a table with weeks"),
        ({"recent": {"concept": "mri"}}, "recent: needs a table with concept, within_months"),
        (
            {"recent": {"concept": "mri", "within_months": "m", "findings": "some"}},
            "recent: findings is 'present' or 'any'",
        ),
        ({"medication_ended": False}, "medication_ended: needs true"),
        ({"slot": {"name": "esi"}}, "slot: needs a table with name, in"),
        ({"value": 4}, "value: needs a table with concept"),
        ({"has": "fever", "ever": "fever"}, "exactly one operator"),
        ({}, "exactly one operator"),
        ("fever", "exactly one operator"),
        ({"not": ["fever"]}, "exactly one operator"),
    ],
)
def test_malformed_expression_is_rejected(expression: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compile_expr(expression)


@pytest.mark.parametrize(
    ("expression", "reads"),
    [
        ({"age": {"gte": "adult_min_age"}}, ["adult_min_age"]),
        ({"duration": {"known": False}}, []),
        ({"value": {"concept": "dn4-total", "gte": "dn4_positive"}}, ["dn4-total", "dn4_positive"]),
        ({"all": [{"has": "fever"}]}, ["fever"]),
        ({"any": [{"has": "fever"}, {"negative": "sciatica"}]}, ["fever", "sciatica"]),
        ({"treated": {"weeks": "trial_weeks"}}, ["trial_weeks"]),
        (
            {"recent": {"concept": "fever", "within_months": "recent_imaging_months"}},
            ["fever", "recent_imaging_months"],
        ),
        ({"slot": {"name": "esi", "in": ["eligible"]}}, ["esi"]),
        ({"not": {"has": "fever"}}, ["fever"]),
        ({"medication_ended": True}, []),
    ],
)
def test_well_formed_counterparts_compile(expression: dict[str, Any], reads: list[str]) -> None:
    """The other side of each rejection above: the same operator, well formed, compiles and
    names what it reads (for the start-up cross-checks)."""
    refs = compile_expr(expression).references()
    assert refs.concepts + refs.parameters + refs.slots == reads


@pytest.mark.parametrize(("findings", "expected"), [("any", True), ("present", False)])
def test_recent_findings_any_counts_a_finding_recorded_absent(
    kb: KnowledgeBase, item: ItemOf, findings: str, expected: bool
) -> None:
    """Imaging that showed no compression is imaging on record: ``findings = "any"`` counts a
    statement recorded absent; the default counts only what was found."""
    seen = item("imaging-nerve-root-compression", polarity=Polarity.ABSENT, days_ago=90)
    recent = {
        "concept": "imaging-nerve-root-compression", "within_months": "recent_imaging_months",
        "findings": findings,
    }  # fmt: skip
    assert _holds(kb, {"recent": recent}, make_record([seen])) is expected
    found = item("imaging-nerve-root-compression", days_ago=90)
    assert _holds(kb, {"recent": recent}, make_record([found]))
    old = item("imaging-nerve-root-compression", polarity=Polarity.ABSENT, days_ago=400)
    assert not _holds(kb, {"recent": recent}, make_record([old]))
