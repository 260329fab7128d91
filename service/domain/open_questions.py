"""What would change the decision (RULES §9): the findings that would settle each decision the
rules left open - an ``insufficient-data`` conclusion, or an undocumented red-flag screen - as
the catalogue lists them for the rule or note that left it open."""

from __future__ import annotations

from service.domain.assessment import Assessment
from service.domain.knowledge import KnowledgeBase, WhatWouldChange

__all__ = ["open_forms", "open_questions"]

_OPEN = "insufficient-data"


def open_questions(kb: KnowledgeBase, assessment: Assessment) -> list[WhatWouldChange]:
    """The catalogue entries for the open decisions of an assessment, in a stable order."""
    table = kb.catalogue.what_would_change
    keys = [c.rule.id for _, c in sorted(assessment.slots.items()) if c.value == _OPEN]
    keys += [note.code for note in assessment.notes]
    found: list[WhatWouldChange] = []
    for key in dict.fromkeys(keys):
        entry = table.get(key)
        if entry is not None and entry not in found:
            found.append(entry)
    return found


def open_forms(kb: KnowledgeBase, assessment: Assessment) -> list[str]:
    """The PainPath Questionnaires (ids) that record the open prompts, in prompt order."""
    forms = [
        prompt.questionnaire
        for entry in open_questions(kb, assessment)
        for prompt in entry.prompts
        if prompt.questionnaire
    ]
    return list(dict.fromkeys(forms))
