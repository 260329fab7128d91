"""The red-flag screen's answers as findings, and its pre-fill from a record (domain, pure)."""

from __future__ import annotations

from datetime import UTC, datetime

from service.domain.facts import Matcher
from service.domain.knowledge import KnowledgeBase
from service.domain.model import (
    Code,
    Demographics,
    Item,
    Origin,
    PatientRecord,
    Polarity,
    QuestionnaireAnswers,
)
from service.domain.screens import prefill_screen, screen_items, screen_prompts

SCREEN = "https://painpath.dev/fhir/Questionnaire/red-flag-screen"
WHEN = datetime(2026, 11, 24, tzinfo=UTC)


def test_answers_become_findings_and_other_responses_are_passed_on(kb: KnowledgeBase) -> None:
    first, second, *_ = screen_prompts(kb)
    screen = QuestionnaireAnswers(
        "QuestionnaireResponse/q1",
        SCREEN + "|1",
        WHEN,
        ((first.code, True), (second.code, "No"), ("not-an-item", True), (first.code, 3.0),
         (second.code, "maybe")),
    )  # fmt: skip
    other = QuestionnaireAnswers("QuestionnaireResponse/q2", "https://x/Questionnaire/y", None, ())
    items, others = screen_items(kb, [screen, other], SCREEN)
    assert others == [other]
    assert [(i.codes[0].code, i.polarity) for i in items] == [
        (first.code, Polarity.PRESENT),
        (second.code, Polarity.ABSENT),
    ]
    assert {i.ref for i in items} == {"QuestionnaireResponse/q1"}


def test_prefill_takes_the_latest_statement_of_each_finding(kb: KnowledgeBase) -> None:
    first = screen_prompts(kb)[0]
    code = Code(kb.valuesets.systems[first.system], first.code)
    older = Item("Observation/old", Origin.OBSERVATION, (code,), polarity=Polarity.PRESENT,
                 when=datetime(2026, 1, 1, tzinfo=UTC))  # fmt: skip
    newer = Item(
        "Observation/new", Origin.OBSERVATION, (code,), polarity=Polarity.ABSENT, when=WHEN
    )
    history = Item("Condition/h", Origin.CONDITION, (code,), polarity=Polarity.HISTORY, when=WHEN)
    record = PatientRecord("Patient/p", Demographics(), (older, newer, history))
    [found] = prefill_screen(kb, Matcher(kb), record)
    assert (found.link_id, found.value, found.source) == (first.code, False, "Observation/new")
    assert prefill_screen(kb, Matcher(kb), PatientRecord("Patient/p", Demographics())) == []
