"""The patient explanation: the assessment told to the patient in plain language.

Nothing is decided here and no sentence is written here: the text is ``explanation.toml``'s, and
this module only picks the paragraphs that fit the assessment, in a fixed order. Under a stat or
urgent red flag (RULES §8) the urgent check leads and the routine steps follow as "after the
urgent check". The red-flag symptoms that need urgent help close every explanation.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.domain.assessment import Assessment
from service.domain.knowledge import KnowledgeBase
from service.domain.vocabulary import urgency_rank

__all__ = ["ExplanationSection", "PatientExplanation", "patient_explanation"]


@dataclass(frozen=True, slots=True)
class ExplanationSection:
    """One headed section: paragraphs, then a list."""

    key: str
    heading: str
    paragraphs: tuple[str, ...] = ()
    items: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PatientExplanation:
    """The whole explanation, in reading order."""

    title: str
    sections: tuple[ExplanationSection, ...]
    draft_note: str

    def text(self) -> str:
        """Plain text (the attachment of the result's DocumentReference, the CLI's output)."""
        lines = [self.title, ""]
        for section in self.sections:
            lines.append(section.heading)
            lines.extend(section.paragraphs)
            lines.extend(f"- {item}" for item in section.items)
            lines.append("")
        lines.append(self.draft_note)
        return "\n".join(lines) + "\n"


def patient_explanation(kb: KnowledgeBase, assessment: Assessment) -> PatientExplanation | None:
    """The explanation of an in-scope assessment (None for a patient out of scope)."""
    if not assessment.in_scope:
        return None
    text = kb.explanation
    heads = text.headings
    urgent = assessment.hold is not None and bool(assessment.red_flags)
    pain = assessment.value("pain-type") or "indeterminate"
    stage = assessment.value("recommended-stage") or "unknown"
    plan = [text.plan.get(stage, text.plan["unknown"])]
    plan += [text.red_flags[flag.code] for flag in assessment.red_flags]
    proposals = sorted(assessment.proposals, key=lambda p: (-urgency_rank(p.priority), p.service))
    now = [text.services[p.service] for p in proposals if not assessment.held(p.priority)]
    later = [text.services[p.service] for p in proposals if assessment.held(p.priority)]
    care = [text.activities[a.code] for a in assessment.activities if not _avoid(kb, a.code)]
    avoid = [text.activities[a.code] for a in assessment.activities if _avoid(kb, a.code)]
    if urgent:
        later += care
    else:
        now += care
    sections = [
        ExplanationSection("pain-type", heads.pain_type, (text.pain_type[pain],)),
        ExplanationSection("plan", heads.plan, tuple(plan)),
    ]
    if now:
        sections.append(ExplanationSection("steps", heads.steps, items=tuple(now)))
    if later:
        sections.append(ExplanationSection("later", heads.later, items=tuple(later)))
    if avoid:
        sections.append(ExplanationSection("avoid", heads.avoid, items=tuple(avoid)))
    urgent_help = text.urgent_help
    sections += [
        ExplanationSection(
            "urgent-help", heads.urgent_help, (urgent_help.intro,), tuple(urgent_help.symptoms)
        ),
        ExplanationSection(
            "same-day", heads.same_day, (urgent_help.also_intro,), tuple(urgent_help.also)
        ),
    ]
    return PatientExplanation(text.title, tuple(sections), text.draft_note)


def _avoid(kb: KnowledgeBase, code: str) -> bool:
    return kb.catalogue.activities[code].do_not_perform
