"""OperationOutcome builders (https://hl7.org/fhir/R4/operationoutcome.html)."""

from __future__ import annotations

from service.fhir.errors import InputError
from service.fhir.narrative import summary_narrative
from service.fhir.systems import cs
from service.fhir.types import Json

__all__ = ["from_error", "issue", "operation_outcome"]


def issue(
    severity: str,
    code: str,
    diagnostics: str,
    *,
    expression: str | None = None,
    detail: str | None = None,
) -> Json:
    """One OperationOutcome issue; ``detail`` adds a PainPath outcome code."""
    entry: Json = {"severity": severity, "code": code, "diagnostics": diagnostics}
    if detail:
        entry["details"] = {"coding": [{"system": cs("outcome"), "code": detail}]}
    if expression:
        entry["expression"] = [expression]
    return entry


def operation_outcome(rid: str | None, issues: list[Json]) -> Json:
    """An OperationOutcome resource; with an id (a result entry) it carries a narrative too."""
    outcome: Json = {"resourceType": "OperationOutcome"}
    if rid:
        outcome["id"] = rid
        lines = [f"{i['severity']}: {i['diagnostics']}" for i in issues]
        outcome["text"] = summary_narrative("PainPath messages about this evaluation", lines)
    outcome["issue"] = issues
    return outcome


def from_error(error: InputError) -> Json:
    """The OperationOutcome body of an error response."""
    issue_code = {"not-implemented": "not-supported", "not-acceptable": "not-supported"}.get(
        error.kind, error.kind
    )
    return operation_outcome(
        None,
        [
            issue("error", issue_code, p.diagnostics, expression=p.expression)
            for p in error.problems
        ],
    )
