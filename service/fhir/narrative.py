"""Human-readable narratives (FHIR XHTML) for every resource of the result Bundle: the CarePlan
and DetectedIssues in full, the Observations, ServiceRequests, Provenance and OperationOutcomes
as a heading and the lines their own elements carry (the same trace, in words).

Only elements the R4 narrative rules allow are used (div, p, b, ul, li), all text is escaped, and
the layout is built for a ten-second read: pain type and certainty, red flags first in bold, the
stage ladder with the recommended stage, each proposal with its reason, then missing data.
Rules: https://hl7.org/fhir/R4/narrative.html#xhtml.
"""

from __future__ import annotations

from html import escape
from typing import Any

from service.domain.assessment import Assessment, Finding
from service.domain.explanation import PatientExplanation
from service.domain.forms import questionnaire_title
from service.domain.knowledge import KnowledgeBase, Prompt, WhatWouldChange
from service.domain.open_questions import open_questions
from service.domain.vocabulary import STAGES, urgency_rank
from service.fhir.canonicals import canonical

__all__ = [
    "careplan_narrative", "explanation_narrative", "issue_narrative", "narrated",
    "summary_narrative",
]  # fmt: skip

_XHTML = "http://www.w3.org/1999/xhtml"


def _div(parts: list[str]) -> dict[str, Any]:
    return {"status": "generated", "div": f'<div xmlns="{_XHTML}">{"".join(parts)}</div>'}


def _list(lines: list[str]) -> str:
    return "<ul>" + "".join(f"<li>{line}</li>" for line in lines) + "</ul>" if lines else ""


def _label(kb: KnowledgeBase, system: str, code: str | None) -> str:
    return escape(kb.catalogue.displays.get(system, {}).get(code or "", code or "unknown"))


def _based_on(assessment: Assessment, kb: KnowledgeBase) -> str:
    """Titles of the findings behind the pain type and certainty, text matches marked."""
    concepts = kb.valuesets.concepts
    titles: dict[str, bool] = {}
    for slot in ("pain-type", "certainty"):
        for item in assessment.slots[slot].evidence:
            if item.concept in concepts:
                title = concepts[item.concept].title
                titles[title] = titles.get(title, False) or item.lower_certainty
    named = [f"{t} (from free text)" if weak else t for t, weak in sorted(titles.items())]
    return f" Based on: {escape('; '.join(named))}." if named else ""


def _header(assessment: Assessment, kb: KnowledgeBase) -> str:
    pain = assessment.value("pain-type")
    certainty = assessment.value("certainty")
    why = escape(assessment.slots["pain-type"].reason)
    return (
        f"<p><b>Pain type: {_label(kb, 'pain-type', pain)}</b> (neuropathic component: "
        f"{_label(kb, 'neuropathic-certainty', certainty)}). {why}."
        f"{_based_on(assessment, kb)}</p>"
    )


def _flags(assessment: Assessment, kb: KnowledgeBase) -> str:
    titles = kb.catalogue.red_flags
    lines = [
        f"<b>{escape(titles[flag.code].title)}</b>: {escape(' '.join(flag.reasons))}"
        for flag in assessment.red_flags
    ]
    return ("<p><b>Red flags</b></p>" + _list(lines)) if lines else "<p>No red flag found.</p>"


def _medication_safety(assessment: Assessment, kb: KnowledgeBase) -> str:
    """The medication-safety findings (rule set 2027.1), each with what it rests on."""
    issues = kb.catalogue.medication_issues
    lines = []
    for finding in assessment.medication_issues:
        definition = issues[finding.code]
        doses = "; ".join(
            sorted({e.value for e in finding.evidence if e.value and "MME" in e.value})
        )
        lines.append(
            f"<b>{escape(definition.title)}</b> ({escape(definition.severity)}): "
            f"{escape(definition.mitigation)}" + (f" [{escape(doses)}]" if doses else "")
        )
    return ("<p><b>Medication safety</b></p>" + _list(lines)) if lines else ""


def _ladder(assessment: Assessment, kb: KnowledgeBase) -> str:
    recommended = assessment.value("recommended-stage")
    lines = []
    for stage in STAGES:
        conclusion = assessment.slots[f"stage:{stage}"]
        mark = " <b>(recommended)</b>" if stage == recommended else ""
        lines.append(
            f"{_label(kb, 'treatment-stage', stage)}: "
            f"{_label(kb, 'eligibility', conclusion.value)}{mark} - {escape(conclusion.reason)}"
            + (_injection_detail(assessment, kb) if stage == "injection" else "")
        )
    if recommended == "urgent-referral":
        lines.insert(0, "<b>Urgent referral (red flag)</b>")
    return "<p><b>Treatment stages</b></p>" + _list(lines)


def _injection_detail(assessment: Assessment, kb: KnowledgeBase) -> str:
    parts = []
    for slot, name in (("esi", "epidural"), ("mbb", "medial branch block")):
        conclusion = assessment.slots.get(slot)
        if conclusion is not None:
            value = _label(kb, "eligibility", conclusion.value)
            parts.append(f"{name}: {value} ({escape(conclusion.reason)})")
    return (" [" + "; ".join(parts) + "]") if parts else ""


def _proposals(assessment: Assessment, kb: KnowledgeBase) -> str:
    held = f" - {kb.catalogue.hold.status_reason.lower()}" if assessment.hold else ""
    lines = [
        f"<b>{escape(kb.catalogue.services[p.service].title)}</b> ({escape(p.priority)}"
        f"{escape(held) if assessment.held(p.priority) else ''}): {escape(p.reasons[0])}"
        for p in sorted(assessment.proposals, key=lambda p: (-urgency_rank(p.priority), p.service))
    ]
    care = []
    for activity in assessment.activities:
        definition = kb.catalogue.activities[activity.code]
        if definition.do_not_perform:
            lines.append(f"<b>Do not:</b> {escape(activity.reasons[0])}")
        else:
            care.append(escape(definition.title))
    if care:
        lines.append(f"Self-management and care activities{escape(held)}: " + "; ".join(care))
    return "<p><b>Proposals</b></p>" + _list(lines)


def _missing(assessment: Assessment, kb: KnowledgeBase) -> str:
    lines = [
        f"{_label(kb, 'treatment-stage', name.removeprefix('stage:'))}: {escape(c.reason)}"
        for name, c in sorted(assessment.slots.items())
        if c.value == "insufficient-data" and name.startswith("stage:")
    ]
    lines += [escape(note.reasons[0]) for note in assessment.notes if note.code.endswith("unknown")]
    return ("<p><b>Missing data</b></p>" + _list(lines)) if lines else ""


def describe(entry: WhatWouldChange, kb: KnowledgeBase) -> str:
    """``About: prompt (system|code); prompt (…)`` for an OperationOutcome or a card."""
    prompts = "; ".join(f"{p.text} ({_prompt_code(p, kb)})" for p in entry.prompts)
    return f"What would change the decision - {entry.about}: {prompts}"


def _prompt_code(prompt: Prompt, kb: KnowledgeBase) -> str:
    code = f"{kb.valuesets.systems[prompt.system]}|{prompt.code}"
    form = prompt.questionnaire
    return code + (f", Questionnaire {canonical('Questionnaire', form)}" if form else "")


def _what_would_change(assessment: Assessment, kb: KnowledgeBase) -> str:
    lines = []
    for entry in open_questions(kb, assessment):
        forms = dict.fromkeys(p.questionnaire for p in entry.prompts if p.questionnaire)
        recorded = "; ".join(
            f"{escape(questionnaire_title(kb, f))} ({escape(canonical('Questionnaire', f))})"
            for f in forms
        )
        lines.append(
            f"<b>{escape(entry.about)}</b>: "
            + "; ".join(escape(p.text) for p in entry.prompts)
            + (f". Record with: {recorded}" if recorded else "")
        )
    return ("<p><b>What would change the decision</b></p>" + _list(lines)) if lines else ""


def careplan_narrative(assessment: Assessment, kb: KnowledgeBase) -> dict[str, Any]:
    """The CarePlan's narrative. Under a stat or urgent red flag (``assessment.hold``) the flag
    is its headline and the pain type follows it (RULES §8): one decision, read first."""
    head = [_header(assessment, kb), _flags(assessment, kb)]
    return _div(
        [
            *(reversed(head) if assessment.hold else head),
            _medication_safety(assessment, kb),
            _ladder(assessment, kb),
            _proposals(assessment, kb),
            _missing(assessment, kb),
            _what_would_change(assessment, kb),
            "<p>Proposal only: a clinician decides.</p>",
        ]
    )


def issue_narrative(title: str, flag: Finding) -> dict[str, Any]:
    """A DetectedIssue's narrative."""
    evidence = [escape(f"{e.concept}: {e.value} ({e.ref})") for e in flag.evidence]
    return _div(
        [
            f"<p><b>{escape(title)}</b></p>",
            f"<p>{escape(' '.join(flag.reasons))}</p>",
            _list(evidence),
        ]
    )


def explanation_narrative(explanation: PatientExplanation) -> dict[str, Any]:
    """The patient explanation as narrative: title, then each section's heading, paragraphs and
    list, as the patient reads it."""
    parts = [f"<p><b>{escape(explanation.title)}</b></p>"]
    for section in explanation.sections:
        parts.append(f"<p><b>{escape(section.heading)}</b></p>")
        parts += [f"<p>{escape(text)}</p>" for text in section.paragraphs]
        parts.append(_list([escape(item) for item in section.items]))
    parts.append(f"<p>{escape(explanation.draft_note)}</p>")
    return _div(parts)


def summary_narrative(heading: str, lines: list[str]) -> dict[str, Any]:
    """A narrative of a bold heading and a list of lines (all text escaped here)."""
    return _div([f"<p><b>{escape(heading)}</b></p>", _list([escape(line) for line in lines])])


_BEFORE_TEXT = ("resourceType", "id", "meta", "implicitRules", "language")


def narrated(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource with a generated narrative if it has none (dom-6), placed where R4 puts
    ``text``: the heading is its title (or name, or type and id), the line its description or
    the words of its code."""
    if "text" in resource:
        return resource
    heading = resource.get("title") or resource.get("name")
    if not isinstance(heading, str):
        heading = f"{resource['resourceType']} {resource.get('id', '')}".strip()
    lines = [resource["description"]] if isinstance(resource.get("description"), str) else []
    code = resource.get("code")
    if not lines and isinstance(code, dict):
        words = code.get("text") or next(
            (c.get("display") for c in code.get("coding", []) if c.get("display")), None
        )
        lines = [words] if isinstance(words, str) else []
    out = {k: resource[k] for k in _BEFORE_TEXT if k in resource}
    out["text"] = summary_narrative(heading, lines)
    out.update((k, v) for k, v in resource.items() if k not in out)
    return out
