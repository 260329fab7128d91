"""A CDS Hooks call evaluated: the prefetch (and what was fetched) becomes a Bundle that goes
through the one evaluation path, and the result becomes the hook's cards.

https://cds-hooks.hl7.org/2.0/#calling-a-cds-service
"""

from __future__ import annotations

from datetime import datetime

from service.app.pipeline import Pipeline
from service.cds_hooks.cards import assessment_of, order_cards, patient_cards, smart_link
from service.cds_hooks.request import CdsRequest, cds_bundle
from service.fhir.types import Json
from service.fhir.validate import validate_bundle

__all__ = ["cards_for"]


_LINKED_HOOKS = ("patient-view", "order-sign")


async def cards_for(
    pipeline: Pipeline,
    cds: CdsRequest,
    resources: list[Json],
    *,
    now: datetime,
    launch_url: str | None = None,
) -> list[Json]:
    """The cards for one hook call (none when the prefetch holds nothing about the patient);
    with ``launch_url`` the patient-view and order-sign cards link to the SMART app."""
    bundle = cds_bundle(cds.patient_id, cds.fhir_server, resources)
    if not bundle["entry"]:
        return []
    check = validate_bundle(
        bundle,
        max_entries=pipeline.limits.max_entries,
        prefix="prefetch",
        relevant=pipeline.relevance,
        max_depth=pipeline.limits.max_depth,
    )
    options = pipeline.options(now=now)
    result = await pipeline.evaluate_async(
        bundle, options, selected=check.selected, warnings=check.warnings
    )
    assessment = assessment_of(result.assessments, cds.patient_id)
    if assessment is None:
        raise RuntimeError("the evaluation returned no assessment for the context patient")
    if cds.hook == "patient-view":
        cards = patient_cards(pipeline.kb, assessment, result.bundle, cds.hook_instance)
    else:
        orders = cds.draft_orders
        if cds.hook == "order-select":
            chosen = set(cds.selections)
            orders = tuple(o for o in orders if f"{o['resourceType']}/{o['id']}" in chosen)
        cards = order_cards(pipeline, result, assessment, orders, cds.hook_instance)
    if launch_url and cds.hook in _LINKED_HOOKS:
        for card in cards:
            card["links"] = [smart_link(pipeline.kb, assessment, cds.hook, launch_url)]
    return cards
