"""The recording forms (RULES §9): their items from the catalogue prompts, their answers read as
findings, and their pre-fill from a record (domain, pure)."""

from __future__ import annotations

from datetime import UTC, datetime

from service.domain.facts import Matcher
from service.domain.forms import form_findings, form_items, prefill, questionnaire_title
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

PP = "https://painpath.dev/fhir/Questionnaire"
SCREEN = f"{PP}/red-flag-screen"
STAGE = f"{PP}/stage-facts"
FORMS = {SCREEN: "red-flag-screen", STAGE: "stage-facts"}
WHEN = datetime(2026, 11, 24, tzinfo=UTC)
ONSET = datetime(2026, 11, 10, tzinfo=UTC)
NRS = Code("http://loinc.org", "72514-3")


def test_form_items_follow_the_prompts_and_their_concepts(kb: KnowledgeBase) -> None:
    screen = form_items(kb, "red-flag-screen")
    assert [i.kind for i in screen] == ["boolean"] * 6
    assert len({i.link_id for i in screen}) == 6  # a code two entries name is asked once
    stage = {i.link_id: i for i in form_items(kb, "stage-facts")}
    assert list(stage) == ["symptom-onset", "72514-3", "conservative-care-weeks"]
    assert stage["symptom-onset"].kind == "dateTime"
    assert (stage["72514-3"].kind, stage["72514-3"].range) == ("decimal", (0.0, 10.0))
    assert (stage["conservative-care-weeks"].kind, stage["conservative-care-weeks"].unit) == (
        "decimal",
        "wk",
    )
    assert questionnaire_title(kb, "stage-facts") == "PainPath treatment-stage facts"
    assert questionnaire_title(kb, "startback") == "Keele STarT Back Screening Tool"


def test_answers_become_findings_and_other_responses_are_passed_on(kb: KnowledgeBase) -> None:
    first, second, *_ = form_items(kb, "red-flag-screen")
    screen = QuestionnaireAnswers(
        "QuestionnaireResponse/q1",
        SCREEN + "|1",
        WHEN,
        ((first.link_id, True), (second.link_id, "No"), ("not-an-item", True),
         (first.link_id, 3.0), (second.link_id, "maybe")),
    )  # fmt: skip
    other = QuestionnaireAnswers("QuestionnaireResponse/q2", "https://x/Questionnaire/y", None, ())
    items, others = form_findings(kb, [screen, other], FORMS)
    assert others == [other]
    assert [(i.codes[0].code, i.polarity) for i in items] == [
        (first.link_id, Polarity.PRESENT),
        (second.link_id, Polarity.ABSENT),
    ]
    assert {i.ref for i in items} == {"QuestionnaireResponse/q1"}


def test_stage_answers_are_a_reading_and_a_dated_onset(kb: KnowledgeBase) -> None:
    stage = QuestionnaireAnswers(
        "QuestionnaireResponse/s1",
        STAGE,
        WHEN,
        (("72514-3", 8.0), ("conservative-care-weeks", "eight"), ("72514-3", True)),
        (("symptom-onset", ONSET), ("72514-3", ONSET), ("elsewhere", ONSET)),
    )
    items, others = form_findings(kb, [stage], FORMS)
    assert others == []
    nrs, onset = items
    assert (nrs.codes, nrs.value, nrs.when, nrs.origin) == ((NRS,), 8.0, WHEN, Origin.QUESTIONNAIRE)
    assert (onset.codes[0].code, onset.when, onset.recorded, onset.value) == (
        "symptom-onset",
        ONSET,
        WHEN,
        None,
    )


def test_prefill_takes_the_latest_statement_of_each_finding(kb: KnowledgeBase) -> None:
    first = form_items(kb, "red-flag-screen")[0]
    code = first.code
    older = Item("Observation/old", Origin.OBSERVATION, (code,), polarity=Polarity.PRESENT,
                 when=datetime(2026, 1, 1, tzinfo=UTC))  # fmt: skip
    newer = Item(
        "Observation/new", Origin.OBSERVATION, (code,), polarity=Polarity.ABSENT, when=WHEN
    )
    history = Item("Condition/h", Origin.CONDITION, (code,), polarity=Polarity.HISTORY, when=WHEN)
    record = PatientRecord("Patient/p", Demographics(), (older, newer, history))
    [found] = prefill(kb, Matcher(kb), "red-flag-screen", record)
    assert (found.link_id, found.value, found.source) == (first.link_id, False, "Observation/new")
    empty = PatientRecord("Patient/p", Demographics())
    assert prefill(kb, Matcher(kb), "red-flag-screen", empty) == []
    assert prefill(kb, Matcher(kb), "stage-facts", empty) == []


def test_prefill_reads_the_latest_score_and_the_earliest_onset(kb: KnowledgeBase) -> None:
    onset = Code("https://painpath.dev/fhir/CodeSystem/painpath", "symptom-onset")
    weeks = Code("https://painpath.dev/fhir/CodeSystem/painpath", "conservative-care-weeks")
    record = PatientRecord(
        "Patient/p",
        Demographics(),
        (
            Item("Observation/n1", Origin.OBSERVATION, (NRS,), value=6.0, when=ONSET),
            Item("Observation/n2", Origin.OBSERVATION, (NRS,), value=8.0, when=WHEN),
            Item("Observation/n3", Origin.OBSERVATION, (NRS,), value=3.0, comparator="<"),
            Item("Observation/n4", Origin.OBSERVATION, (NRS,), value=12.0, when=WHEN),
            Item("Observation/o1", Origin.OBSERVATION, (onset,), when=WHEN),
            Item("Observation/o2", Origin.OBSERVATION, (onset,), when=ONSET),
            Item("Observation/o3", Origin.OBSERVATION, (onset,)),
            Item("Observation/w1", Origin.OBSERVATION, (weeks,), value=14.0, unit="d"),
        ),
    )
    found = {
        p.link_id: (p.value, p.source) for p in prefill(kb, Matcher(kb), "stage-facts", record)
    }
    assert found == {
        "symptom-onset": (ONSET, "Observation/o2"),
        "72514-3": (8.0, "Observation/n2"),  # the out-of-range 12 and the bound "<3" are not read
        "conservative-care-weeks": (2.0, "Observation/w1"),  # read in the concept's unit
    }
