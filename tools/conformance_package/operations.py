"""The OperationDefinitions of ``$triage`` and ``PlanDefinition/$apply``
(https://hl7.org/fhir/R4/operationdefinition.html).

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


def _multi(name: str, use: str, ptype: str, documentation: str, *, most: str = "1") -> Json:
    entry = _param(name, use, ptype, documentation)
    entry["max"] = most
    return entry


_APPLY_IGNORED_TYPES = {
    "encounter": "string", "practitioner": "string", "organization": "string",
    "userType": "CodeableConcept", "userLanguage": "CodeableConcept",
    "userTaskContext": "CodeableConcept", "setting": "CodeableConcept",
    "settingContext": "CodeableConcept",
}  # fmt: skip


def _apply_parameters() -> list[Json]:
    url = _param(
        "url",
        "in",
        "canonical",
        "Type level (as in R5 and the CPG IG): the canonical of the PlanDefinition, optionally "
        "with |version. Not allowed at instance level.",
    )
    url["targetProfile"] = ["http://hl7.org/fhir/StructureDefinition/PlanDefinition"]
    ignored = [
        _param(
            name,
            "in",
            ptype,
            "Accepted and not used: the CarePlan carries a note naming it.",
        )
        for name, ptype in _APPLY_IGNORED_TYPES.items()
    ]
    return [
        _param(
            "planDefinition",
            "in",
            "PlanDefinition",
            "Type level: the PlanDefinition to apply (its url must be PainPath's pathway). Not "
            "allowed at instance level.",
        ),
        url,
        _param(
            "subject",
            "in",
            "string",
            "The patient, `Patient/{id}` (a string or a Reference). Without `data` the patient's "
            "record is pulled from the FHIR server named by PAINPATH_FHIR_SERVER, exactly as "
            "`Patient/{id}/$triage` pulls it. With `data` it chooses the patient in the Bundle "
            "(optional when the Bundle holds one patient). PainPath evaluates one subject per "
            "call.",
        ),
        _param(
            "data",
            "in",
            "Bundle",
            "PainPath extension to the R4 operation (R5 and the CPG IG define it): the patient's "
            "data as a Bundle, read and validated exactly like a `$triage` Bundle.",
        ),
        *ignored,
        _param("asOf", "in", "dateTime", "PainPath: evaluation date; default: now."),
        _param("profile", "in", "code", "PainPath: guideline profile; default `nice-ng59`."),
        _param("validation", "in", "code", "PainPath: `lenient` (default) or `strict`."),
        _param(
            "return",
            "out",
            "CarePlan",
            "A CarePlan (intent proposal) instantiating the PlanDefinition. Contained: a "
            "RequestGroup whose actions are the proposals of `$triage` in the same order "
            "(ServiceRequests contained and referenced as `#id`; CarePlan activities as actions "
            "with title, description and code), the pain-type and stage Observations, the "
            "DetectedIssues and the OperationOutcome. Nothing is persisted.",
            least=1,
        ),
    ]


def _apply_definition(meta: Meta) -> Json:
    resource = meta.header(
        "OperationDefinition",
        "plandefinition-apply",
        title="Apply PainPath's back pain pathway",
        description="FHIR R4 Clinical Reasoning PlanDefinition/$apply on the PainPath "
        "PlanDefinition: evaluates the patient through the same path as $triage and returns a "
        "CarePlan with a contained RequestGroup of the same proposals.",
    )
    resource.update(
        kind="operation",
        affectsState=False,
        code="apply",
        comment="Errors carry an OperationOutcome: 400 (invalid Parameters or data), 404 (not "
        "PainPath's PlanDefinition; a subject the FHIR server does not know), 413, 415, 422 "
        "(data holds several patients and no subject; subject without data and no FHIR server).",
        base="http://hl7.org/fhir/OperationDefinition/PlanDefinition-apply",
        resource=["PlanDefinition"],
        system=False,
        type=True,
        instance=True,
        parameter=_apply_parameters(),
    )
    return resource


def _populate_definition(meta: Meta) -> Json:
    resource = meta.header(
        "OperationDefinition",
        "questionnaire-populate",
        title="Pre-fill a PainPath Questionnaire from the record",
        description="SDC Questionnaire/$populate on PainPath's Questionnaires (the instruments "
        "and the recording forms: the red-flag screen, the treatment-stage facts): a "
        "QuestionnaireResponse pre-filled from the patient's record, each answer naming the entry "
        "it came from.",
    )
    subject = _param(
        "subject",
        "in",
        "Reference",
        "The patient, `Patient/{id}`. Without `data` the record is pulled from the FHIR server "
        "named by PAINPATH_FHIR_SERVER, as `Patient/{id}/$triage` pulls it; with `data` it "
        "chooses the patient in the Bundle (optional when the Bundle holds one patient).",
    )
    return resource | {
        "kind": "operation",
        "affectsState": False,
        "code": "populate",
        "comment": "Errors carry an OperationOutcome: 400, 404 (not a PainPath Questionnaire), "
        "413, 415, 422. Unanswered items are left out for the clinician. Each pre-filled answer "
        "carries the extension https://painpath.dev/fhir/StructureDefinition/answer-source "
        "(valueReference: the input entry it was read from). Follows the SDC operation "
        "http://hl7.org/fhir/uv/sdc/OperationDefinition/Questionnaire-populate; SDC is not a "
        "dependency of this package (R4 core only), so it is named here and not as `base`, which "
        "a package loader could not resolve.",
        "resource": ["Questionnaire"],
        "system": False,
        "type": True,
        "instance": True,
        "parameter": [
            _param("questionnaire", "in", "Questionnaire", "Type level: the Questionnaire."),
            _param("canonical", "in", "canonical", "Type level: its canonical (|version)."),
            subject,
            _param(
                "data",
                "in",
                "Bundle",
                "PainPath extension: the patient's data as a Bundle, read like a `$triage` Bundle.",
            ),
            _param("asOf", "in", "dateTime", "PainPath: evaluation date; default: now."),
            _param("local", "in", "boolean", "Accepted and not used."),
            _param(
                "response",
                "out",
                "QuestionnaireResponse",
                "The pre-filled QuestionnaireResponse (in-progress).",
                least=1,
            ),
            _param("issues", "out", "OperationOutcome", "How many items were pre-filled."),
        ],
    }


def operation_definitions(meta: Meta) -> list[Json]:
    """The ``$triage``, ``$apply`` and ``$populate`` OperationDefinitions."""
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
    return [resource, _apply_definition(meta), _populate_definition(meta)]
