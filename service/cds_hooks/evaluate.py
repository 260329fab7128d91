"""A CDS Hooks call evaluated: the prefetch (and what was fetched) becomes a Bundle that goes
through the one evaluation path, and the result becomes the hook's cards.

https://cds-hooks.hl7.org/2.0/#calling-a-cds-service
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from service.app.pipeline import Pipeline, TriageResult
from service.app.populate import populate
from service.cds_hooks.cards import (
    assessment_of,
    order_cards,
    patient_cards,
    record_suggestion,
    smart_link,
)
from service.cds_hooks.request import CdsBundle, CdsRequest, Sourced, cds_bundle
from service.domain.assessment import Assessment
from service.domain.open_questions import open_forms
from service.fhir.errors import InputError
from service.fhir.types import Json
from service.fhir.validate import BundleCheck, validate_bundle

__all__ = ["CardLinks", "cards_for"]


_LINKED_HOOKS = ("patient-view", "order-sign")


@dataclass(frozen=True, slots=True)
class CardLinks:
    """Where cards lead. ``launch_url``: the patient-view and order-sign cards link to the
    SMART app. ``questionnaire`` (a PainPath Questionnaire by id): the patient-view card
    suggests recording what would change the decision - each Questionnaire the open prompts
    name, pre-filled by ``Questionnaire/$populate`` from the same evaluation."""

    launch_url: str | None = None
    questionnaire: Callable[[str], Json | None] | None = None


async def cards_for(
    pipeline: Pipeline,
    cds: CdsRequest,
    resources: list[Sourced],
    *,
    now: datetime,
    links: CardLinks | None = None,
) -> list[Json]:
    """The cards for one hook call (none when the prefetch holds no data), with what ``links``
    asks for."""
    links = links or CardLinks()
    built = cds_bundle(cds.patient_id, cds.fhir_server, resources)
    bundle = built.bundle
    if not bundle["entry"]:
        return []
    check = _validated(pipeline, built)
    options = pipeline.options(now=now)
    result = await pipeline.evaluate_async(
        bundle, options, selected=check.selected, warnings=check.warnings
    )
    assessment = assessment_of(result.assessments, cds.patient_id)
    if assessment is None:
        raise RuntimeError("the evaluation returned no assessment for the context patient")
    if cds.hook == "patient-view":
        cards = patient_cards(pipeline.kb, assessment, result.bundle, cds.hook_instance)
        if cards and links.questionnaire is not None:
            _suggest_records(pipeline, result, assessment, cards[0], links.questionnaire)
    else:
        orders = cds.draft_orders
        if cds.hook == "order-select":
            chosen = set(cds.selections)
            orders = tuple(o for o in orders if f"{o['resourceType']}/{o['id']}" in chosen)
        cards = order_cards(pipeline, result, assessment, orders, cds.hook_instance)
    if links.launch_url and cds.hook in _LINKED_HOOKS:
        for card in cards:
            card["links"] = [smart_link(pipeline.kb, assessment, cds.hook, links.launch_url)]
    return cards


def _validated(pipeline: Pipeline, built: CdsBundle) -> BundleCheck:
    """``validate_bundle`` on the Bundle built from the prefetch, every problem and warning
    named by the resource's path in the request (``prefetch.conditions.entry[0].resource…``)."""
    try:
        check = validate_bundle(
            built.bundle,
            max_entries=pipeline.limits.max_entries,
            prefix="Bundle",
            relevant=pipeline.relevance,
            max_depth=pipeline.limits.max_depth,
        )
    except InputError as exc:
        raise InputError(exc.kind, built.in_request(exc.problems)) from None
    return replace(check, warnings=tuple(built.in_request(check.warnings)))


def _suggest_records(
    pipeline: Pipeline,
    result: TriageResult,
    assessment: Assessment,
    card: Json,
    questionnaire: Callable[[str], Json | None],
) -> None:
    """RULES §9 on the card: a suggestion per Questionnaire the open prompts name, creating it
    pre-filled (``$populate`` on the same evaluation)."""
    for form in open_forms(pipeline.kb, assessment):
        found = questionnaire(form)
        if found is not None:
            response = populate(pipeline, found, result, assessment.subject)
            record_suggestion(pipeline.kb, card, form, response["parameter"][0]["resource"])
