"""The CapabilityStatement served at ``GET /fhir/metadata``.

Spec: https://hl7.org/fhir/R4/capabilitystatement.html. Lists ``$triage`` at system and Patient
level, the conformance resources PainPath serves, and the profiles of what it emits.
"""

from __future__ import annotations

from typing import Any

from service import __version__
from service.domain.knowledge import KnowledgeBase
from service.fhir.systems import BASE

__all__ = ["capability_statement"]

Json = dict[str, Any]
PUBLISHED = "2026-11-24"
TRIAGE = f"{BASE}/OperationDefinition/triage"
PATIENT_TRIAGE = f"{BASE}/OperationDefinition/patient-triage"


def _read_only(rtype: str) -> Json:
    return {
        "type": rtype,
        "interaction": [{"code": "read"}, {"code": "search-type"}],
        "searchParam": [{"name": "url", "type": "uri"}],
    }


def capability_statement(kb: KnowledgeBase, conformance_types: list[str]) -> Json:
    """The service's CapabilityStatement."""
    patient = {
        "type": "Patient",
        "operation": [{"name": "triage", "definition": PATIENT_TRIAGE}],
    }
    return {
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
            "Infers back pain type, screens red flags and proposes treatment-stage CarePlans and "
            f"ServiceRequests (rule set {kb.version}). Proposals only: a clinician decides."
        ),
        "kind": "instance",
        "software": {"name": "PainPath", "version": __version__},
        "implementation": {"description": "PainPath FHIR API"},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "resource": [patient, *(_read_only(t) for t in sorted(conformance_types))],
                "operation": [{"name": "triage", "definition": TRIAGE}],
            }
        ],
    }
