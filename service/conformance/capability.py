"""The CapabilityStatement served at ``GET /fhir/metadata``.

Spec: https://hl7.org/fhir/R4/capabilitystatement.html. Lists ``$triage`` at system and Patient
level, the conformance resources PainPath serves, and the profiles of what it emits.
"""

from __future__ import annotations

from service import __version__
from service.domain.knowledge import KnowledgeBase
from service.fhir.canonicals import (
    APPLY_OPERATION,
    IMPLEMENTATION_GUIDE,
    POPULATE_OPERATION,
    PROFILES,
    TRIAGE_OPERATION,
)
from service.fhir.narrative import narrated
from service.fhir.systems import BASE
from service.fhir.types import Json

__all__ = ["capability_statement"]

PUBLISHED = "2026-11-24"
TRIAGE = TRIAGE_OPERATION
PATIENT_TRIAGE = TRIAGE_OPERATION  # one OperationDefinition: system and Patient level
# types with a canonical ``url`` element: searchable by ``url`` (GET /fhir/{type}?url=...)
_CANONICAL_TYPES = frozenset(
    {"ActivityDefinition", "CapabilityStatement", "CodeSystem", "ConceptMap",
     "ImplementationGuide", "OperationDefinition", "PlanDefinition", "Questionnaire",
     "StructureDefinition", "ValueSet"}
)  # fmt: skip
# operations on conformance resource types (type and instance level)
_OPERATIONS: dict[str, Json] = {
    "PlanDefinition": {
        "name": "apply",
        "definition": APPLY_OPERATION,
        "documentation": "R4 Clinical Reasoning $apply on PlanDefinition/back-pain-pathway: "
        "a CarePlan with a contained RequestGroup of the same proposals as $triage.",
    },
    "Questionnaire": {
        "name": "populate",
        "definition": POPULATE_OPERATION,
        "documentation": "SDC $populate: a QuestionnaireResponse pre-filled from the record, "
        "each answer naming its source entry.",
    },
}


def _resource(rtype: str, *, served: bool) -> Json:
    """A ``rest.resource``: the profiles ``$triage`` emits of this type; read and search for the
    types of ``fhir_profiles/`` (for emitted types these are the package's examples)."""
    entry: Json = {"type": rtype}
    profiles = PROFILES.get(rtype, ())
    if profiles:
        base = f"http://hl7.org/fhir/StructureDefinition/{rtype}"
        entry["profile"] = profiles[0] if len(profiles) == 1 else base
        entry["supportedProfile"] = list(profiles)
        entry["documentation"] = "Emitted by $triage, conforming to the supported profile(s)." + (
            " Read and search serve the package's examples." if served else ""
        )
    if rtype in _OPERATIONS:
        entry["operation"] = [_OPERATIONS[rtype]]
    if served:
        entry["interaction"] = [{"code": "read"}, {"code": "search-type"}]
        if rtype in _CANONICAL_TYPES:
            entry["searchParam"] = [{"name": "url", "type": "uri"}]
    return entry


def _profiles(kb: KnowledgeBase) -> str:
    """The guideline profiles ``$triage`` accepts (its ``profile`` parameter), as markdown."""
    default = kb.catalogue.default_profile
    lines = [
        f"- `{code}`{' (default)' if code == default else ''}: {p.guideline} <{p.url}>"
        for code, p in sorted(kb.catalogue.profiles.items())
    ]
    return "Guideline profiles (parameter `profile`):\n" + "\n".join(lines)


def capability_statement(kb: KnowledgeBase, conformance_types: list[str]) -> Json:
    """The service's CapabilityStatement."""
    patient: Json = {"type": "Patient"}
    if "Patient" in conformance_types:  # the examples' input patients (fhir_profiles/examples)
        patient["interaction"] = [{"code": "read"}, {"code": "search-type"}]
    patient["operation"] = [{"name": "triage", "definition": PATIENT_TRIAGE}]
    return narrated(
        {
            "resourceType": "CapabilityStatement",
            "id": "painpath",
            "url": f"{BASE}/CapabilityStatement/painpath",
            "version": __version__,
            "name": "PainPath",
            "title": "PainPath back pain clinical decision support",
            "status": "active",
            "date": PUBLISHED,
            "publisher": "PainPath",
            "description": (
                "Infers back pain type, screens red flags and proposes treatment-stage CarePlans "
                f"and ServiceRequests (rule set {kb.version}). Proposals only: a clinician "
                "decides."
            ),
            "kind": "instance",
            "software": {"name": "PainPath", "version": __version__},
            "implementation": {"description": "PainPath FHIR API"},
            "fhirVersion": "4.0.1",
            "format": ["application/fhir+json", "json"],
            "implementationGuide": [IMPLEMENTATION_GUIDE],
            "rest": [
                {
                    "mode": "server",
                    "resource": [
                        patient,
                        *(
                            _resource(t, served=t in conformance_types)
                            for t in sorted((set(conformance_types) | set(PROFILES)) - {"Patient"})
                        ),
                    ],
                    "operation": [
                        {"name": "triage", "definition": TRIAGE, "documentation": _profiles(kb)}
                    ],
                }
            ],
        }
    )
