"""Canonical URLs of PainPath's conformance resources (docs/interface.md: base ``PP``).

The emitter stamps these on what it produces (``meta.profile``, ``instantiatesCanonical``) and
the package generator (``python -m tools.conformance_package build``) publishes resources at the
same URLs, so outputs and ``fhir_profiles/`` agree by construction. Canonical references:
https://hl7.org/fhir/R4/references.html#canonical.
"""

from __future__ import annotations

from service.fhir.systems import BASE

__all__ = [
    "APPLY_OPERATION",
    "CAPABILITY_STATEMENT",
    "CAREPLAN_PROFILE",
    "DETECTED_ISSUE_PROFILE",
    "IMPLEMENTATION_GUIDE",
    "MEDICATION_ISSUE_PROFILE",
    "PACKAGE_ID",
    "PAIN_TYPE_PROFILE",
    "PLAN_DEFINITION",
    "POPULATE_OPERATION",
    "PROFILES",
    "SERVICE_REQUEST_PROFILE",
    "STAGE_ELIGIBILITY_PROFILE",
    "TRIAGE_OPERATION",
    "activity_definition",
    "canonical",
    "service_definition",
    "value_set",
]

PACKAGE_ID = "painpath.fhir"


def canonical(rtype: str, rid: str) -> str:
    """The canonical URL of a PainPath conformance resource."""
    return f"{BASE}/{rtype}/{rid}"


PAIN_TYPE_PROFILE = canonical("StructureDefinition", "painpath-pain-type")
STAGE_ELIGIBILITY_PROFILE = canonical("StructureDefinition", "painpath-stage-eligibility")
CAREPLAN_PROFILE = canonical("StructureDefinition", "painpath-careplan")
SERVICE_REQUEST_PROFILE = canonical("StructureDefinition", "painpath-servicerequest")
DETECTED_ISSUE_PROFILE = canonical("StructureDefinition", "painpath-detectedissue")
MEDICATION_ISSUE_PROFILE = canonical("StructureDefinition", "painpath-medication-detectedissue")
# resource type -> the profiles of what $triage emits of that type
PROFILES: dict[str, tuple[str, ...]] = {
    "CarePlan": (CAREPLAN_PROFILE,),
    "DetectedIssue": (DETECTED_ISSUE_PROFILE, MEDICATION_ISSUE_PROFILE),
    "Observation": (PAIN_TYPE_PROFILE, STAGE_ELIGIBILITY_PROFILE),
    "ServiceRequest": (SERVICE_REQUEST_PROFILE,),
}

TRIAGE_OPERATION = canonical("OperationDefinition", "triage")
APPLY_OPERATION = canonical("OperationDefinition", "plandefinition-apply")
POPULATE_OPERATION = canonical("OperationDefinition", "questionnaire-populate")
CAPABILITY_STATEMENT = canonical("CapabilityStatement", "painpath")
PLAN_DEFINITION = canonical("PlanDefinition", "back-pain-pathway")
IMPLEMENTATION_GUIDE = canonical("ImplementationGuide", PACKAGE_ID)


def service_definition(service: str) -> str:
    """The ActivityDefinition a proposed ServiceRequest instantiates (catalogue service code)."""
    return canonical("ActivityDefinition", f"service-{service}")


def activity_definition(activity: str) -> str:
    """The ActivityDefinition a CarePlan activity detail instantiates (catalogue activity code)."""
    return canonical("ActivityDefinition", f"activity-{activity}")


def value_set(name: str) -> str:
    """A PainPath ValueSet: a valuesets.toml concept or the codes of a PainPath CodeSystem."""
    return canonical("ValueSet", name)
