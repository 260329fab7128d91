"""``Questionnaire/$populate``: which answers the record already holds, from a Pipeline result.

A recording form (the red-flag screen, the treatment-stage facts: ``[questionnaires]`` in
catalogue.toml) is pre-filled from the findings, readings and dates the record states
(``domain.forms.prefill``); an instrument (STarT Back, ODI, DN4, ...) from the latest
QuestionnaireResponse to it that the record holds. ``service.fhir.populate`` writes the answer.
"""

from __future__ import annotations

from collections.abc import Sequence

from service.app.pipeline import Pipeline, TriageResult
from service.domain.forms import prefill
from service.fhir.emit import make_id
from service.fhir.errors import InputError, Problem
from service.fhir.populate import Answer, populate_parameters
from service.fhir.types import Json

__all__ = ["populate"]


def populate(
    pipeline: Pipeline,
    questionnaire: Json,
    result: TriageResult,
    subject: str,
    ignored: Sequence[Problem] = (),
) -> Json:
    """The ``$populate`` Parameters of ``questionnaire`` for ``subject`` (``Patient/{id}``);
    ``ignored``: request parameters not used, reported in its ``issues``."""
    record = next((r for r in result.found.records if r.subject == subject), None)
    if record is None:
        raise InputError.one("processing", f"{subject} is not a patient of the data")
    answers: dict[str, Answer] = {}
    url = str(questionnaire.get("url"))
    form = pipeline.forms.get(url)
    if form is not None:
        for found in prefill(pipeline.kb, pipeline.matcher, form, record):
            answers[found.link_id] = (found.value, found.source)
    else:
        responses = [
            a for a in result.found.answers.get(subject, []) if a.questionnaire.split("|")[0] == url
        ]
        if responses:
            latest = max(responses, key=lambda a: (str(a.when or ""), a.ref))
            for link_id, value in latest.answers:
                answers.setdefault(link_id, (value, latest.ref))
    rid = make_id(str(result.bundle.get("id", "")), subject, url)
    return populate_parameters(
        questionnaire,
        answers,
        rid=rid,
        subject=subject,
        authored=result.options.as_of.isoformat(),
        ignored=ignored,
    )
