"""Assemble, write and check the package ``fhir_profiles/``.

Layout (file names ``<Type>-<id>.json``)::

    fhir_profiles/
      package.json                          FHIR NPM manifest (painpath.fhir, rules.toml version)
      ImplementationGuide-painpath.fhir.json, CapabilityStatement-painpath.json
      codesystems/ valuesets/ conceptmaps/  terminology
      profiles/                             StructureDefinitions (differential + snapshot)
      operations/                           OperationDefinition $triage
      pathway/                              PlanDefinition + ActivityDefinitions, the
                                            recording-form Questionnaires (forms.py)
      examples/                             outputs of samples/ (examples.py)
      questionnaires/                       hand-written Questionnaires (read, never written)

Everything but ``questionnaires/`` is generated; the bytes are a pure function of the knowledge
files, the Questionnaires, the sample inputs and the code (JSON, 2-space indent, UTF-8, newline).
"""

from __future__ import annotations

import json
from pathlib import Path

from service.conformance.capability import capability_statement
from service.domain.knowledge import KnowledgeBase
from service.fhir.narrative import narrated
from tools.conformance_package.codesystems import code_systems
from tools.conformance_package.common import Json, Meta
from tools.conformance_package.conceptmaps import concept_maps
from tools.conformance_package.examples import examples
from tools.conformance_package.forms import recording_forms
from tools.conformance_package.guide import implementation_guide, package_manifest
from tools.conformance_package.operations import operation_definitions
from tools.conformance_package.pathway import activity_definitions, plan_definition
from tools.conformance_package.structures import structure_definitions
from tools.conformance_package.valuesets import value_sets

__all__ = ["HAND_WRITTEN", "build_package", "check_package", "render", "write_package"]

HAND_WRITTEN = "questionnaires"
Files = dict[str, bytes]


def render(document: Json) -> bytes:
    """The file bytes of a generated JSON document."""
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode()


def _name(folder: str, resource: Json) -> str:
    stem = f"{resource['resourceType']}-{resource['id']}.json"
    return f"{folder}/{stem}" if folder else stem


def _questionnaires(root: Path) -> list[Json]:
    found: list[Json] = [
        json.loads(path.read_bytes()) for path in sorted((root / HAND_WRITTEN).glob("*.json"))
    ]
    return found


def build_package(kb: KnowledgeBase, *, root: Path, samples: Path) -> Files:
    """Every generated file of the package, by path relative to ``root``."""
    meta = Meta(kb)
    questionnaires = _questionnaires(root)
    systems = code_systems(meta, questionnaires)
    placed: list[tuple[str, Json]] = [
        *(("codesystems", r) for r in systems),
        *(("valuesets", r) for r in value_sets(meta, systems)),
        *(("conceptmaps", r) for r in concept_maps(meta)),
        *(("profiles", r) for r in structure_definitions(meta)),
        *(("operations", r) for r in operation_definitions(meta)),
        ("pathway", plan_definition(meta)),
        *(("pathway", r) for r in activity_definitions(meta)),
        *(("pathway", r) for r in recording_forms(meta)),
    ]
    placed = [(folder, narrated(r)) for folder, r in placed]  # dom-6: a narrative on each
    samples_out = [narrated(resource) for _, resource in examples(kb, samples)]
    listed_types = {r["resourceType"] for r in [*(r for _, r in placed), *samples_out]}
    types = listed_types | {"CapabilityStatement", "ImplementationGuide"}
    if questionnaires:
        types.add("Questionnaire")
    capability = capability_statement(kb, sorted(types))
    listed = [capability, *(r for _, r in placed), *questionnaires]
    guide = narrated(implementation_guide(meta, listed, samples_out))
    files = {_name(folder, r): render(r) for folder, r in placed}
    files |= {_name("examples", r): render(r) for r in samples_out}
    files |= {_name("", capability): render(capability), _name("", guide): render(guide)}
    files["package.json"] = render(package_manifest(meta))
    return dict(sorted(files.items()))


def _generated(root: Path) -> set[str]:
    if not root.is_dir():
        return set()
    return {
        path.relative_to(root).as_posix()
        for path in root.rglob("*.json")
        if path.relative_to(root).parts[0] != HAND_WRITTEN
    }


def write_package(files: Files, root: Path) -> list[str]:
    """Write the package under ``root``; stale generated files are removed. The paths changed."""
    changed = check_package(files, root)
    for stale in _generated(root) - set(files):
        (root / stale).unlink()
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_bytes() != content:
            path.write_bytes(content)
    return changed


def check_package(files: Files, root: Path) -> list[str]:
    """How the package under ``root`` differs from ``files`` (empty: identical)."""
    present = _generated(root)
    problems = [f"missing: {p}" for p in sorted(set(files) - present)]
    problems += [f"not generated (stale): {p}" for p in sorted(present - set(files))]
    problems += [
        f"differs: {p}" for p in sorted(set(files) & present) if (root / p).read_bytes() != files[p]
    ]
    return problems
