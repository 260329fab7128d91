"""Reading an Observation's value (RULES §0): coded answers, words, and values that cannot be read.

A finding (a yes/no concept) is present, absent, or - when its answer says nothing or cannot be
read - not used and reported (``OutOfRange`` with a ``reason``); a score or measure needs a number.
Each rule has its near miss beside it."""

from __future__ import annotations

import pytest

from service.domain.facts import Matcher
from service.domain.knowledge import KnowledgeBase
from service.domain.model import Code, Item, Origin, Polarity

SCT = "http://snomed.info/sct"
LOINC = "http://loinc.org"
PP = "https://painpath.dev/fhir/CodeSystem/painpath"
SADDLE = Code(SCT, "449813001")
FEVER = Code(PP, "fever")
NRS = Code(LOINC, "72514-3")
SCIATICA = Code(SCT, "23056005")


@pytest.fixture(scope="module")
def matcher(kb: KnowledgeBase) -> Matcher:
    return Matcher(kb)


def _observation(code: Code, **value: object) -> Item:
    return Item("Observation/o1", Origin.OBSERVATION, (code,), **value)  # type: ignore[arg-type]


def _answer(code: str, system: str = SCT, display: str | None = None) -> dict[str, object]:
    return {"value_codes": (Code(system, code),), "value_text": display}


@pytest.mark.parametrize(
    ("answer", "polarity"),
    [
        (_answer("373066001"), Polarity.PRESENT),  # SNOMED Yes
        (_answer("373067005"), Polarity.ABSENT),  # SNOMED No, no display
        (_answer("373067005", display="Nein"), Polarity.ABSENT),  # the code decides, not the word
        (_answer("Y", "http://terminology.hl7.org/CodeSystem/v2-0136"), Polarity.PRESENT),
        (_answer("N", "http://terminology.hl7.org/CodeSystem/v2-0136"), Polarity.ABSENT),
        (_answer("52101004"), Polarity.PRESENT),  # Present
        (_answer("2667000"), Polarity.ABSENT),  # Absent
        (_answer("10828004"), Polarity.PRESENT),  # Positive
        (_answer("260385009"), Polarity.ABSENT),  # Negative
        (_answer("LA33-6", LOINC), Polarity.PRESENT),
        (_answer("LA32-8", LOINC), Polarity.ABSENT),
        # an answer code PainPath does not list, read by its first word
        (_answer("999999999", display="Positive finding"), Polarity.PRESENT),
        (_answer("999999999", display="Negative"), Polarity.ABSENT),
    ],
)
def test_a_coded_answer_makes_the_finding_present_or_absent(
    matcher: Matcher, answer: dict[str, object], polarity: Polarity
) -> None:
    facts, rejected = matcher.match(_observation(SADDLE, **answer))
    assert rejected == []
    assert [(f.concept, f.item.polarity) for f in facts] == [("saddle-anaesthesia", polarity)]


@pytest.mark.parametrize(
    ("answer", "absent"),
    [
        (_answer("261665006"), True),  # SNOMED Unknown
        (_answer("LA4489-6", LOINC), True),  # LOINC Unknown
        (_answer("999999999"), False),  # a code not listed, no words: not guessed
        (_answer("999999999", display="Nein"), False),  # words PainPath does not read
        ({"value_absent": "dataAbsentReason asked-unknown"}, True),
    ],
)
def test_an_answer_that_says_nothing_or_cannot_be_read_is_reported_not_guessed(
    matcher: Matcher, answer: dict[str, object], absent: bool
) -> None:
    facts, rejected = matcher.match(_observation(SADDLE, **answer))
    assert facts == []
    [only] = rejected
    assert (only.ref, only.concept, only.value, only.absent) == (
        "Observation/o1", "saddle-anaesthesia", None, absent,
    )  # fmt: skip
    assert only.reason


def test_an_answer_that_names_a_concept_carries_the_finding_itself(matcher: Matcher) -> None:
    """Code "finding", value SNOMED sciatica: the value is a finding of its own, not an unread
    answer (the adapter reads it as a second item)."""
    facts, rejected = matcher.match(_observation(SADDLE, value_codes=(SCIATICA,)))
    assert rejected == []
    assert [f.concept for f in facts] == ["saddle-anaesthesia"]


def test_a_number_is_not_a_yes_no_answer(matcher: Matcher) -> None:
    facts, rejected = matcher.match(_observation(FEVER, value=0.0))
    assert facts == []
    assert [(r.concept, r.absent) for r in rejected] == [("fever", False)]
    # near misses: a boolean, or no value at all (the code is the finding), are read
    assert [f.item.polarity for f in matcher.match(_observation(FEVER))[0]] == [Polarity.PRESENT]
    off = _observation(FEVER, polarity=Polarity.ABSENT)
    assert [f.item.polarity for f in matcher.match(off)[0]] == [Polarity.ABSENT]


def test_a_finding_without_a_value_type_keeps_a_measurement(matcher: Matcher) -> None:
    """Only concepts typed yes/no refuse numbers: a finding concept without a value type may be
    observed with a measurement beside it."""
    facts, rejected = matcher.match(_observation(SADDLE, value=2.0))
    assert rejected == []
    assert [f.concept for f in facts] == ["saddle-anaesthesia"]


def test_a_score_needs_a_number(matcher: Matcher) -> None:
    for value in ({"value_text": "7"}, {}, {"value_absent": "dataAbsentReason unknown"}):
        facts, rejected = matcher.match(_observation(NRS, **value))
        assert facts == []
        assert [r.concept for r in rejected] == ["pain-score"]
    facts, rejected = matcher.match(_observation(NRS, value=7.0))  # the other side
    assert rejected == []
    assert [(f.concept, f.item.value) for f in facts] == [("pain-score", 7.0)]
    # a coded number answer is a number (LOINC LA10139-6 = 7)
    facts, _ = matcher.match(_observation(NRS, **_answer("LA10139-6", LOINC)))
    assert [(f.concept, f.item.value) for f in facts] == [("pain-score", 7.0)]


def test_only_observations_are_held_to_their_value(matcher: Matcher) -> None:
    """A Condition coded as a score's concept carries no value to check."""
    condition = Item("Condition/c1", Origin.CONDITION, (NRS,))
    facts, rejected = matcher.match(condition)
    assert rejected == []
    assert [f.concept for f in facts] == ["pain-score"]
