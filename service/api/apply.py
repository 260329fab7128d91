"""``PlanDefinition/$apply`` routes: thin wrappers over the Pipeline and ``service.fhir.apply``.

    POST /fhir/PlanDefinition/{id}/$apply   instance level, on PainPath's pathway
    POST /fhir/PlanDefinition/$apply        type level, naming it with planDefinition or url

The patient comes from ``data`` (a Bundle, evaluated like a ``$triage`` body) or from ``subject``
alone (pulled from the configured FHIR server exactly as ``Patient/{id}/$triage`` pulls). The
answer is the CarePlan of ``service.fhir.apply.apply_care_plan``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from service.api.access import require_read
from service.api.deps import (
    ConformanceDep,
    FhirIdPath,
    PipelineDep,
    SettingsDep,
    server_connection,
)
from service.api.observability import observe_triage
from service.api.responses import fhir_response
from service.api.routes import (
    fhir_responses,
    negotiate,
    option_parameters,
    query_options,
    read_body,
)
from service.app.pipeline import Pipeline, TriageResult, strict_validation
from service.conformance.store import ConformanceStore
from service.fhir.apply import APPLY_OPTIONS, ApplyRequest, apply_care_plan
from service.fhir.canonicals import PLAN_DEFINITION
from service.fhir.errors import InputError
from service.fhir.request import QueryOptions, check_content_type

__all__ = ["RESPONSES", "ApplyQueryDep", "evaluate_for", "read_operation", "router"]

router = APIRouter(dependencies=[Depends(negotiate)])
# $apply's and $populate's query options: $triage's that they take, read the same way
ApplyQueryDep = Annotated[QueryOptions, Depends(query_options(APPLY_OPTIONS))]
PATHWAY_ID = PLAN_DEFINITION.rsplit("/", 1)[1]

RESPONSES = fhir_responses(
    {
        200: "CarePlan with a contained RequestGroup of the proposals",
        400: "Invalid input (OperationOutcome)",
        404: "No such PlanDefinition, or the FHIR server has no such Patient (OperationOutcome)",
        406: "Accept or _format admits no FHIR JSON (OperationOutcome)",
        413: "Too large (OperationOutcome)",
        415: "Unsupported content type (OperationOutcome)",
        422: "Cannot be evaluated (OperationOutcome)",
        502: "The FHIR server failed or refused (OperationOutcome naming it)",
        504: "The FHIR server did not answer in time (OperationOutcome)",
    }
)


@router.post(
    "/fhir/PlanDefinition/$apply",
    tags=["fhir"],
    responses=RESPONSES,
    dependencies=[Depends(require_read)],
    openapi_extra=option_parameters(APPLY_OPTIONS),
)
async def apply_type(
    request: Request,
    pipeline: PipelineDep,
    settings: SettingsDep,
    conformance: ConformanceDep,
    query: ApplyQueryDep,
) -> Response:
    """Apply the PlanDefinition named by ``planDefinition`` or ``url`` to one patient."""
    apply = await read_operation(request, pipeline, settings.max_body_bytes, query)
    if apply.plan is None:
        raise InputError.one(
            "invalid",
            "At type level send planDefinition or url naming the PlanDefinition "
            f"({PLAN_DEFINITION})",
            "Parameters.parameter",
        )
    _check_canonical(apply.plan, conformance)
    return await _apply(request, pipeline, apply, query)


@router.post(
    "/fhir/PlanDefinition/{plan_id}/$apply",
    tags=["fhir"],
    responses=RESPONSES,
    dependencies=[Depends(require_read)],
    openapi_extra=option_parameters(APPLY_OPTIONS),
)
async def apply_instance(  # noqa: PLR0913 - FastAPI dependencies
    request: Request,
    *,
    pipeline: PipelineDep,
    settings: SettingsDep,
    conformance: ConformanceDep,
    plan_id: FhirIdPath,
    query: ApplyQueryDep,
) -> Response:
    """Apply PainPath's PlanDefinition ``plan_id`` to one patient."""
    if plan_id != PATHWAY_ID or conformance.read("PlanDefinition", plan_id) is None:
        raise HTTPException(404, f"PlanDefinition/{plan_id} is not known")
    apply = await read_operation(request, pipeline, settings.max_body_bytes, query)
    if apply.plan is not None:
        raise InputError.one(
            "invalid",
            "planDefinition and url are for the type level; the instance names the plan",
            "Parameters.parameter",
        )
    return await _apply(request, pipeline, apply, query)


async def read_operation(
    request: Request, pipeline: Pipeline, limit: int, query: QueryOptions, *, populate: bool = False
) -> ApplyRequest:
    """The operation's Parameters, read and validated on a worker thread (``validation`` sent
    as a query parameter applies to ``data``, unless a part overrides it)."""
    check_content_type(request.headers.get("content-type"))
    strict = strict_validation(query.options)
    body = await read_body(request, limit)
    if populate:
        return await pipeline.read_populate_async(body, strict=strict)
    return await pipeline.read_apply_async(body, strict=strict)


def _check_canonical(plan: str, conformance: ConformanceStore) -> None:
    """404 unless ``plan`` (``url`` or ``url|version``) is PainPath's pathway."""
    url, _, version = plan.partition("|")
    served = conformance.read("PlanDefinition", PATHWAY_ID)
    if url != PLAN_DEFINITION or served is None or (version and version != served["version"]):
        raise HTTPException(
            404, f"Only PainPath's PlanDefinition is applied here: {PLAN_DEFINITION}"
        )


async def _apply(
    request: Request, pipeline: Pipeline, apply: ApplyRequest, query: QueryOptions
) -> Response:
    result, subject = await evaluate_for(request, pipeline, apply, query, "PlanDefinition/$apply")
    return fhir_response(apply_care_plan(result.bundle, subject, apply.ignored))


async def evaluate_for(
    request: Request, pipeline: Pipeline, apply: ApplyRequest, query: QueryOptions, operation: str
) -> tuple[TriageResult, str]:
    """Evaluate the operation's patient: ``data`` through the Pipeline, or ``subject`` pulled
    from the FHIR server as ``Patient/{id}/$triage`` pulls it; and that patient's reference.
    The options are the query's, overridden by the body's parts, as for ``$triage``."""
    options = pipeline.options(query.options, apply.options, now=datetime.now(UTC))
    if apply.data is not None:
        data = apply.data
        result = await pipeline.evaluate_async(
            data.bundle,
            options,
            selected=data.selected,
            warnings=data.warnings,
            ignored=query.ignored,
        )
        subject = _subject_in(result, apply.subject)
    elif apply.subject is not None:
        server = server_connection(request, f"{operation} with subject and no data")
        run = await server.triage.run(
            apply.subject, options, writeback=False, ignored=query.ignored
        )
        result, subject = run.result, f"Patient/{apply.subject}"
    else:
        raise InputError.one(
            "invalid",
            "Send subject (the patient on the FHIR server) or data (a Bundle of the patient)",
            "Parameters.parameter",
        )
    observe_triage(request, result.assessments)
    return result, subject


def _subject_in(result: TriageResult, wanted: str | None) -> str:
    """The patient of ``data`` the CarePlan is for: ``subject``, or the only one."""
    subjects = [a.subject for a in result.assessments]
    if wanted is None:
        if len(subjects) != 1:
            raise InputError.one(
                "processing",
                f"data holds {len(subjects)} patients; name one with subject",
                "Parameters.parameter",
            )
        return subjects[0]
    if f"Patient/{wanted}" not in subjects:
        raise InputError.one(
            "processing", f"subject Patient/{wanted} is not a patient of data", "Parameters"
        )
    return f"Patient/{wanted}"
