"""The ImplementationGuide resource and the package manifest (``package.json``).

ImplementationGuide: https://hl7.org/fhir/R4/implementationguide.html (every resource of the
package, grouped; examples name the profile they illustrate). package.json follows the FHIR
NPM package specification (https://confluence.hl7.org/display/FHIR/NPM+Package+Specification).
"""

from __future__ import annotations

from service.fhir.canonicals import PACKAGE_ID
from service.fhir.systems import BASE
from tools.conformance_package.common import PUBLISHER, Json, Meta

__all__ = ["GROUPS", "implementation_guide", "package_manifest"]

LICENSE = "Apache-2.0"
TITLE = "PainPath back pain clinical decision support"
DESCRIPTION = (
    "Conformance resources of PainPath, a FHIR R4 CDS service for back pain: the $triage "
    "operation, profiles of what it emits, its code systems, value sets and concept maps, the "
    "pathway (PlanDefinition, ActivityDefinitions), instrument Questionnaires and examples."
)
# grouping id -> (name, the resource types in it)
GROUPS = {
    "capability": ("Capability and operations", ("CapabilityStatement", "OperationDefinition")),
    "profiles": ("Profiles", ("StructureDefinition",)),
    "terminology": ("Terminology", ("CodeSystem", "ValueSet", "ConceptMap")),
    "pathway": ("Pathway", ("PlanDefinition", "ActivityDefinition")),
    "questionnaires": ("Questionnaires", ("Questionnaire",)),
}


def _group_of(resource: Json) -> str:
    for group, (_, types) in GROUPS.items():
        if resource["resourceType"] in types:
            return group
    raise ValueError(f"no ImplementationGuide group for {resource['resourceType']}")


def _entry(resource: Json, *, example: bool) -> Json:
    entry: Json = {"reference": {"reference": f"{resource['resourceType']}/{resource['id']}"}}
    if example:
        entry["name"] = f"Example {resource['resourceType']} {resource['id']}"
        profiles = resource.get("meta", {}).get("profile", [])
        entry["exampleCanonical" if profiles else "exampleBoolean"] = (
            profiles[0] if profiles else True
        )
        entry["groupingId"] = "examples"
        return entry
    entry["name"] = resource.get("title") or resource.get("name") or resource["id"]
    entry["exampleBoolean"] = False
    entry["groupingId"] = _group_of(resource)
    return entry


def implementation_guide(meta: Meta, resources: list[Json], examples: list[Json]) -> Json:
    """The ImplementationGuide listing every conformance resource and example."""
    guide = meta.header("ImplementationGuide", PACKAGE_ID, title=TITLE, description=DESCRIPTION)
    groups = [{"id": gid, "name": name} for gid, (name, _) in GROUPS.items()]
    guide.update(
        packageId=PACKAGE_ID,
        license=LICENSE,
        fhirVersion=["4.0.1"],
        definition={
            "grouping": [*groups, {"id": "examples", "name": "Examples"}],
            "resource": [_entry(r, example=False) for r in resources]
            + [_entry(r, example=True) for r in examples],
        },
    )
    return guide


def package_manifest(meta: Meta) -> Json:
    """``package.json`` of the FHIR package ``painpath.fhir``."""
    return {
        "name": PACKAGE_ID,
        "version": meta.version,
        "type": "fhir.ig",
        "canonical": BASE,
        "url": BASE,
        "title": TITLE,
        "description": DESCRIPTION,
        "fhirVersions": ["4.0.1"],
        "dependencies": {"hl7.fhir.r4.core": "4.0.1"},
        "author": PUBLISHER,
        "license": LICENSE,
    }
