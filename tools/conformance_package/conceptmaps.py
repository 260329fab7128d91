"""ConceptMaps from PainPath service and activity codes to the standard codes the catalogue gives
them (https://hl7.org/fhir/R4/conceptmap.html).

Only catalogue codings with a verified status (``VERIFIED-*``, docs/clinical-references.md §0)
are mapped; services and activities without one (medial branch block, radiofrequency denervation,
emergency referral, stay active, ...) have no map entry: PainPath never guesses a code. The code
PainPath sends as ``ServiceRequest.code`` / activity ``detail.code`` is ``equivalent``; a
ServiceRequest category coding is ``wider``; a do-not-perform activity is ``relatedto`` (the
standard code travels with ``doNotPerform = true``). One ConceptMap per source and target system.
"""

from __future__ import annotations

from service.domain.knowledge import Coding
from service.fhir.canonicals import value_set
from service.fhir.systems import cs
from tools.conformance_package.common import Json, Meta

__all__ = ["concept_maps"]

_TARGETS = {
    "http://snomed.info/sct": "snomed",
    "http://loinc.org": "loinc",
    "http://www.nlm.nih.gov/research/umls/rxnorm": "rxnorm",
}
_TITLES = {"snomed": "SNOMED CT", "loinc": "LOINC", "rxnorm": "RxNorm"}
# (source code, display, standard coding, equivalence, comment)
Row = tuple[str, str, Coding, str, str]


def _verified(coding: Coding | None) -> bool:
    return coding is not None and coding.status.startswith("VERIFIED")


def _service_rows(meta: Meta) -> list[Row]:
    rows: list[Row] = []
    for code, service in meta.kb.catalogue.services.items():
        if service.code is not None and _verified(service.code):
            rows.append(
                (
                    code,
                    service.title,
                    service.code,
                    "equivalent",
                    f"ServiceRequest.code ({service.code.status})",
                )
            )
        if service.category is not None and _verified(service.category):
            rows.append(
                (
                    code,
                    service.title,
                    service.category,
                    "wider",
                    f"ServiceRequest.category ({service.category.status})",
                )
            )
    return rows


def _activity_rows(meta: Meta) -> list[Row]:
    rows: list[Row] = []
    for code, activity in meta.kb.catalogue.activities.items():
        if activity.code is None or not _verified(activity.code):
            continue
        if activity.do_not_perform:
            rows.append(
                (
                    code,
                    activity.title,
                    activity.code,
                    "relatedto",
                    f"Sent with doNotPerform = true ({activity.code.status})",
                )
            )
        else:
            rows.append(
                (
                    code,
                    activity.title,
                    activity.code,
                    "equivalent",
                    f"CarePlan.activity.detail.code ({activity.code.status})",
                )
            )
    return rows


def _elements(rows: list[Row]) -> list[Json]:
    elements: dict[str, Json] = {}
    for code, display, coding, equivalence, comment in rows:
        element = elements.setdefault(code, {"code": code, "display": display, "target": []})
        element["target"].append(
            {
                "code": coding.code,
                "display": coding.display,
                "equivalence": equivalence,
                "comment": comment,
            }
        )
    return list(elements.values())


def concept_maps(meta: Meta) -> list[Json]:
    """One ConceptMap per (PainPath CodeSystem, standard target system) with verified codes."""
    found = []
    for source, rows in (("service", _service_rows(meta)), ("care-activity", _activity_rows(meta))):
        for target, short in _TARGETS.items():
            chosen = [row for row in rows if row[2].system == target]
            if not chosen:
                continue
            rid = f"{source}-to-{short}"
            title = f"PainPath {source} codes to {_TITLES[short]}"
            resource = meta.header(
                "ConceptMap",
                rid,
                title=title,
                description=f"{title} (verified codes of catalogue.toml).",
            )
            resource.update(
                sourceCanonical=value_set(source),
                targetUri=target,
                group=[{"source": cs(source), "target": target, "element": _elements(chosen)}],
            )
            found.append(resource)
    return found
