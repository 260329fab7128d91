"""RULES §9 (rule set 2027.1): every decision left open lists what would decide it, each with the
code that records it; the catalogue table is checked at start-up."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import orjson
import pytest

from service.app.pipeline import Pipeline
from service.domain.errors import KnowledgeError
from service.domain.knowledge import load_knowledge
from service.domain.open_questions import open_forms, open_questions

CASES = Path(__file__).resolve().parents[1] / "golden" / "cases"
PACKAGED = Path(str(resources.files("service.knowledge")))


def _run(pipeline: Pipeline, name: str) -> list[str]:
    case = orjson.loads((CASES / f"{name}.json").read_bytes())
    now = datetime(2026, 11, 24, tzinfo=UTC)
    result = pipeline.run_body(orjson.dumps(case["bundle"]), {"asOf": case["asOf"]}, now=now)
    return [e.about for e in open_questions(pipeline.kb, result.assessments[0])]


@pytest.mark.parametrize(
    ("case", "about"),
    [
        ("surgical-insufficient-data-no-imaging", "Surgical referral undecided"),
        ("mechanical-low-back-pain-screen-not-documented", "Red-flag screen not documented"),
        ("esi-unknown-duration-insufficient", "Injection stage undecided: the symptom duration"),
    ],
)
def test_open_decisions_list_what_would_decide_them(
    pipeline: Pipeline, case: str, about: str
) -> None:
    assert any(a.startswith(about) for a in _run(pipeline, case))


def test_a_decided_case_has_no_open_question(pipeline: Pipeline) -> None:
    assert _run(pipeline, "mechanical-low-back-pain-fever-screened-absent") == []


def test_open_forms_are_the_questionnaires_the_open_prompts_name(pipeline: Pipeline) -> None:
    case = orjson.loads((CASES / "duration-subacute-43-days-esi-insufficient.json").read_bytes())
    now = datetime(2026, 11, 24, tzinfo=UTC)
    result = pipeline.run_body(orjson.dumps(case["bundle"]), {"asOf": case["asOf"]}, now=now)
    forms = open_forms(pipeline.kb, result.assessments[0])
    assert forms == ["stage-facts", "startback", "red-flag-screen"]


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('[what_would_change."surgery.imaging-missing"]', '[what_would_change."no.such-rule"]',
         "no such rule or note"),
        ('code = "imaging-canal-stenosis"', 'code = "imaging-canal-narrowing"',
         "is not a code valuesets.toml lists"),
        ('questionnaire = "startback"', 'questionnaire = "no-such-form"',
         "neither a \\[questionnaires\\] form nor an instrument"),
        ("[questionnaires.stage-facts]", "[questionnaires.startback]",
         "an instrument of the same id exists"),
        ("[questionnaires.stage-facts]", "[questionnaires.stage-facts]\ntitle = \"x\"\n"
         "description = \"x\"\n[questionnaires.unused-form]", "unused-form: no prompt names it"),
    ],
)  # fmt: skip
def test_what_would_change_defects_stop_start_up(
    knowledge_dir: Path, old: str, new: str, message: str
) -> None:
    path = knowledge_dir / "catalogue.toml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(KnowledgeError, match=message):
        load_knowledge(knowledge_dir)
