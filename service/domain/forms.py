"""PainPath's recording forms: Questionnaires whose items are the findings that would change the
decision (RULES §9).

``catalogue.toml`` ``[questionnaires]`` lists the forms (the red-flag screen, the treatment-stage
facts); a form's items are the ``what_would_change`` prompts that name it with ``questionnaire``,
in catalogue order, one per code. Each item's linkId is the prompt's code, and its answer type
follows the concept the code belongs to: yes/no for a finding (present or screened absent), a
number for a score or a quantity (read in the concept's unit), a date for a datetime concept
(the symptom onset). So an answered form posted back to ``$triage`` is exactly the findings it
records - as if the integrator had sent an Observation with that code and value - and the engine
needs no special case.

:func:`prefill` goes the other way for ``Questionnaire/$populate``: for each item, what the record
already says, with the reference of the entry it came from (the latest statement of a finding or
reading, the earliest date of a datetime concept - as the engine reads them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from service.domain.facts import Fact, Matcher
from service.domain.instruments import NO_CODES, YES_CODES
from service.domain.knowledge import KnowledgeBase
from service.domain.model import Code, Item, Origin, PatientRecord, Polarity, QuestionnaireAnswers

__all__ = [
    "RED_FLAG_SCREEN",
    "FormItem",
    "Prefilled",
    "form_findings",
    "form_items",
    "prefill",
    "questionnaire_title",
]

RED_FLAG_SCREEN = "red-flag-screen"  # the red-flag screen's Questionnaire id
_EARLIEST = datetime.min
Kind = Literal["boolean", "integer", "decimal", "dateTime"]
Value = bool | float | datetime
_KINDS: dict[str, Kind] = {"integer": "integer", "quantity": "decimal", "datetime": "dateTime"}


@dataclass(frozen=True, slots=True)
class FormItem:
    """One item of a form: the prompt, the code it records and how it is answered."""

    link_id: str
    text: str
    code: Code
    concept: str
    kind: Kind  # the Questionnaire item type
    unit: str | None = None  # the concept's canonical unit (a quantity)
    range: tuple[float, float] | None = None


@dataclass(frozen=True, slots=True)
class Prefilled:
    """One pre-filled answer and the input item it came from."""

    link_id: str
    value: Value
    source: str  # the item's reference (``Type/id`` as the input names it)


def questionnaire_title(kb: KnowledgeBase, questionnaire: str) -> str:
    """The title of a PainPath Questionnaire a prompt names (a form or an instrument)."""
    form = kb.catalogue.questionnaires.get(questionnaire)
    return form.title if form else kb.scoring.instruments[questionnaire].title


def form_items(kb: KnowledgeBase, form: str) -> list[FormItem]:
    """The items of a form, in catalogue order (one per code)."""
    concepts = {
        (entry.system, entry.code): name
        for name, concept in kb.valuesets.concepts.items()
        for entry in concept.codes
    }
    items: dict[str, FormItem] = {}
    for entry in kb.catalogue.what_would_change.values():
        for prompt in entry.prompts:
            if prompt.questionnaire != form or prompt.code in items:
                continue
            name = concepts[(prompt.system, prompt.code)]  # the loader checked it is listed
            concept = kb.valuesets.concepts[name]
            items[prompt.code] = FormItem(
                prompt.code,
                prompt.text,
                Code(kb.valuesets.systems[prompt.system], prompt.code),
                name,
                _KINDS.get(concept.value_type or "boolean", "boolean"),
                concept.unit,
                concept.range,
            )
    return list(items.values())


def form_findings(
    kb: KnowledgeBase, responses: Sequence[QuestionnaireAnswers], forms: Mapping[str, str]
) -> tuple[list[Item], list[QuestionnaireAnswers]]:
    """The findings the responses to a form record (``forms``: canonical -> form id, a
    ``|version`` suffix ignored), and the other responses (for instrument scoring). An answer
    of the wrong type for its item, or to no item, is no finding."""
    items: list[Item] = []
    others: list[QuestionnaireAnswers] = []
    for response in responses:
        form = forms.get(response.questionnaire.split("|")[0])
        if form is None:
            others.append(response)
            continue
        by_link = {i.link_id: i for i in form_items(kb, form)}
        for link_id, value in response.answers:
            item = by_link.get(link_id)
            if item is not None:
                items += _finding(item, value, response)
        for link_id, moment in response.dates:
            item = by_link.get(link_id)
            if item is not None and item.kind == "dateTime":
                items.append(_item(item, response, when=moment))
    return items, others


def _item(
    form_item: FormItem,
    response: QuestionnaireAnswers,
    *,
    polarity: Polarity = Polarity.PRESENT,
    value: float | None = None,
    when: datetime | None = None,
) -> Item:
    """The finding an answer records; a dated answer (the onset) is dated by its value and
    recorded when the response was authored, any other answer is dated by the response."""
    return Item(
        ref=response.ref,
        origin=Origin.QUESTIONNAIRE,
        codes=(form_item.code,),
        text=form_item.text,
        polarity=polarity,
        value=value,
        unit=form_item.unit if value is not None else None,
        when=when or response.when,
        recorded=response.when if when else None,
    )


def _finding(
    item: FormItem, value: str | float | bool, response: QuestionnaireAnswers
) -> list[Item]:
    if item.kind == "boolean":
        answer = _yes_no(value)
        if answer is None:
            return []
        polarity = Polarity.PRESENT if answer else Polarity.ABSENT
        return [_item(item, response, polarity=polarity)]
    if item.kind != "dateTime" and not isinstance(value, bool | str):
        return [_item(item, response, value=float(value))]
    return []


def _yes_no(value: str | float | bool) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in YES_CODES | NO_CODES:
        return value.lower() in YES_CODES
    return None


def prefill(
    kb: KnowledgeBase, matcher: Matcher, form: str, record: PatientRecord
) -> list[Prefilled]:
    """The form's answers the record already holds, each with the entry it came from."""
    items = form_items(kb, form)
    by_concept: dict[str, list[Fact]] = {item.concept: [] for item in items}
    for entry in record.items:  # one pass over the record, whatever the form's size
        for fact in matcher.match(entry)[0]:
            if fact.concept in by_concept:
                by_concept[fact.concept].append(fact)
    found = [_prefilled(item, by_concept[item.concept]) for item in items]
    return [answer for answer in found if answer is not None]


def _prefilled(item: FormItem, facts: list[Fact]) -> Prefilled | None:
    if item.kind == "dateTime":
        dated = [(f.item.when, f.item.ref) for f in facts if f.item.when is not None]
        if not dated:
            return None
        moment, ref = min(dated, key=lambda pair: (_naive(pair[0]), pair[1]))
        return Prefilled(item.link_id, moment, ref)
    if item.kind == "boolean":
        stated = [f.item for f in facts if f.item.polarity in (Polarity.PRESENT, Polarity.ABSENT)]
        if not stated:
            return None
        last = max(stated, key=lambda i: (_naive(i.when or i.recorded), i.ref))
        return Prefilled(item.link_id, last.polarity is Polarity.PRESENT, last.ref)
    readings = [
        (_naive(f.item.when or f.item.recorded), f.item.ref, value)
        for f in facts
        if (value := f.item.value) is not None and f.item.comparator is None
    ]
    if not readings:
        return None
    _, source, reading = max(readings, key=lambda r: (r[0], r[1]))
    return Prefilled(item.link_id, reading, source)


def _naive(moment: datetime | None) -> datetime:
    return _EARLIEST if moment is None else moment.replace(tzinfo=None)
