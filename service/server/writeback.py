"""Write-back of one patient's results to a FHIR server as ONE transaction (no I/O here).

Design (FHIR R4 transactions, https://hl7.org/fhir/R4/http.html#transaction): every result is
written with ``PUT {type}/{id}`` at a deterministic id equal to its PainPath result key
(``emit.KEY_SYSTEM``/``emit.result_key``: patient + rule-set version + role). Unlike conditional
create/update on the identifier, this

- needs no search parameter on the server (sekmet-fhir 0.1.1 has none for DetectedIssue),
- cannot create duplicates when two writers race (hapi-fhir #3141: parallel conditional creates
  duplicate; #8183: duplicate conditional PUTs in one transaction are dropped),
- makes the whole transaction idempotent, so it may be retried after a timeout.

A re-run on the same rule-set version therefore updates the same resources in place. Results
that the new run no longer produces (an earlier rule-set version's plan, a proposal or red flag
that no longer applies, a plan written by other means) are found by the caller on the server and
passed in as ``existing``; the transaction moves each live one to a superseded status
(CarePlan/ServiceRequest ``revoked``, DetectedIssue/Observation ``cancelled``), so exactly one
PainPath CarePlan per patient stays live. The new CarePlan names the plans it ``replaces``.

Specifications: https://hl7.org/fhir/R4/http.html#transaction,
https://hl7.org/fhir/R4/bundle.html#references (urn:uuid resolution).
"""

from __future__ import annotations

import copy
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from service.fhir.emit import IDENTIFIER_SYSTEM, KEY_SYSTEM, result_key
from service.fhir.types import Json

__all__ = [
    "LIVE_STATUSES",
    "SUPERSEDED_STATUS",
    "WritePlan",
    "build_writeback",
    "is_painpath_result",
    "live_results",
    "targets_by_type",
]

SUPERSEDED_STATUS = {
    "CarePlan": "revoked",
    "ServiceRequest": "revoked",
    "DetectedIssue": "cancelled",
    "Observation": "cancelled",
    "DocumentReference": "superseded",
}
_CLINICAL_LIVE = frozenset({"registered", "preliminary", "final", "amended", "corrected"})
LIVE_STATUSES = {
    "CarePlan": frozenset({"draft", "active", "on-hold"}),
    "ServiceRequest": frozenset({"draft", "active", "on-hold"}),
    "DetectedIssue": _CLINICAL_LIVE,
    "Observation": _CLINICAL_LIVE,
    "DocumentReference": frozenset({"current"}),
}


@dataclass(frozen=True, slots=True)
class WritePlan:
    """The transaction Bundle and what it does."""

    transaction: Json
    written: list[str] = field(default_factory=list)  # "Type/id" written or updated
    superseded: list[str] = field(default_factory=list)  # "Type/id" moved to a superseded status

    @property
    def care_plan(self) -> str | None:
        """``CarePlan/{id}`` of the live plan this write leaves, if any."""
        return next((ref for ref in self.written if ref.startswith("CarePlan/")), None)


def is_painpath_result(resource: Json) -> bool:
    """True for a resource PainPath produced (it carries the PainPath result identifier)."""
    return any(
        isinstance(i, dict) and i.get("system") in {IDENTIFIER_SYSTEM, KEY_SYSTEM}
        for i in resource.get("identifier", ()) or ()
    )


def live_results(resources: list[Json]) -> list[Json]:
    """The PainPath results among ``resources`` that are still live (not yet superseded)."""
    return [
        r
        for r in resources
        if r.get("resourceType") in LIVE_STATUSES
        and is_painpath_result(r)
        and r.get("status") in LIVE_STATUSES[r["resourceType"]]
    ]


def targets_by_type(provenances: list[Json]) -> dict[str, set[str]]:
    """``{type: {id, …}}`` of every relative ``Type/id`` a set of Provenances targets."""
    found: dict[str, set[str]] = defaultdict(set)
    for provenance in provenances:
        for target in provenance.get("target", ()):
            parts = str((target or {}).get("reference", "")).split("/_history/")[0].split("/")
            if len(parts) >= 2 and parts[-2] in SUPERSEDED_STATUS:
                found[parts[-2]].add(parts[-1])
    return dict(found)


def _server_id(resource: Json, subject: str, ruleset_version: str) -> str:
    for identifier in resource.get("identifier", ()):
        if identifier.get("system") == KEY_SYSTEM:
            return str(identifier["value"])
    # Provenance has no identifier element in R4: same derivation, its own role.
    return result_key(subject, ruleset_version, resource["resourceType"].lower())


def _unwritten(node: Any, mapping: dict[str, str]) -> bool:
    ref = node.get("reference") if isinstance(node, dict) else None
    return isinstance(ref, str) and ref.startswith("urn:uuid:") and ref not in mapping


def _rewrite(node: Any, mapping: dict[str, str]) -> None:
    """Replace every ``reference`` found in ``mapping`` (urn:uuid -> Type/id), in place, and drop
    list items referring to a result that is not written (the OperationOutcome a Provenance
    targets: not a storable resource)."""
    if isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str) and ref in mapping:
            node["reference"] = mapping[ref]
        for value in node.values():
            _rewrite(value, mapping)
    elif isinstance(node, list):
        node[:] = [value for value in node if not _unwritten(value, mapping)]
        for value in node:
            _rewrite(value, mapping)


def _superseded(resource: Json) -> Json:
    stale = copy.deepcopy(resource)
    stale["status"] = SUPERSEDED_STATUS[stale["resourceType"]]
    stale.pop("meta", None)  # versionId/lastUpdated belong to the server
    return stale


def _entry(base: str, resource: Json) -> Json:
    ref = f"{resource['resourceType']}/{resource['id']}"
    return {
        "fullUrl": f"{base}/{ref}",
        "resource": resource,
        "request": {"method": "PUT", "url": ref},
    }


def build_writeback(
    results: list[Json], *, subject: str, ruleset_version: str, base: str, existing: list[Json]
) -> WritePlan:
    """The transaction writing ``results`` (one patient's result resources, urn:uuid-linked) and
    superseding whatever live PainPath result in ``existing`` it does not rewrite."""
    base = base.rstrip("/")
    fresh = [copy.deepcopy(r) for r in results if r.get("resourceType") not in {"OperationOutcome"}]
    mapping: dict[str, str] = {}
    for resource in fresh:
        sid = _server_id(resource, subject, ruleset_version)
        mapping[f"urn:uuid:{resource['id']}"] = f"{resource['resourceType']}/{sid}"
        resource["id"] = sid
    for resource in fresh:
        _rewrite(resource, mapping)
    written = [f"{r['resourceType']}/{r['id']}" for r in fresh]
    stale = [r for r in live_results(existing) if f"{r['resourceType']}/{r['id']}" not in written]
    stale = list({f"{r['resourceType']}/{r['id']}": r for r in stale}.values())
    replaced = [
        {"reference": f"CarePlan/{r['id']}"} for r in stale if r["resourceType"] == "CarePlan"
    ]
    for resource in fresh:
        if resource["resourceType"] == "CarePlan" and replaced:
            resource["replaces"] = replaced
    entries = [_entry(base, r) for r in fresh] + [_entry(base, _superseded(r)) for r in stale]
    return WritePlan(
        {"resourceType": "Bundle", "type": "transaction", "entry": entries},
        written,
        [f"{r['resourceType']}/{r['id']}" for r in stale],
    )
