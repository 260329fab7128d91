"""StructureDefinition profiles of what ``$triage`` emits (docs/interface.md "The result Bundle").

One differential per profile, written as data; the snapshot is generated over the vendored base
R4 definition (``snapshot.py``). Fixed codes are patterns (https://hl7.org/fhir/R4/
elementdefinition-definitions.html#ElementDefinition.pattern_x_), codes from PainPath
CodeSystems are slices discriminated by system with a required binding
(https://hl7.org/fhir/R4/profiling.html#slicing), and everything docs/interface.md promises is
min 1.
"""

from __future__ import annotations

from service.domain.vocabulary import STAGES
from service.fhir import canonicals as cn
from service.fhir.systems import cs
from tools.conformance_package.base import base_definition
from tools.conformance_package.common import Json, Meta
from tools.conformance_package.snapshot import element, snapshot

__all__ = ["structure_definitions"]

_HL7 = "http://hl7.org/fhir/StructureDefinition"
_CC = [{"code": "CodeableConcept"}]
_DATETIME = [{"code": "dateTime"}]


def _concept(system: str, code: str | None = None) -> Json:
    coding = {"system": system} | ({"code": code} if code else {})
    return {"coding": [coding]}


def _required(name: str, description: str) -> Json:
    return {"strength": "required", "description": description, "valueSet": cn.value_set(name)}


def _ref(*targets: str) -> list[Json]:
    return [{"code": "Reference", "targetProfile": list(targets)}]


def _by_pattern(path: str) -> Json:
    return {"discriminator": [{"type": "pattern", "path": path}], "rules": "open"}


def _common(rtype: str) -> list[Json]:
    return [
        element(
            f"{rtype}.identifier",
            min=1,
            mustSupport=True,
            short="PainPath result identifier (key of the conditional create)",
        ),
    ]


def _pain_type() -> list[Json]:
    certainty = "Observation.component:certainty"
    return [
        *_common("Observation"),
        element("Observation.status", patternCode="final"),
        element("Observation.code", patternCodeableConcept=_concept(cs("painpath"), "pain-type")),
        element("Observation.subject", min=1, type=_ref(f"{_HL7}/Patient"), mustSupport=True),
        element("Observation.effective[x]", min=1, type=_DATETIME, mustSupport=True),
        element(
            "Observation.value[x]",
            min=1,
            type=_CC,
            short="Pain type",
            binding=_required("pain-type", "The pain-type conclusion"),
        ),
        element("Observation.derivedFrom", mustSupport=True, short="The inputs that were used"),
        element("Observation.component", min=1, slicing=_by_pattern("code")),
        element(certainty, min=1, max="1", short="Neuropathic component certainty (NeuPSIG)"),
        element(
            f"{certainty}.code",
            patternCodeableConcept=_concept(cs("painpath"), "neuropathic-certainty"),
        ),
        element(
            f"{certainty}.value[x]",
            min=1,
            type=_CC,
            binding=_required("neuropathic-certainty", "NeuPSIG grade"),
        ),
    ]


def _stage_slice(stage: str) -> list[Json]:
    sid = f"Observation.component:{stage}"
    return [
        element(sid, min=1, max="1", short=f"Eligibility for the {stage} stage"),
        element(f"{sid}.code", patternCodeableConcept=_concept(cs("treatment-stage"), stage)),
        element(
            f"{sid}.value[x]",
            min=1,
            type=_CC,
            binding=_required("eligibility", "Eligibility for the stage"),
        ),
    ]


def _stage_eligibility() -> list[Json]:
    code = _concept(cs("painpath"), "treatment-stage-eligibility")
    return [
        *_common("Observation"),
        element("Observation.status", patternCode="final"),
        element("Observation.code", patternCodeableConcept=code),
        element("Observation.subject", min=1, type=_ref(f"{_HL7}/Patient"), mustSupport=True),
        element("Observation.effective[x]", min=1, type=_DATETIME, mustSupport=True),
        element("Observation.value[x]", max="0", short="No value: the components carry it"),
        element("Observation.derivedFrom", mustSupport=True),
        element("Observation.component", min=3, slicing=_by_pattern("code")),
        *(part for stage in STAGES for part in _stage_slice(stage)),
    ]


def _care_plan() -> list[Json]:
    stage = _concept(cs("treatment-stage"))
    return [
        element("CarePlan.text", min=1, mustSupport=True, short="Human-readable plan"),
        *_common("CarePlan"),
        element(
            "CarePlan.instantiatesCanonical",
            mustSupport=True,
            short="The PainPath pathway (PlanDefinition)",
        ),
        element("CarePlan.instantiatesUri", mustSupport=True, short="The guideline applied"),
        element("CarePlan.status", patternCode="draft"),
        element("CarePlan.intent", patternCode="proposal"),
        element("CarePlan.category", min=1, slicing=_by_pattern("$this")),
        element(
            "CarePlan.category:stage",
            min=1,
            max="1",
            patternCodeableConcept=stage,
            short="The recommended stage",
            binding=_required("treatment-stage", "The recommended treatment stage"),
        ),
        element("CarePlan.subject", type=_ref(f"{_HL7}/Patient")),
        element("CarePlan.created", min=1, mustSupport=True),
        element("CarePlan.addresses", mustSupport=True, short="The input Conditions used"),
        element(
            "CarePlan.supportingInfo",
            min=1,
            mustSupport=True,
            short="The PainPath Observations and the inputs used",
        ),
        element("CarePlan.activity", mustSupport=True, short="Every proposal"),
        element("CarePlan.activity.reference", type=_ref(cn.SERVICE_REQUEST_PROFILE)),
        element("CarePlan.activity.detail.instantiatesCanonical", mustSupport=True),
    ]


def _service_request() -> list[Json]:
    service = _concept(cs("service"))
    return [
        *_common("ServiceRequest"),
        element(
            "ServiceRequest.instantiatesCanonical",
            min=1,
            mustSupport=True,
            short="The ActivityDefinition of this kind of proposal",
        ),
        element("ServiceRequest.instantiatesUri", mustSupport=True, short="The guideline applied"),
        element("ServiceRequest.basedOn", mustSupport=True, type=_ref(cn.CAREPLAN_PROFILE)),
        element("ServiceRequest.status", patternCode="draft"),
        element("ServiceRequest.intent", patternCode="proposal"),
        element("ServiceRequest.category", min=1, slicing=_by_pattern("$this")),
        element(
            "ServiceRequest.category:service",
            min=1,
            max="1",
            patternCodeableConcept=service,
            short="The PainPath service code",
            binding=_required("service", "The PainPath service proposed"),
        ),
        element("ServiceRequest.priority", min=1, mustSupport=True),
        element(
            "ServiceRequest.code",
            min=1,
            mustSupport=True,
            binding=_required("service-request-code", "The standard code of the service"),
        ),
        element("ServiceRequest.subject", type=_ref(f"{_HL7}/Patient")),
        element("ServiceRequest.authoredOn", min=1, mustSupport=True),
        element("ServiceRequest.reasonReference", mustSupport=True, short="The Conditions"),
        element("ServiceRequest.supportingInfo", mustSupport=True, short="The evidence"),
        element("ServiceRequest.note", min=1, mustSupport=True, short="The reason in words"),
    ]


def _issue(system: str, what: str, implicated: str, *extra: Json) -> list[Json]:
    """A DetectedIssue profile whose code is fixed to one PainPath CodeSystem."""
    return [
        element("DetectedIssue.text", mustSupport=True),
        *_common("DetectedIssue"),
        element("DetectedIssue.status", patternCode="preliminary"),
        element(
            "DetectedIssue.code",
            min=1,
            patternCodeableConcept=_concept(cs(system)),
            binding=_required(system, what),
        ),
        element("DetectedIssue.severity", min=1, mustSupport=True),
        element("DetectedIssue.patient", min=1, type=_ref(f"{_HL7}/Patient")),
        element("DetectedIssue.identified[x]", type=_DATETIME, mustSupport=True),
        element("DetectedIssue.implicated", mustSupport=True, short=implicated),
        element("DetectedIssue.detail", min=1, mustSupport=True, short="The reason in words"),
        *extra,
    ]


def _detected_issue() -> list[Json]:
    return _issue("red-flag", "The red flag", "The evidence")


def _medication_issue() -> list[Json]:
    mitigation = element("DetectedIssue.mitigation", mustSupport=True, short="What to do about it")
    return _issue(
        "medication-issue", "The medication-safety finding", "The medication entries", mitigation
    )


# id, resource type, title, description, differential builder
_PROFILES = (
    (
        "painpath-pain-type",
        "Observation",
        "PainPath pain-type Observation",
        "The pain type PainPath infers (mechanical, neuropathic, mixed, indeterminate) with the "
        "NeuPSIG certainty of a neuropathic component as a component.",
        _pain_type,
    ),
    (
        "painpath-stage-eligibility",
        "Observation",
        "PainPath stage-eligibility Observation",
        "Eligibility for each treatment stage (conservative, injection, surgical referral): one "
        "component per stage.",
        _stage_eligibility,
    ),
    (
        "painpath-careplan",
        "CarePlan",
        "PainPath CarePlan proposal",
        "The proposed plan: the recommended stage as category, every proposal as an activity, the "
        "Conditions addressed and the Observations used, with a narrative.",
        _care_plan,
    ),
    (
        "painpath-servicerequest",
        "ServiceRequest",
        "PainPath ServiceRequest proposal",
        "A proposed service (imaging, referral, injection, physiotherapy) with its PainPath "
        "service category, standard code, priority and the reason in words.",
        _service_request,
    ),
    (
        "painpath-detectedissue",
        "DetectedIssue",
        "PainPath red-flag DetectedIssue",
        "One red flag (cauda equina, progressive deficit, infection, malignancy, fracture, "
        "inflammatory) with its severity and the evidence.",
        _detected_issue,
    ),
    (
        "painpath-medication-detectedissue",
        "DetectedIssue",
        "PainPath medication-safety DetectedIssue",
        "One medication-safety finding of rule set 2027.1 (opioid with a benzodiazepine or a "
        "gabapentinoid, a high opioid dose, an antidepressant with an MAOI…): the PainPath code "
        "and the HL7 v3 ActCode detected-issue type, severity, the medication entries implicated "
        "and the mitigation proposed.",
        _medication_issue,
    ),
)


def structure_definitions(meta: Meta) -> list[Json]:
    """The five profiles, each with differential and snapshot."""
    found = []
    for rid, rtype, title, description, build in _PROFILES:
        base = base_definition(rtype)
        root = element(rtype, short=title, definition=description)
        elements = snapshot(base["snapshot"]["element"], [root, *build()])
        order = {e["id"]: index for index, e in enumerate(elements)}
        differential = sorted([root, *build()], key=lambda e: order[e["id"]])
        resource = meta.header("StructureDefinition", rid, title=title, description=description)
        resource.update(
            fhirVersion="4.0.1",
            mapping=base["mapping"],
            kind="resource",
            abstract=False,
            type=rtype,
            baseDefinition=base["url"],
            derivation="constraint",
            snapshot={"element": elements},
            differential={"element": differential},
        )
        found.append(resource)
    return found
