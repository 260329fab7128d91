"""``Questionnaire/$populate`` (SDC): a QuestionnaireResponse pre-filled from the record.

http://hl7.org/fhir/uv/sdc/OperationDefinition/Questionnaire-populate. The answer is a Parameters
with ``response`` (the QuestionnaireResponse, status ``in-progress``) and ``issues`` (an
OperationOutcome saying how many items were pre-filled). Every pre-filled answer carries the
extension ``ANSWER_SOURCE`` (valueReference) naming the input entry it came from, so a clinician
can see where each answer was read before confirming it. Items the record does not answer are
left out for the clinician to fill in; groups appear when one of their items is answered.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from service.fhir.errors import Problem
from service.fhir.narrative import summary_narrative
from service.fhir.outcome import issue, operation_outcome
from service.fhir.systems import BASE
from service.fhir.types import Json

__all__ = ["ANSWER_SOURCE", "Answer", "answer_value", "populate_parameters"]

ANSWER_SOURCE = f"{BASE}/StructureDefinition/answer-source"
Value = str | float | bool | datetime
Answer = tuple[Value, str]  # the value as read, and the reference of its source


def answer_value(item: Json, value: Value) -> Json | None:
    """The ``value[x]`` of an answer to ``item`` (its type and answer options), or None."""
    kind = item.get("type")
    if kind == "boolean" and isinstance(value, bool):
        return {"valueBoolean": value}
    if kind == "integer" and isinstance(value, float | int) and not isinstance(value, bool):
        return {"valueInteger": int(value)}
    if kind == "decimal" and isinstance(value, float | int) and not isinstance(value, bool):
        return {"valueDecimal": float(value)}
    if kind == "dateTime" and isinstance(value, datetime):
        return {"valueDateTime": value.isoformat()}
    if kind in ("choice", "open-choice"):
        for option in item.get("answerOption", ()):
            coding = option.get("valueCoding") or {}
            if str(coding.get("code")) == str(value):
                return {"valueCoding": coding}
    return None


def _items(items: list[Json], answers: dict[str, Answer]) -> list[Json]:
    out: list[Json] = []
    for item in items:
        entry: Json = {"linkId": item["linkId"]}
        if item.get("text"):
            entry["text"] = item["text"]
        found = answers.get(item["linkId"])
        value = answer_value(item, found[0]) if found else None
        children = _items(item.get("item", []), answers)
        if value is not None and found is not None:
            source = {"url": ANSWER_SOURCE, "valueReference": {"reference": found[1]}}
            entry["answer"] = [{"extension": [source], **value}]
        if children:
            entry["item"] = children
        if "answer" in entry or children:
            out.append(entry)
    return out


def _lines(items: list[Json]) -> list[str]:
    """One line per pre-filled answer, with the entry it came from (dom-6: a narrative)."""
    lines = []
    for item in items:
        for answer in item.get("answer", ()):
            value = next(v for k, v in answer.items() if k.startswith("value"))
            shown = value.get("display") or value.get("code") if isinstance(value, dict) else value
            source = answer["extension"][0]["valueReference"]["reference"]
            lines.append(f"{item.get('text', item['linkId'])}: {shown} (from {source})")
        lines += _lines(item.get("item", []))
    return lines


def _count(items: list[Json]) -> int:
    return sum(("answer" in i) + _count(i.get("item", [])) for i in items)


def _questions(items: list[Json]) -> int:
    return sum((i.get("type") != "group") + _questions(i.get("item", [])) for i in items)


def populate_parameters(  # noqa: PLR0913 - the answer's parts, by keyword
    questionnaire: Json,
    answers: dict[str, Answer],
    *,
    rid: str,
    subject: str,
    authored: str,
    ignored: Sequence[Problem] = (),
) -> Json:
    """The ``$populate`` output Parameters for one subject (``ignored``: request parameters not
    used, a ``warning`` each in ``issues``)."""
    items = _items(questionnaire.get("item", []), answers)
    title = str(questionnaire.get("title") or questionnaire["url"])
    response: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "id": rid,
        "text": summary_narrative(
            f"{title}: pre-filled from the record",
            _lines(items)
            or ["Nothing in the record answers it yet: every item is the clinician's."],
        ),
        "questionnaire": questionnaire["url"],
        "status": "in-progress",
        "subject": {"reference": subject},
        "authored": authored,
    }
    if items:
        response["item"] = items
    filled, total = _count(items), _questions(questionnaire.get("item", []))
    outcome = operation_outcome(
        None,
        [
            *(issue("warning", "not-supported", p.diagnostics, expression=p.expression)
              for p in ignored),
            issue(
                "information",
                "informational",
                f"{filled} of {total} items pre-filled from the record (each answer names its "
                f"source in the {ANSWER_SOURCE} extension); the others are for the clinician.",
            ),
        ],
    )  # fmt: skip
    return {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "response", "resource": response},
            {"name": "issues", "resource": outcome},
        ],
    }
