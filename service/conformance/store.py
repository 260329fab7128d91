"""The conformance resources of ``fhir_profiles/``, served read-only by type/id and by url.

Loaded once at start-up; a file that is not a FHIR resource with ``resourceType`` and ``id``
stops start-up (the package is ours, so a broken file is a build error, not a request error).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import orjson

from service.domain.errors import KnowledgeError
from service.fhir.types import Json

__all__ = ["ConformanceStore", "default_profiles_dir"]


def default_profiles_dir() -> Path:
    """The conformance package: ``service/fhir_profiles`` in an installed wheel (``setup.py``
    copies it there at build time), else ``fhir_profiles/`` beside the ``service`` package (the
    source tree and an editable install)."""
    package = Path(__file__).resolve().parents[1]
    installed = package / "fhir_profiles"
    return installed if installed.is_dir() else package.parent / "fhir_profiles"


@dataclass(slots=True)
class ConformanceStore:
    """Conformance resources by (type, id) and by canonical url."""

    by_id: dict[tuple[str, str], Json] = field(default_factory=dict)

    @classmethod
    def load(cls, directory: Path) -> ConformanceStore:
        """Load every ``*.json`` resource under ``directory``; a missing directory, or one that is
        not a FHIR package (no ``package.json``), stops start-up (KnowledgeError) rather than
        serving half the interface."""
        store = cls()
        if not directory.is_dir():
            raise KnowledgeError(
                f"conformance package directory {directory} does not exist (set "
                "PAINPATH_PROFILES_DIR to the fhir_profiles directory, or unset it to use the "
                "packaged one)"
            )
        if not (directory / "package.json").is_file():
            raise KnowledgeError(
                f"{directory} is not the conformance package: it has no package.json"
            )
        for path in sorted(directory.rglob("*.json")):
            if path.name == "package.json":
                continue
            resource = orjson.loads(path.read_bytes())
            if (
                not isinstance(resource, dict)
                or "resourceType" not in resource
                or "id" not in resource
            ):
                raise KnowledgeError(f"{path}: not a FHIR resource with resourceType and id")
            store.by_id[(resource["resourceType"], resource["id"])] = resource
        return store

    def types(self) -> list[str]:
        """The resource types present."""
        return sorted({rtype for rtype, _ in self.by_id})

    def read(self, rtype: str, rid: str) -> Json | None:
        """One resource, or None."""
        return self.by_id.get((rtype, rid))

    def search(self, rtype: str, url: str | None) -> list[Json]:
        """Resources of a type, optionally with the given canonical url.

        ``url|version`` matches that version only
        (https://hl7.org/fhir/R4/references.html#canonical-matching).
        """
        wanted, _, version = (url or "").partition("|")
        return [
            r
            for (t, _), r in sorted(self.by_id.items())
            if t == rtype
            and (not wanted or r.get("url") == wanted)
            and (not version or r.get("version") == version)
        ]
