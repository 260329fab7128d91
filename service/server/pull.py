"""What to read from a FHIR server for one patient, and the collection Bundle built from it.

The searches are ``{type}?patient=Patient/{id}`` for every type the rules read
(``ingest.READ_TYPES``), with ``_include`` of referenced Medications. The Bundle handed to
``Engine.triage`` holds the Patient and every pulled resource that is about that patient, sorted
by type and id so its digest (and so the result ids) does not depend on paging order. It leaves
out PainPath's own results already on the server (they are outputs, not evidence) and anything
about another patient: a server that ignores an unsupported search parameter (sekmet-fhir has no
``patient`` parameter on QuestionnaireResponse) returns every patient's resources.
"""

from __future__ import annotations

from service.fhir.ingest import READ_TYPES
from service.fhir.types import Json
from service.server.writeback import is_painpath_result

__all__ = [
    "PULL_TYPES",
    "collection_bundle",
    "not_the_patient",
    "patient_id_of",
    "search_params",
    "subject_patient_id",
]

PULL_TYPES = (
    "Condition", "Observation", "Procedure", "MedicationStatement", "MedicationRequest",
    "MedicationDispense", "MedicationAdministration", "DiagnosticReport", "ImagingStudy", "Device",
    "QuestionnaireResponse",
)  # fmt: skip
_INCLUDES = {
    "MedicationStatement": "MedicationStatement:medication",
    "MedicationRequest": "MedicationRequest:medication",
    "MedicationDispense": "MedicationDispense:medication",
    "MedicationAdministration": "MedicationAdministration:medication",
}


def search_params(rtype: str, patient_id: str) -> list[tuple[str, str]]:
    """The search parameters reading ``rtype`` for one patient."""
    params = [("patient", f"Patient/{patient_id}")]
    if rtype in _INCLUDES:
        params.append(("_include", _INCLUDES[rtype]))
    return params


def patient_id_of(reference: object) -> str | None:
    """The id in a relative or absolute ``Patient/{id}`` reference (``_history`` dropped)."""
    if not isinstance(reference, str) or reference.startswith(("urn:", "#")):
        return None
    parts = reference.split("/_history/")[0].rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == "Patient" and parts[-1]:
        return parts[-1]
    return None


def subject_patient_id(resource: Json) -> str | None:
    """The patient a resource is about (``subject`` or ``patient``), or its id for a Patient."""
    if resource.get("resourceType") == "Patient":
        return str(resource.get("id")) if resource.get("id") else None
    for key in ("subject", "patient"):
        holder = resource.get(key)
        if isinstance(holder, dict):
            return patient_id_of(holder.get("reference"))
    return None


def _keep(resource: Json, patient_id: str) -> bool:
    rtype = resource.get("resourceType")
    if rtype not in READ_TYPES or rtype == "Patient" or not resource.get("id"):
        return False
    if rtype == "Medication":
        return True
    return subject_patient_id(resource) == patient_id and not is_painpath_result(resource)


def not_the_patient(answer: Json, patient_id: str) -> str | None:
    """Why a server's answer to ``GET Patient/{patient_id}`` is not that Patient (a server that
    answers for another path, or with another resource), or None when it is."""
    if answer.get("resourceType") != "Patient":
        return "the answer is not a Patient"
    if not isinstance(answer.get("id"), str):
        return "the Patient in the answer has no id"
    if answer["id"] != patient_id:
        return "the answer is another Patient (its id differs from the one requested)"
    return None


def collection_bundle(base: str, patient: Json, resources: list[Json]) -> Json:
    """A ``collection`` Bundle of the patient (checked with :func:`not_the_patient`) and their
    resources, with absolute fullUrls."""
    base = base.rstrip("/")
    patient_id = str(patient.get("id"))
    kept = {(str(r["resourceType"]), str(r["id"])): r for r in resources if _keep(r, patient_id)}
    entries = [{"fullUrl": f"{base}/Patient/{patient_id}", "resource": patient}]
    entries += [
        {"fullUrl": f"{base}/{rtype}/{rid}", "resource": kept[(rtype, rid)]}
        for rtype, rid in sorted(kept)
    ]
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}
