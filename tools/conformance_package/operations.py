"""The OperationDefinition of ``$triage`` (https://hl7.org/fhir/R4/operationdefinition.html).

One definition for both levels docs/interface.md names: ``POST /fhir/$triage`` (system) and
``POST /fhir/Patient/{id}/$triage`` (instance). Its parameters are the Parameters parts and query
parameters of docs/interface.md; the single ``return`` out-parameter is the result Bundle.
"""

from __future__ import annotations

from service.fhir.canonicals import value_set
from tools.conformance_package.common import Json, Meta

__all__ = ["operation_definitions"]

_COMMENT = (
    "Errors carry an OperationOutcome: 400 (not JSON, not FHIR, FHIR-invalid), 413 (too large), "
    "415 (content type), 422 (valid FHIR that cannot be evaluated, e.g. no patient; at Patient "
    "level also: no FHIR server configured). The same input and `asOf` give the same Bundle."
)


def _param(name: str, use: str, ptype: str, documentation: str, *, least: int = 0) -> Json:
    return {
        "name": name,
        "use": use,
        "min": least,
        "max": "1",
        "documentation": documentation,
        "type": ptype,
    }


def _parameters() -> list[Json]:
    profile = _param("profile", "in", "code", "Guideline profile; default `nice-ng59`.")
    profile["binding"] = {"strength": "required", "valueSet": value_set("painpath-meta")}
    validation = _param(
        "validation",
        "in",
        "code",
        "`lenient` (default): an entry of a resource type PainPath does not read (a Claim, an "
        "Encounter) that is not valid R4 is reported as a `warning` issue with its expression "
        "in the result's OperationOutcome and the request is evaluated; `strict`: it is refused "
        "with a 400 like an invalid entry PainPath reads.",
    )
    return [
        _param(
            "bundle",
            "in",
            "Bundle",
            "System level: the patient data (a collection, "
            "transaction, batch, searchset or document Bundle); it may also be POSTed as the "
            "body itself. Not used at Patient level, where the data come from the FHIR server "
            "named by PAINPATH_FHIR_SERVER.",
        ),
        _param("asOf", "in", "dateTime", "Evaluation date; default: now."),
        profile,
        _param(
            "return",
            "in",
            "code",
            "`collection` (default) or `transaction`: a transaction "
            "Bundle of conditional creates keyed on the result identifiers.",
        ),
        validation,
        _param(
            "writeback",
            "in",
            "boolean",
            "Patient level only: also write the results to the "
            "FHIR server in one transaction; a re-run replaces the earlier plan.",
        ),
        _param(
            "return",
            "out",
            "Bundle",
            "The result Bundle: per patient a "
            "pain-type Observation, a stage-eligibility Observation, a CarePlan, "
            "ServiceRequests, DetectedIssues, a Provenance and an OperationOutcome when there "
            "is anything to tell.",
            least=1,
        ),
    ]


def operation_definitions(meta: Meta) -> list[Json]:
    """The ``$triage`` OperationDefinition."""
    resource = meta.header(
        "OperationDefinition",
        "triage",
        title="PainPath back pain triage",
        description="Infers the back pain type, screens red flags and proposes a treatment-stage "
        "CarePlan with ServiceRequests, from a posted Bundle (system level) or from the "
        "configured FHIR server (Patient level). Proposals only: a clinician decides.",
    )
    resource.update(
        kind="operation",
        affectsState=False,
        code="triage",
        comment=_COMMENT,
        resource=["Patient"],
        system=True,
        type=False,
        instance=True,
        parameter=_parameters(),
    )
    return [resource]
