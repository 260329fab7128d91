"""The red-flag screen: a Questionnaire whose items are the findings that document the screen.

Its items are the prompts the catalogue lists for an undocumented red-flag screen
(``[what_would_change.red-flag-screen-not-documented]``, RULES §9): each item's linkId is the
prompt's code, and a yes or no answer is a finding present or screened absent, exactly as if the
integrator had sent an Observation with ``valueBoolean``. So a completed screen posted back to
``$triage`` documents the screen, and the engine needs no special case.

:func:`prefill_screen` goes the other way for ``Questionnaire/$populate``: for each item, the
latest item of the record that yields the item's concept, with its reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from service.domain.facts import Matcher
from service.domain.instruments import NO_CODES, YES_CODES
from service.domain.knowledge import KnowledgeBase, Prompt
from service.domain.model import Code, Item, Origin, PatientRecord, Polarity, QuestionnaireAnswers

__all__ = ["RED_FLAG_SCREEN", "Prefilled", "prefill_screen", "screen_items", "screen_prompts"]

RED_FLAG_SCREEN = "red-flag-screen"  # the Questionnaire id
_SCREEN_NOTE = "red-flag-screen-not-documented"
_EARLIEST = datetime.min


@dataclass(frozen=True, slots=True)
class Prefilled:
    """One pre-filled answer and the input item it came from."""

    link_id: str
    value: bool
    source: str  # the item's reference (``Type/id`` as the input names it)


def screen_prompts(kb: KnowledgeBase) -> list[Prompt]:
    """The screen's items, in order."""
    return list(kb.catalogue.what_would_change[_SCREEN_NOTE].prompts)


def _code(kb: KnowledgeBase, prompt: Prompt) -> Code:
    return Code(kb.valuesets.systems[prompt.system], prompt.code)


def screen_items(
    kb: KnowledgeBase, responses: Sequence[QuestionnaireAnswers], canonical: str
) -> tuple[list[Item], list[QuestionnaireAnswers]]:
    """The findings the screen responses (``canonical``, ``|version`` ignored) record, and the
    other responses (for instrument scoring). A non-boolean answer is not a finding."""
    prompts = {p.code: p for p in screen_prompts(kb)}
    items: list[Item] = []
    others: list[QuestionnaireAnswers] = []
    for response in responses:
        if response.questionnaire.split("|")[0] != canonical:
            others.append(response)
            continue
        for link_id, value in response.answers:
            prompt = prompts.get(link_id)
            answer = _yes_no(value)
            if prompt is None or answer is None:
                continue
            items.append(
                Item(
                    ref=response.ref,
                    origin=Origin.QUESTIONNAIRE,
                    codes=(_code(kb, prompt),),
                    text=prompt.text,
                    polarity=Polarity.PRESENT if answer else Polarity.ABSENT,
                    when=response.when,
                )
            )
    return items, others


def _yes_no(value: str | float | bool) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in YES_CODES | NO_CODES:
        return value.lower() in YES_CODES
    return None


def prefill_screen(kb: KnowledgeBase, matcher: Matcher, record: PatientRecord) -> list[Prefilled]:
    """The screen's answers the record already holds (the latest item per finding)."""
    found: list[Prefilled] = []
    for prompt in screen_prompts(kb):
        concept = matcher.concept_of(_code(kb, prompt))
        candidates = [
            item
            for item in record.items
            if item.polarity in (Polarity.PRESENT, Polarity.ABSENT)
            and any(f.concept == concept for f in matcher.match(item)[0])
        ]
        if concept is None or not candidates:
            continue
        latest = max(candidates, key=lambda i: (_naive(i.when or i.recorded), i.ref))
        found.append(Prefilled(prompt.code, latest.polarity is Polarity.PRESENT, latest.ref))
    return found


def _naive(moment: datetime | None) -> datetime:
    return _EARLIEST if moment is None else moment.replace(tzinfo=None)
