"""Errors of the FHIR adapter, each carrying what an OperationOutcome issue needs.

    DomainError (service.domain.errors)
    └── InputError                 the request body cannot be accepted
        ├── kind "invalid"/"structure"   not JSON, not FHIR, FHIR-invalid        -> 400
        ├── kind "too-costly"            over a configured limit                 -> 413
        ├── kind "not-supported"         unsupported content type                -> 415
        └── kind "processing"/"business-rule"  valid FHIR that cannot be evaluated -> 422

``service.api.errors`` maps ``kind`` to the HTTP status; nothing else does.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.domain.errors import DomainError

__all__ = ["InputError", "Problem"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One point to report: an OperationOutcome issue."""

    diagnostics: str
    expression: str | None = None


class InputError(DomainError):
    """A request body PainPath cannot accept, with one or more problems."""

    def __init__(self, kind: str, problems: list[Problem]) -> None:
        super().__init__("; ".join(p.diagnostics for p in problems))
        self.kind = kind
        self.problems = problems

    @classmethod
    def one(cls, kind: str, diagnostics: str, expression: str | None = None) -> InputError:
        """An error with a single problem."""
        return cls(kind, [Problem(diagnostics, expression)])
