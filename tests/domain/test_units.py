"""Quantities are compared in their concept's canonical unit (valuesets.toml ``[units]``).

A CRP of 1.1 mg/dL is 11 mg/L, above the 10 mg/L threshold; read as a bare number it would be
below it. Each convertible unit is tested on both sides of its threshold; a unit PainPath does not
know is ignored and reported, never guessed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from service.domain.assessment import Assessment
from service.domain.errors import KnowledgeError
from service.domain.facts import Matcher
from service.domain.knowledge import KnowledgeBase, load_knowledge
from service.domain.model import Item, Origin

Assess = Callable[..., Assessment]
ItemOf = Callable[..., Item]
KNOWLEDGE = Path(__file__).resolve().parents[2] / "service" / "knowledge"


def _infection(item: ItemOf, value: float, unit: str | None) -> list[Item]:
    return [item("low-back-pain"), item("immunosuppression"), item("crp", value=value, unit=unit)]


def _flags(assessment: Assessment) -> set[str]:
    return {flag.code for flag in assessment.red_flags}


@pytest.mark.parametrize(
    ("value", "unit", "raised"),
    [
        (11, "mg/L", True), (10, "mg/L", False),        # the threshold itself: above 10 mg/L
        (11, None, True), (10, None, False),            # no unit: read in mg/L
        (1.1, "mg/dL", True), (1.0, "mg/dL", False),    # 1 mg/dL = 10 mg/L
        (1.1, "mg/dl", True), (0.9, "MG/DL", False),    # spelled in another case
        (0.011, "g/L", True), (0.01, "g/L", False),
        (11, "ug/mL", True), (10, "ug/mL", False),
    ],
)  # fmt: skip
def test_crp_threshold_in_every_unit(
    assess: Assess, item: ItemOf, value: float, unit: str | None, raised: bool
) -> None:
    assessment = assess(_infection(item, value, unit))
    assert ("infection" in _flags(assessment)) is raised
    assert assessment.out_of_range == ()


@pytest.mark.parametrize("unit", ["nmol/L", "mmol/L", "%", "mg", "furlongs"])
def test_a_unit_not_understood_is_ignored_and_reported(
    assess: Assess, item: ItemOf, unit: str
) -> None:
    assessment = assess(_infection(item, 500, unit))
    assert "infection" not in _flags(assessment)  # 500 of an unknown unit is not "raised"
    (rejected,) = assessment.out_of_range
    assert (rejected.concept, rejected.value, rejected.unit) == ("crp", 500, unit)


def test_converted_evidence_shows_the_canonical_value_and_unit(
    assess: Assess, item: ItemOf
) -> None:
    assessment = assess(_infection(item, 1.5, "mg/dL"))
    (flag,) = [f for f in assessment.red_flags if f.code == "infection"]
    assert "15 mg/L" in {e.value for e in flag.evidence if e.concept == "crp"}


@pytest.mark.parametrize(
    ("value", "unit", "inflammatory"),
    [(31, "min", True), (30, "min", False), (0.6, "h", True), (0.5, "h", False),
     (0.6, "hours", True), (0.5, "hr", False)],
)  # fmt: skip
def test_morning_stiffness_in_minutes_or_hours(
    assess: Assess, item: ItemOf, value: float, unit: str, inflammatory: bool
) -> None:
    items = [
        item("low-back-pain", origin=Origin.CONDITION, days_ago=200),
        item("morning-stiffness-minutes", value=value, unit=unit),
    ]
    assert ("inflammatory" in _flags(assess(items, age=30))) is inflammatory


@pytest.mark.parametrize(
    ("value", "unit", "met"),
    [(6, "wk", True), (5.9, "wk", False), (42, "d", True), (41, "d", False),
     (1.4, "mo", True), (1.3, "mo", False), (0.12, "a", True), (0.11, "a", False)],
)  # fmt: skip
def test_conservative_care_duration_in_any_time_unit(
    assess: Assess, item: ItemOf, value: float, unit: str, met: bool
) -> None:
    items = [
        item("low-back-pain", origin=Origin.CONDITION, days_ago=14),
        item("conservative-care-weeks", value=value, unit=unit),
    ]
    assert ("trial-met" in assess(items).derived) is met


def test_units_do_not_apply_to_scores(kb: KnowledgeBase) -> None:
    matcher = Matcher(kb)
    assert kb.valuesets.concepts["pain-score"].unit is None
    assert matcher.factor("mg/L", "mg/dL") == 10
    assert matcher.factor("mg/L", None) == 1
    assert matcher.factor("mg/L", "mm/h") is None  # another dimension


def _with_units(tmp_path: Path, units: str) -> Path:
    for source in KNOWLEDGE.glob("*.toml"):
        text = source.read_text(encoding="utf-8")
        if source.name == "valuesets.toml":
            start = text.index('[units."mg/L"]')
            end = text.index('[units."mm/h"]')
            text = text[:start] + units + "\n\n" + text[end:]
        (tmp_path / source.name).write_text(text, encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(
    ("units", "message"),
    [
        ('[units."mg/L"]\ntitle = "x"\nconvert = { "mg/dL" = 10 }', "must convert 'mg/L' at 1"),
        ('[units."mg/L"]\ntitle = "x"\nconvert = { "mg/L" = 1, "g/L" = 0 }', "positive"),
        ('[units."mg/L"]\ntitle = "x"\nconvert = { "mg/L" = 1, "MG/L" = 2 }', "ambiguous"),
        ('[units."mg/l"]\ntitle = "x"\nconvert = { "mg/l" = 1 }', "unit 'mg/L' not in [units]"),
    ],
)  # fmt: skip
def test_bad_unit_tables_stop_start_up(tmp_path: Path, units: str, message: str) -> None:
    with pytest.raises(KnowledgeError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_knowledge(_with_units(tmp_path, units))
