"""``Questionnaire/$populate`` routes (SDC): thin wrappers over ``service.app.populate``.

    POST /fhir/Questionnaire/{id}/$populate   instance level, on a PainPath Questionnaire
    POST /fhir/Questionnaire/$populate        type level, naming it with questionnaire or canonical

The patient comes from ``data`` (a Bundle) or ``subject`` alone (pulled from the configured FHIR
server), as for ``PlanDefinition/$apply``. The answer is a Parameters with ``response`` (the
pre-filled QuestionnaireResponse) and ``issues``.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from service.api.access import require_read
from service.api.apply import RESPONSES, ApplyQueryDep, evaluate_for, read_operation
from service.api.deps import ConformanceDep, FhirIdPath, PipelineDep, SettingsDep
from service.api.responses import fhir_response
from service.api.routes import negotiate, option_parameters
from service.app.populate import populate
from service.conformance.store import ConformanceStore
from service.fhir.apply import APPLY_OPTIONS
from service.fhir.errors import InputError
from service.fhir.types import Json

__all__ = ["router"]

router = APIRouter(dependencies=[Depends(negotiate)])


@router.post(
    "/fhir/Questionnaire/$populate",
    tags=["fhir"],
    responses=RESPONSES,
    dependencies=[Depends(require_read)],
    openapi_extra=option_parameters(APPLY_OPTIONS),
)
async def populate_type(
    request: Request,
    pipeline: PipelineDep,
    settings: SettingsDep,
    conformance: ConformanceDep,
    query: ApplyQueryDep,
) -> Response:
    """Pre-fill the Questionnaire named by ``questionnaire`` or ``canonical`` for one patient."""
    operation = await read_operation(
        request, pipeline, settings.max_body_bytes, query, populate=True
    )
    if operation.plan is None:
        raise InputError.one(
            "invalid",
            "At type level send questionnaire or canonical naming a PainPath Questionnaire",
            "Parameters.parameter",
        )
    questionnaire = _by_canonical(operation.plan, conformance)
    result, subject = await evaluate_for(
        request, pipeline, operation, query, "Questionnaire/$populate"
    )
    return fhir_response(populate(pipeline, questionnaire, result, subject, query.ignored))


@router.post(
    "/fhir/Questionnaire/{questionnaire_id}/$populate",
    tags=["fhir"],
    responses=RESPONSES,
    dependencies=[Depends(require_read)],
    openapi_extra=option_parameters(APPLY_OPTIONS),
)
async def populate_instance(  # noqa: PLR0913 - FastAPI dependencies
    request: Request,
    *,
    pipeline: PipelineDep,
    settings: SettingsDep,
    conformance: ConformanceDep,
    questionnaire_id: FhirIdPath,
    query: ApplyQueryDep,
) -> Response:
    """Pre-fill PainPath's Questionnaire ``questionnaire_id`` for one patient."""
    questionnaire = conformance.read("Questionnaire", questionnaire_id)
    if questionnaire is None:
        raise HTTPException(404, f"Questionnaire/{questionnaire_id} is not known")
    operation = await read_operation(
        request, pipeline, settings.max_body_bytes, query, populate=True
    )
    if operation.plan is not None:
        raise InputError.one(
            "invalid",
            "questionnaire and canonical are for the type level; the instance names it",
            "Parameters.parameter",
        )
    result, subject = await evaluate_for(
        request, pipeline, operation, query, "Questionnaire/$populate"
    )
    return fhir_response(populate(pipeline, questionnaire, result, subject, query.ignored))


def _by_canonical(value: str, conformance: ConformanceStore) -> Json:
    url, _, version = value.partition("|")
    for found in conformance.search("Questionnaire", url):
        if not version or found.get("version") == version:
            return found
    raise HTTPException(
        404, "No PainPath Questionnaire has this canonical (GET /fhir/Questionnaire)"
    )
