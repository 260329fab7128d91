"""The patient explanation (service/domain/explanation.py, text in explanation.toml): what it
covers, its order under a red flag (RULES §8), the load-time checks of its text, and the guideline
URLs of the rule sources."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from service.domain.assessment import Assessment
from service.domain.errors import KnowledgeError
from service.domain.explanation import patient_explanation
from service.domain.knowledge import KnowledgeBase, load_knowledge
from service.domain.model import Item

Assess = Callable[..., Assessment]
MakeItem = Callable[..., Item]


def _edit(directory: Path, name: str, old: str, new: str) -> None:
    path = directory / name
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_routine_explanation_covers_pain_plan_steps_and_urgent_help(
    kb: KnowledgeBase, assess: Assess, item: MakeItem
) -> None:
    found = patient_explanation(kb, assess([item("mechanical-back-pain", days_ago=10)]))
    assert found is not None
    keys = [s.key for s in found.sections]
    assert keys[:3] == ["pain-type", "plan", "steps"]
    assert keys[-2:] == ["urgent-help", "same-day"]
    assert "later" not in keys
    text = found.text()
    assert kb.explanation.pain_type["mechanical"] in text
    prose = found.prose()  # the running text the readability check measures
    assert kb.explanation.pain_type["mechanical"] in prose
    assert "\n" not in prose
    assert kb.explanation.plan["conservative"] in text
    for symptom in kb.explanation.urgent_help.symptoms:
        assert f"- {symptom}" in text
    assert text.endswith(kb.explanation.draft_note + "\n")


def test_red_flag_explanation_puts_the_urgent_check_first(
    kb: KnowledgeBase, assess: Assess, item: MakeItem
) -> None:
    found = patient_explanation(
        kb, assess([item("sciatica", days_ago=5), item("saddle-anaesthesia", days_ago=1)])
    )
    assert found is not None
    sections = {s.key: s for s in found.sections}
    assert sections["plan"].paragraphs == (
        kb.explanation.plan["urgent-referral"],
        kb.explanation.red_flags["cauda-equina"],
    )
    assert kb.explanation.services["spine-surgery-referral"] in sections["steps"].items
    # routine care waits: physiotherapy and self-care are "after the urgent check"
    assert kb.explanation.services["physiotherapy"] in sections["later"].items
    assert kb.explanation.services["physiotherapy"] not in sections["steps"].items


def test_out_of_scope_has_no_explanation(kb: KnowledgeBase, assess: Assess, item: MakeItem) -> None:
    assert patient_explanation(kb, assess([item("sciatica")], age=15)) is None


def test_every_service_and_activity_needs_a_text(knowledge_dir: Path) -> None:
    _edit(knowledge_dir, "explanation.toml", "\nacupuncture = ", "\nacupuncture-x = ")
    with pytest.raises(KnowledgeError, match=r"\[services\]: no text for acupuncture"):
        load_knowledge(knowledge_dir)


def test_an_explanation_text_for_nothing_is_refused(knowledge_dir: Path) -> None:
    _edit(knowledge_dir, "explanation.toml", "[pain_type]\n", '[pain_type]\nunknown-kind = "x"\n')
    with pytest.raises(KnowledgeError, match=r"\[pain_type\]: unknown-kind unknown"):
        load_knowledge(knowledge_dir)


def test_guideline_urls_are_https_and_reach_the_rule_refs(
    kb: KnowledgeBase, knowledge_dir: Path
) -> None:
    nice = [r.ref for r in kb.rules if r.spec.source.guideline.startswith("NICE NG59")]
    assert nice
    assert {r.url for r in nice} == {"https://www.nice.org.uk/guidance/ng59"}
    linked = [r.ref.url for r in kb.rules if r.ref.url]
    assert len(linked) > len(kb.rules) / 3
    assert all(url.startswith("https://") for url in linked)
    _edit(knowledge_dir, "rules.toml", 'url = "https://www.nice', 'url = "http://www.nice')
    with pytest.raises(KnowledgeError, match="url"):
        load_knowledge(knowledge_dir)
