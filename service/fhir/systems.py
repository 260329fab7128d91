"""Canonical code-system URIs and the PainPath canonical base (docs/interface.md).

Inputs sometimes name a system by its OID or with a trailing slash or a SNOMED edition suffix;
``normalise_system`` maps those to the canonical URI so value-set matching stays exact.
"""

from __future__ import annotations

__all__ = [
    "ACT_CODE",
    "BASE",
    "LOCAL_SYSTEM",
    "UCUM",
    "cs",
    "normalise_code",
    "normalise_system",
]

BASE = "https://painpath.dev/fhir"
LOCAL_SYSTEM = f"{BASE}/CodeSystem/painpath"

SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"  # detected-issue types
_ALIASES = {
    "urn:oid:2.16.840.1.113883.6.8": UCUM,
    "urn:oid:2.16.840.1.113883.6.96": SNOMED,
    "urn:oid:2.16.840.1.113883.6.90": "http://hl7.org/fhir/sid/icd-10-cm",
    "urn:oid:2.16.840.1.113883.6.3": "http://hl7.org/fhir/sid/icd-10",
    "urn:oid:2.16.840.1.113883.6.1": "http://loinc.org",
    "urn:oid:2.16.840.1.113883.6.88": "http://www.nlm.nih.gov/research/umls/rxnorm",
    "urn:oid:2.16.840.1.113883.6.73": "http://www.whocc.no/atc",
}


def cs(name: str) -> str:
    """The canonical URL of a PainPath CodeSystem, e.g. ``cs("pain-type")``."""
    return f"{BASE}/CodeSystem/{name}"


def normalise_system(system: str) -> str:
    """The canonical URI for a code system as sent."""
    trimmed = system.strip().rstrip("/")
    if trimmed.startswith(SNOMED + "/"):
        return SNOMED  # edition/version URIs such as http://snomed.info/sct/900000000000207008
    return _ALIASES.get(trimmed, trimmed)


_ICD10 = frozenset({"http://hl7.org/fhir/sid/icd-10-cm", "http://hl7.org/fhir/sid/icd-10"})


def normalise_code(system: str, code: str) -> str:
    """ICD-10(-CM) codes in their dotted upper-case form (``m5431`` -> ``M54.31``)."""
    code = code.strip()
    if system in _ICD10:
        code = code.upper()
        if "." not in code and len(code) > 3:
            code = f"{code[:3]}.{code[3:]}"
    return code
