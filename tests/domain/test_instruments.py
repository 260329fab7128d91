"""Instrument scoring: instruments.toml, service.domain.instruments and the Questionnaires."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft6Validator

from service.domain.errors import KnowledgeError
from service.domain.instruments import Instruments, check_instruments, score
from service.domain.knowledge import KnowledgeBase, load_knowledge
from service.domain.model import Item, Origin, QuestionnaireAnswers

ROOT = Path(__file__).resolve().parents[2]
QUESTIONNAIRES = ROOT / "fhir_profiles" / "questionnaires"
SCHEMA = ROOT / "service" / "fhir" / "schema" / "fhir.r4.schema.json"
PP = "https://painpath.dev/fhir/CodeSystem/painpath"
LOINC = "http://loinc.org"
ANSWERS = "https://painpath.dev/fhir/CodeSystem/instrument-answers"
WHEN = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
IDS = ["dn4", "paindetect", "lanss", "s-lanss", "id-pain", "startback", "odi"]

Answer = str | float | bool


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return load_knowledge()


@pytest.fixture(scope="module")
def instruments(kb: KnowledgeBase) -> Instruments:
    return check_instruments(
        kb.instruments, set(kb.valuesets.concepts), systems=kb.valuesets.systems
    )


def _canon(qid: str) -> str:
    return f"https://painpath.dev/fhir/Questionnaire/{qid}"


def _response(qid: str, answers: dict[str, Answer], *, suffix: str = "") -> QuestionnaireAnswers:
    canonical = _canon(qid) + suffix
    ref = f"QuestionnaireResponse/{qid}-1"
    return QuestionnaireAnswers(ref, canonical, WHEN, tuple(answers.items()))


def _numbered(qid: str, values: Sequence[Answer]) -> dict[str, Answer]:
    return {f"{qid}-{n}": value for n, value in enumerate(values, start=1)}


def _totals(
    instruments: Instruments, kb: KnowledgeBase, response: QuestionnaireAnswers
) -> dict[str, float | None]:
    items, problems = score(instruments, [response], systems=kb.valuesets.systems)
    assert problems == []
    return {f"{item.codes[0].system}|{item.codes[0].code}": item.value for item in items}


def _problems(
    instruments: Instruments, kb: KnowledgeBase, response: QuestionnaireAnswers
) -> list[str]:
    items, problems = score(instruments, [response], systems=kb.valuesets.systems)
    assert items == []
    assert problems
    return problems


# --- the packaged file -------------------------------------------------------------------------


def test_packaged_file_has_every_instrument(instruments: Instruments) -> None:
    assert list(instruments.instruments) == IDS
    assert instruments.version == "2026.11.0"
    counts = {name: len(i.items) for name, i in instruments.instruments.items()}
    assert counts == {
        "dn4": 10, "paindetect": 9, "lanss": 7, "s-lanss": 7,
        "id-pain": 6, "startback": 9, "odi": 10,
    }  # fmt: skip


def test_output_codes_are_the_concepts_codes(instruments: Instruments, kb: KnowledgeBase) -> None:
    for instrument in instruments.instruments.values():
        for output in instrument.outputs:
            codes = {(c.system, c.code) for c in kb.valuesets.concepts[output.concept].codes}
            assert (output.system, output.code) in codes


# --- scoring per instrument --------------------------------------------------------------------


def test_dn4_four_yes_scores_four(instruments: Instruments, kb: KnowledgeBase) -> None:
    answers = _numbered("dn4", [True, False, True, False, True, False, False, True, False, False])
    items, problems = score(instruments, [_response("dn4", answers)], systems=kb.valuesets.systems)
    assert problems == []
    (item,) = items
    assert item.value == 1 + 1 + 1 + 1
    assert item.ref == "QuestionnaireResponse/dn4-1"
    assert item.origin is Origin.QUESTIONNAIRE
    assert item.when == WHEN
    assert [(c.system, c.code) for c in item.codes] == [(PP, "dn4-total")]


def test_dn4_accepts_yes_no_codings(instruments: Instruments, kb: KnowledgeBase) -> None:
    codes: list[Answer] = ["yes", "LA33-6", "no", "LA32-8", "yes", "no", "no", "no", "no", "no"]
    totals = _totals(instruments, kb, _response("dn4", _numbered("dn4", codes)))
    assert totals == {f"{PP}|dn4-total": 3.0}


def test_paindetect_maximum_is_38(instruments: Instruments, kb: KnowledgeBase) -> None:
    answers = _numbered("paindetect", [5.0] * 7 + ["attacks-pain-between", True])
    totals = _totals(instruments, kb, _response("paindetect", answers))
    assert totals == {f"{PP}|paindetect-total": 7 * 5 + 1 + 2}


def test_paindetect_minimum_is_minus_one(instruments: Instruments, kb: KnowledgeBase) -> None:
    answers = _numbered("paindetect", [0.0] * 7 + ["persistent-attacks", False])
    totals = _totals(instruments, kb, _response("paindetect", answers))
    assert totals == {f"{PP}|paindetect-total": -1.0}


def test_paindetect_mixed_example(instruments: Instruments, kb: KnowledgeBase) -> None:
    values: list[Answer] = [3.0, 2.0, 0.0, 4.0, 1.0, 2.0, 0.0, "persistent-slight", True]
    answers = _numbered("paindetect", values)
    totals = _totals(instruments, kb, _response("paindetect", answers))
    assert totals == {f"{PP}|paindetect-total": 3 + 2 + 0 + 4 + 1 + 2 + 0 + 0 + 2}


def test_lanss_weights(instruments: Instruments, kb: KnowledgeBase) -> None:
    answers = _numbered("lanss", [True, False, True, True, False, False, True])
    totals = _totals(instruments, kb, _response("lanss", answers))
    assert totals == {f"{PP}|lanss-total": 5 + 3 + 2 + 3}


def test_lanss_all_yes_is_24(instruments: Instruments, kb: KnowledgeBase) -> None:
    totals = _totals(instruments, kb, _response("lanss", _numbered("lanss", [True] * 7)))
    assert totals == {f"{PP}|lanss-total": 5 + 5 + 3 + 2 + 1 + 5 + 3}


def test_s_lanss_weights(instruments: Instruments, kb: KnowledgeBase) -> None:
    answers = _numbered("s-lanss", [False, True, False, False, True, True, False])
    totals = _totals(instruments, kb, _response("s-lanss", answers))
    assert totals == {f"{PP}|s-lanss-total": 5 + 1 + 5}


def test_id_pain_joint_item_subtracts(instruments: Instruments, kb: KnowledgeBase) -> None:
    answers = _numbered("id-pain", [True, True, False, True, False, True])
    totals = _totals(instruments, kb, _response("id-pain", answers))
    assert totals == {f"{PP}|id-pain-total": 1 + 1 + 1 - 1}


def test_id_pain_minimum_is_minus_one(instruments: Instruments, kb: KnowledgeBase) -> None:
    answers = _numbered("id-pain", [False] * 5 + [True])
    totals = _totals(instruments, kb, _response("id-pain", answers))
    assert totals == {f"{PP}|id-pain-total": -1.0}


def test_startback_total_and_psychosocial(instruments: Instruments, kb: KnowledgeBase) -> None:
    answers = _numbered(
        "startback", [True, False, False, False, True, "agree", False, True, "very-much"]
    )
    totals = _totals(instruments, kb, _response("startback", answers))
    assert totals == {
        f"{PP}|startback-total": 1 + 1 + 1 + 1 + 1,
        f"{PP}|startback-psychosocial": 1 + 1 + 1 + 1,
    }


def test_startback_moderately_bothersome_scores_zero(
    instruments: Instruments, kb: KnowledgeBase
) -> None:
    answers = _numbered("startback", [True] * 8 + ["moderately"])
    totals = _totals(instruments, kb, _response("startback", answers))
    assert totals == {f"{PP}|startback-total": 8.0, f"{PP}|startback-psychosocial": 4.0}


def test_odi_all_sections(instruments: Instruments, kb: KnowledgeBase) -> None:
    answers = _numbered("odi", [2.0, 1.0, 3.0, 2.0, 2.0, 1.0, 0.0, 4.0, 2.0, 3.0])
    totals = _totals(instruments, kb, _response("odi", answers))
    assert totals == {f"{LOINC}|97909-6": 20 / 50 * 100}


def test_odi_one_missing_divides_by_45(instruments: Instruments, kb: KnowledgeBase) -> None:
    answers = _numbered("odi", [2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0])  # odi-10 missing
    totals = _totals(instruments, kb, _response("odi", answers))
    assert totals == {f"{LOINC}|97909-6": 40.0}  # 18 / (5 x 9) x 100


def test_odi_percent_is_rounded_to_one_decimal(instruments: Instruments, kb: KnowledgeBase) -> None:
    answers = _numbered("odi", [2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 1.0])  # odi-10 missing
    totals = _totals(instruments, kb, _response("odi", answers))
    assert totals == {f"{LOINC}|97909-6": 37.8}  # 17 / 45 x 100 = 37.77...


def test_odi_two_missing_is_not_scored(instruments: Instruments, kb: KnowledgeBase) -> None:
    answers = _numbered("odi", [2.0] * 8)
    problems = _problems(instruments, kb, _response("odi", answers))
    assert len(problems) == 1
    assert "QuestionnaireResponse/odi-1" in problems[0]
    assert "odi-9" in problems[0]
    assert "odi-10" in problems[0]


# --- problems ----------------------------------------------------------------------------------


def test_sum_instrument_with_missing_item_is_not_scored(
    instruments: Instruments, kb: KnowledgeBase
) -> None:
    answers = _numbered("dn4", [True] * 9)
    (problem,) = _problems(instruments, kb, _response("dn4", answers))
    assert "dn4-10" in problem
    assert "unanswered" in problem


@pytest.mark.parametrize(
    ("qid", "link_id", "value"),
    [
        ("dn4", "dn4-3", 1.0),  # number for a boolean
        ("dn4", "dn4-3", "maybe"),  # coding that is not yes/no
        ("paindetect", "paindetect-2", 6.0),  # out of range
        ("paindetect", "paindetect-2", -1.0),  # out of range
        ("paindetect", "paindetect-2", 2.5),  # not an integer
        ("paindetect", "paindetect-2", True),  # boolean for a number
        ("paindetect", "paindetect-2", "3"),  # coding for a number
        ("paindetect", "paindetect-8", "sometimes"),  # unknown choice code
        ("paindetect", "paindetect-8", True),  # boolean for a choice
        ("startback", "startback-9", 1.0),  # number for a choice
        ("odi", "odi-4", 9.0),  # out of range
    ],
)
def test_bad_answer_is_a_problem_and_no_item(
    instruments: Instruments, kb: KnowledgeBase, qid: str, link_id: str, value: Answer
) -> None:
    good: dict[str, dict[str, Answer]] = {
        "dn4": _numbered("dn4", [False] * 10),
        "paindetect": _numbered("paindetect", [1.0] * 7 + ["persistent-slight", False]),
        "startback": _numbered("startback", [False] * 8 + ["slightly"]),
        "odi": _numbered("odi", [1.0] * 10),
    }
    answers = {**good[qid], link_id: value}
    (problem,) = _problems(instruments, kb, _response(qid, answers))
    assert problem.startswith(f"QuestionnaireResponse/{qid}-1: ")
    assert link_id in problem
    if isinstance(value, str):
        assert repr(value) not in problem
        assert f" {value}" not in problem  # the answer itself is never echoed


def test_item_answered_twice_is_a_problem(instruments: Instruments, kb: KnowledgeBase) -> None:
    answers = (*_numbered("dn4", [False] * 10).items(), ("dn4-1", True))
    response = QuestionnaireAnswers("QuestionnaireResponse/x", _canon("dn4"), WHEN, answers)
    (problem,) = _problems(instruments, kb, response)
    assert "dn4-1" in problem
    assert "more than once" in problem


def test_unknown_questionnaire_is_a_problem(instruments: Instruments, kb: KnowledgeBase) -> None:
    response = QuestionnaireAnswers(
        "QuestionnaireResponse/9", "http://example.org/Questionnaire/phq9", WHEN, (("1", 2.0),)
    )
    (problem,) = _problems(instruments, kb, response)
    assert problem.startswith("QuestionnaireResponse/9: ")
    assert "not a PainPath instrument" in problem


def test_response_without_questionnaire_is_a_problem(
    instruments: Instruments, kb: KnowledgeBase
) -> None:
    response = QuestionnaireAnswers("QuestionnaireResponse/7", "", None, ())
    (problem,) = _problems(instruments, kb, response)
    assert "names no questionnaire" in problem


def test_canonical_with_version_matches(instruments: Instruments, kb: KnowledgeBase) -> None:
    answers = _numbered("dn4", [True] * 4 + [False] * 6)
    totals = _totals(instruments, kb, _response("dn4", answers, suffix="|2026.11.0"))
    assert totals == {f"{PP}|dn4-total": 4.0}


def test_unscored_extra_answers_are_ignored(instruments: Instruments, kb: KnowledgeBase) -> None:
    answers = {**_numbered("id-pain", [True] * 6), "id-pain-note": "free text", "nrs": 7.0}
    totals = _totals(instruments, kb, _response("id-pain", answers))
    assert totals == {f"{PP}|id-pain-total": 4.0}


def test_several_responses_score_independently(instruments: Instruments, kb: KnowledgeBase) -> None:
    good = _response("dn4", _numbered("dn4", [True] * 10))
    bad = _response("lanss", _numbered("lanss", [True] * 6))
    items, problems = score(instruments, [good, bad], systems=kb.valuesets.systems)
    assert [i.value for i in items] == [10.0]
    assert len(problems) == 1
    assert "lanss-7" in problems[0]
    assert all(isinstance(i, Item) for i in items)


# --- Questionnaire resources -------------------------------------------------------------------


@pytest.fixture(scope="module")
def validator() -> Draft6Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    return Draft6Validator(
        {"$ref": "#/definitions/Questionnaire", "definitions": schema["definitions"]}
    )


def _questionnaire(qid: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (QUESTIONNAIRES / f"Questionnaire-{qid}.json").read_text(encoding="utf-8")
    )
    return data


def test_every_questionnaire_file_is_an_instrument(instruments: Instruments) -> None:
    files = sorted(p.name for p in QUESTIONNAIRES.glob("*.json"))
    assert files == sorted(f"Questionnaire-{qid}.json" for qid in instruments.instruments)


@pytest.mark.parametrize("qid", IDS)
def test_questionnaire_validates_and_matches(
    qid: str, instruments: Instruments, validator: Draft6Validator
) -> None:
    questionnaire = _questionnaire(qid)
    errors = [e.message for e in validator.iter_errors(questionnaire)]
    assert errors == []
    instrument = instruments.instruments[qid]
    assert questionnaire["id"] == qid
    assert questionnaire["url"] == instrument.questionnaire
    assert questionnaire["version"] == instruments.version
    assert questionnaire["status"] == "active"
    assert questionnaire["name"]
    assert questionnaire["title"] == instrument.title
    assert questionnaire["copyright"]
    assert [i["linkId"] for i in questionnaire["item"]] == [i.link_id for i in instrument.items]


@pytest.mark.parametrize("qid", IDS)
def test_questionnaire_item_types_match_scoring(qid: str, instruments: Instruments) -> None:
    types = {"boolean": "boolean", "number": "integer", "choice": "choice"}
    for q_item, item in zip(
        _questionnaire(qid)["item"], instruments.instruments[qid].items, strict=True
    ):
        assert q_item["type"] == types[item.scoring]
        if item.scoring == "choice":
            codings = [o["valueCoding"] for o in q_item["answerOption"]]
            assert {c["system"] for c in codings} == {ANSWERS}
            assert [c["code"] for c in codings] == list(item.options)


# --- malformed tables --------------------------------------------------------------------------


Raw = dict[str, Any]


def _set(path: str, value: Any) -> Callable[[Raw], None]:
    """An edit that sets ``instruments.<path>`` (dot-separated; digits index lists)."""

    def edit(raw: Raw) -> None:
        *parents, last = path.split(".")
        node: Any = raw["instruments"]
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if value is None:
            del node[last]
        else:
            node[int(last) if last.isdigit() else last] = value

    return edit


BROKEN = {
    "extra-field": _set("dn4.colour", "blue"),
    "bad-scoring": _set("dn4.items.0.scoring", "likert"),
    "no-weight": _set("dn4.items.0.weight", None),
    "duplicate-link": _set("dn4.items.1.linkId", "dn4-1"),
    "unknown-output-link": _set("dn4.outputs.0.items", ["dn4-99"]),
    "sum-with-missing": _set("dn4.max_missing", 1),
    "reversed-range": _set("odi.items.0.range", [5, 0]),
    "versioned-canonical": _set("dn4.questionnaire", f"{_canon('dn4')}|1"),
    "shared-canonical": _set("lanss.questionnaire", _canon("dn4")),
    "bad-aggregate": _set("dn4.aggregate", "mean"),
    "percent-too-many-missing": _set("odi.max_missing", 10),
    "empty-choice-map": _set("startback.items.8.map", {}),
}


@pytest.mark.parametrize("edit", sorted(BROKEN))
def test_malformed_table_raises(kb: KnowledgeBase, edit: str) -> None:
    raw: Raw = copy.deepcopy(kb.instruments)
    BROKEN[edit](raw)
    with pytest.raises(KnowledgeError, match=r"^instruments\.toml: "):
        check_instruments(raw, set(kb.valuesets.concepts))


def test_unknown_concept_raises(kb: KnowledgeBase) -> None:
    raw = copy.deepcopy(kb.instruments)
    raw["instruments"]["dn4"]["outputs"][0]["concept"] = "dn4-grand-total"
    with pytest.raises(KnowledgeError, match="unknown concept dn4-grand-total"):
        check_instruments(raw, set(kb.valuesets.concepts))


def test_unknown_system_alias_raises(kb: KnowledgeBase) -> None:
    raw = copy.deepcopy(kb.instruments)
    raw["instruments"]["odi"]["outputs"][0]["system"] = "nosuch"
    with pytest.raises(KnowledgeError, match="unknown system nosuch"):
        check_instruments(raw, set(kb.valuesets.concepts), systems=kb.valuesets.systems)


def test_not_a_table_raises(kb: KnowledgeBase) -> None:
    with pytest.raises(KnowledgeError):
        check_instruments({"version": "x"}, set(kb.valuesets.concepts))


def _edits(*edits: Callable[[Raw], None]) -> Callable[[Raw], None]:
    """Several edits applied in turn."""

    def edit(raw: Raw) -> None:
        for one in edits:
            one(raw)

    return edit


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        # odi may miss one item: an output over one item could be scored from nothing
        (_set("odi.outputs.0.items", ["odi-1"]), "has no more items than max_missing"),
        # a percent divides by the items' maxima: a yes/no item whose weight is negative ...
        (
            _edits(_set("dn4.aggregate", "percent"), _set("dn4.items.0.weight", -1)),
            "percent needs every item's maximum above 0",
        ),
        # ... or a coded item whose every answer scores 0 has a maximum of 0
        (
            _edits(
                _set("startback.aggregate", "percent"),
                _set("startback.items.8.map", {"not-at-all": 0, "extremely": 0}),
            ),
            "percent needs every item's maximum above 0",
        ),
    ],
)
def test_inconsistent_instrument_raises_with_its_reason(
    kb: KnowledgeBase, edit: Callable[[Raw], None], reason: str
) -> None:
    raw: Raw = copy.deepcopy(kb.instruments)
    edit(raw)
    with pytest.raises(KnowledgeError, match=rf"^instruments\.toml: .*{re.escape(reason)}"):
        check_instruments(raw, set(kb.valuesets.concepts))


def _percent_startback(kb: KnowledgeBase) -> Instruments:
    """STarT Back as a percent (one item may be missing), item 1 weighing 3 and item 9 mapped to
    0 or 2, with only its total as output."""
    raw: Raw = copy.deepcopy(kb.instruments)
    _set("startback.aggregate", "percent")(raw)
    _set("startback.max_missing", 1)(raw)
    _set("startback.items.0.weight", 3)(raw)
    _set("startback.items.8.map", {"not-at-all": 0, "very-much": 2})(raw)
    _set("startback.outputs", [raw["instruments"]["startback"]["outputs"][0]])(raw)
    return check_instruments(raw, set(kb.valuesets.concepts), systems=kb.valuesets.systems)


def test_percent_over_yes_no_and_coded_items(kb: KnowledgeBase) -> None:
    """A percent divides by the answered items' maxima: a yes/no item's is its weight, a coded
    item's its highest mapped score."""
    instruments = _percent_startback(kb)
    answers = _numbered("startback", [False, True, True, False, False, False, False, False])
    answers["startback-9"] = "very-much"  # 2 of 2
    totals = _totals(instruments, kb, _response("startback", answers))
    # item 1 at most 3, items 2-8 at most 1 each, item 9 at most 2: (2 + 2) / (3 + 7 + 2)
    assert totals == {f"{PP}|startback-total": round(4 / 12 * 100, 1)}
    del answers["startback-1"]  # the one item that may be missing: its maximum leaves the divisor
    totals = _totals(instruments, kb, _response("startback", answers))
    assert totals == {f"{PP}|startback-total": round(4 / 9 * 100, 1)}


def test_scoring_with_an_unknown_system_alias_raises(
    instruments: Instruments, kb: KnowledgeBase
) -> None:
    """``score`` refuses a system table that lacks an output's alias rather than guess a URI."""
    response = _response("dn4", _numbered("dn4", [True] * 10))
    systems = {k: v for k, v in kb.valuesets.systems.items() if k != "painpath"}
    with pytest.raises(KnowledgeError, match="unknown system alias painpath"):
        score(instruments, [response], systems=systems)
    assert _totals(instruments, kb, response) == {f"{PP}|dn4-total": 10.0}
