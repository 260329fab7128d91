"""Differential elements and the snapshot generated from them over a base R4 snapshot.

Profiling rules followed (https://hl7.org/fhir/R4/profiling.html#snapshot,
https://hl7.org/fhir/R4/elementdefinition.html#interpretation):

- every base element appears once, in base order, with the differential's constraints merged in
  (cardinality, types, pattern/fixed values, bindings, mustSupport, text);
- a sliced element keeps its own children first; its slices follow, each a copy of the sliced
  element (``sliceName``, id ``<element>:<slice>``) followed by copies of its children;
- every differential element must land on a base element: a typo is an error, not a no-op.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator

from tools.conformance_package.common import Json

__all__ = ["SnapshotError", "element", "snapshot"]

_MERGED = (
    "short",
    "definition",
    "comment",
    "slicing",
    "min",
    "max",
    "type",
    "patternCodeableConcept",
    "patternCode",
    "binding",
    "mustSupport",
)


class SnapshotError(ValueError):
    """A differential element that does not constrain any base element."""


def element(eid: str, **constraints: object) -> Json:
    """A differential element: id ``Observation.component:certainty.code`` and its constraints."""
    path = re.sub(r":[^.]+", "", eid)
    found: Json = {"id": eid, "path": path}
    last = eid.rsplit(".", 1)[-1]
    if ":" in last:
        found["sliceName"] = last.split(":", 1)[1]
    found.update(constraints)
    return found


def _children(base: list[Json], parent: str) -> list[Json]:
    prefix = parent + "."
    return [e for e in base if e["id"].startswith(prefix) and "." not in e["id"][len(prefix) :]]


def _merge(base: Json, eid: str, diff: Json | None) -> Json:
    merged = copy.deepcopy(base)
    merged["id"] = eid
    if ":" in eid.rsplit(".", 1)[-1]:
        merged.pop("slicing", None)
        merged["sliceName"] = eid.rsplit(":", 1)[1]
    for key in _MERGED:
        if diff is not None and key in diff:
            merged[key] = copy.deepcopy(diff[key])
    return _ordered(merged)


def _ordered(merged: Json) -> Json:
    """Keys in ElementDefinition order (id, path, sliceName first), as published snapshots."""
    head = {
        key: merged.pop(key) for key in ("id", "extension", "path", "sliceName") if key in merged
    }
    return {**head, **merged}


def _walk(base: list[Json], node: Json, eid: str, diff: dict[str, Json]) -> Iterator[Json]:
    yield _merge(node, eid, diff.get(eid))
    for child in _children(base, node["id"]):
        name = child["id"].rsplit(".", 1)[1]
        yield from _walk(base, child, f"{eid}.{name}", diff)
    for slice_id in (
        key for key in diff if key.startswith(eid + ":") and "." not in key[len(eid) :]
    ):
        yield from _walk(base, node, slice_id, diff)


def snapshot(base: list[Json], differential: list[Json]) -> list[Json]:
    """The full snapshot of a profile whose differential constrains the base snapshot."""
    diff = {e["id"]: e for e in differential}
    elements = list(_walk(base, base[0], base[0]["id"], diff))
    unknown = sorted(set(diff) - {e["id"] for e in elements})
    if unknown:
        raise SnapshotError(f"differential elements match no base element: {unknown}")
    return elements
