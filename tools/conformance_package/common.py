"""What every generated conformance resource shares: version, publisher, date, header fields.

Conformance resource metadata: https://hl7.org/fhir/R4/conformance-module.html (canonical
resources carry url, version, name, title, status, date, publisher and description).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from service.domain.knowledge import KnowledgeBase
from service.fhir.canonicals import canonical
from service.fhir.types import Json

__all__ = ["PUBLISHED", "PUBLISHER", "Json", "Meta", "pascal"]

PUBLISHER = "PainPath"
# The publication date of this package version; changes with the knowledge files' version.
PUBLISHED = "2026-11-24"


def pascal(text: str) -> str:
    """A computer-friendly name: ``pain-type`` -> ``PainType`` (R4 inv. cnl-0 style)."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", text) if part)


@dataclass(frozen=True, slots=True)
class Meta:
    """The version and the knowledge the package is generated from."""

    kb: KnowledgeBase

    @property
    def version(self) -> str:
        """The package version: the rule-set version (rules.toml), also on every output."""
        return self.kb.version

    def header(self, rtype: str, rid: str, *, title: str, description: str) -> Json:
        """The common head of a canonical resource, in FHIR element order."""
        return {
            "resourceType": rtype,
            "id": rid,
            "url": canonical(rtype, rid),
            "version": self.version,
            "name": pascal(rid),
            "title": title,
            "status": "active",
            "experimental": False,
            "date": PUBLISHED,
            "publisher": PUBLISHER,
            "description": description,
        }
