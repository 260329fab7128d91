"""Example instances: what ``$triage`` answers for the sample inputs in ``samples/``.

They are produced by the running code (the same path as the API: validate, ingest, evaluate,
emit) on a fixed evaluation date, so they are real outputs and change when the outputs change.
OperationOutcome entries are left out (they are messages, not resources a server stores).

The examples are valid on their own: each sample's input resources are examples too (their ids
prefixed with the sample name, so the samples' ``patient-1`` and the like stay apart), and the
results' ``urn:uuid`` references to each other become relative ``Type/id`` references, so every
reference names a resource of the package.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from service.app.pipeline import Pipeline
from service.domain.knowledge import KnowledgeBase
from tools.conformance_package.common import Json

__all__ = ["EXAMPLE_AS_OF", "EXAMPLE_INPUTS", "examples"]

EXAMPLE_INPUTS = ("cauda-equina", "persistent-sciatica", "opioid-review")
EXAMPLE_AS_OF = "2026-11-24T10:00:00+01:00"


def examples(kb: KnowledgeBase, samples: Path) -> list[tuple[str, Json]]:
    """``(sample name, resource)`` for every stored resource of each sample's result Bundle."""
    pipeline = Pipeline(kb)
    found = []
    for name in EXAMPLE_INPUTS:
        given = _prefixed(orjson.loads((samples / f"{name}.json").read_bytes()), name)
        now = datetime(2026, 11, 24, tzinfo=UTC)
        bundle = pipeline.run_body(orjson.dumps(given), {"asOf": EXAMPLE_AS_OF}, now=now).bundle
        local = {
            e["fullUrl"]: f"{e['resource']['resourceType']}/{e['resource']['id']}"
            for e in bundle["entry"]
        }
        kept = [e for e in bundle["entry"] if e["resource"]["resourceType"] != "OperationOutcome"]
        found += [(name, entry["resource"]) for entry in given["entry"]]
        found += [(name, _relative(_kept_targets(e["resource"], kept), local)) for e in kept]
    return found


def _kept_targets(resource: Json, kept: list[Json]) -> Json:
    """A Provenance names only the results that are examples too (no OperationOutcome)."""
    if resource["resourceType"] != "Provenance":
        return resource
    urls = {e["fullUrl"] for e in kept}
    return {**resource, "target": [t for t in resource["target"] if t["reference"] in urls]}


def _prefixed(bundle: Json, name: str) -> Json:
    """The sample with every resource id (and the fullUrls and references that name it)
    prefixed with the sample's name."""
    renamed: dict[str, str] = {}
    for entry in bundle["entry"]:
        resource = entry["resource"]
        old = f"{resource['resourceType']}/{resource['id']}"
        resource["id"] = f"{name}-{resource['id']}"
        renamed[old] = f"{resource['resourceType']}/{resource['id']}"
        if "fullUrl" in entry:
            entry["fullUrl"] = entry["fullUrl"].removesuffix(old) + renamed[old]
    return _rewritten(bundle, renamed)  # type: ignore[no-any-return]


def _relative(resource: Json, local: dict[str, str]) -> Json:
    """The result resource with its ``urn:uuid`` references as relative ``Type/id``."""
    return _rewritten(resource, local)  # type: ignore[no-any-return]


def _rewritten(node: Any, mapping: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {
            key: mapping.get(value, value)
            if key == "reference" and isinstance(value, str)
            else _rewritten(value, mapping)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_rewritten(value, mapping) for value in node]
    return node
