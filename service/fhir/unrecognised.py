"""Never silent (rule set 2027.1): the entries PainPath reads whose codes no concept recognised.

Each patient's OperationOutcome gets one ``code-not-recognised`` issue per distinct code (or text)
with the number of entries that carry it and their paths, so a whole record of thousands of vital
signs and claims lines reports a few dozen lines, not thousands. When the red-flag screen is
otherwise "not documented", the unrecognised entries that could have been a red-flag finding (a
Condition, or an Observation that is not a vital sign or laboratory result) are named in its place:
a finding PainPath could not read never turns into "not documented". So are, when the Bundle holds
one patient, such entries that were skipped because their subject could not be resolved to a
patient (``unassigned_findings``): they may well have been about that patient.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from service.domain.assessment import Assessment
from service.fhir.ingest import Ingested, referenced_medication
from service.fhir.types import Json

__all__ = ["MAX_PATHS", "Group", "Unrecognised", "unassigned_findings", "unrecognised"]

_CODE_ELEMENT = {
    "Condition": "code",
    "Observation": "code",
    "Procedure": "code",
    "DiagnosticReport": "code",
    "Device": "type",
    "MedicationStatement": "medicationCodeableConcept",
    "MedicationRequest": "medicationCodeableConcept",
    "MedicationDispense": "medicationCodeableConcept",
    "MedicationAdministration": "medicationCodeableConcept",
    "CarePlan": "activity",
    "ImagingStudy": "procedureCode",
}
_NOT_FINDINGS = frozenset({"vital-signs", "laboratory"})
MAX_PATHS = 5  # entry paths one issue lists; its text gives the count


@dataclass(slots=True)
class Group:
    """Entries of one type that carry the same code (or text) and matched no concept."""

    rtype: str
    label: str
    paths: list[str] = field(default_factory=list)
    maybe_finding: bool = False
    # a medicationReference that names no Medication in the request: the drug is unknown
    unresolved: bool = False


@dataclass(frozen=True, slots=True)
class Unrecognised:
    """A patient's unrecognised entries, grouped by code."""

    groups: tuple[Group, ...]

    def findings(self) -> Iterator[Group]:
        """The groups that could have held a red-flag finding."""
        return (g for g in self.groups if g.maybe_finding)


def unrecognised(found: Ingested, assessment: Assessment) -> Unrecognised:
    """The patient's read entries that no concept recognised, grouped per code or text."""
    groups: dict[tuple[str, str], Group] = {}
    for ref, index in found.read.get(assessment.subject, ()):
        if ref in assessment.recognised:
            continue
        resource = found.entries[index].get("resource") or {}
        rtype = str(resource.get("resourceType"))
        element = _CODE_ELEMENT.get(rtype, "code")
        concept = resource.get(element)
        if rtype == "CarePlan":  # its activities' codes (detail.code), first one named
            concept = next(iter(_activity_codes(resource)), None)
        label, unresolved = _label(concept), False
        if element == "medicationCodeableConcept" and concept is None:
            element = "medicationReference"
            label, unresolved = _medication_label(resource, found.medications)
        group = groups.setdefault((rtype, label), Group(rtype, label, unresolved=unresolved))
        group.paths.append(f"Bundle.entry[{index}].resource.{element}")
        group.maybe_finding |= _maybe_finding(rtype, resource)
    return Unrecognised(tuple(groups[k] for k in sorted(groups)))


def unassigned_findings(found: Ingested) -> list[str]:
    """The entries skipped because their subject names no patient of the Bundle that could have
    been a red-flag finding (a Condition, or an Observation that is not a vital sign or laboratory
    result), each named by type, code and entry path."""
    named = []
    for index in found.unassigned:
        resource = found.entries[index].get("resource") or {}
        rtype = str(resource.get("resourceType"))
        if _maybe_finding(rtype, resource):
            label = _label(resource.get(_CODE_ELEMENT[rtype]))
            named.append(
                f"{rtype} {label} at Bundle.entry[{index}] (its subject could not be resolved to "
                "a patient)"
            )
    return named


def _medication_label(resource: Json, medications: dict[str, Json]) -> tuple[str, bool]:
    """(label, unresolved) of a medication given by reference: the Medication's code, or the
    reference itself when it names nothing in the request."""
    medication = referenced_medication(resource, medications)
    if medication is not None:
        return _label(medication.get("code")), False
    holder = resource.get("medicationReference")
    holder = holder if isinstance(holder, dict) else {}
    reference, display = holder.get("reference"), holder.get("display")
    named = f" (named {display[:200]!r})" if isinstance(display, str) and display.strip() else ""
    if not isinstance(reference, str):
        return f"a medication given by no reference{named}", True
    return f"a reference to {reference[:200]!r}{named}, which is not in the request", True


def _label(concept: object) -> str:
    """``display (system|code)`` of a CodeableConcept's first coding, else its text."""
    if not isinstance(concept, dict):
        return "no code"
    for coding in concept.get("coding") or ():
        if isinstance(coding, dict) and coding.get("code"):
            display = coding.get("display") or concept.get("text") or ""
            code = f"{coding.get('system', 'no system')}|{coding['code']}"
            return f"{display} ({code})" if display else code
    text = concept.get("text")
    return f"text {text!r}" if isinstance(text, str) else "no code"


def _activity_codes(careplan: Json) -> list[Json]:
    found = []
    for activity in careplan.get("activity") or ():
        detail = activity.get("detail") if isinstance(activity, dict) else None
        if isinstance(detail, dict) and isinstance(detail.get("code"), dict):
            found.append(detail["code"])
    return found


def _maybe_finding(rtype: str, resource: Json) -> bool:
    if rtype == "Condition":
        return True
    if rtype != "Observation":
        return False
    categories = {
        str(coding.get("code"))
        for category in resource.get("category") or ()
        if isinstance(category, dict)
        for coding in category.get("coding") or ()
        if isinstance(coding, dict)
    }
    return not categories & _NOT_FINDINGS
