"""Errors of the FHIR adapter, each carrying what an OperationOutcome issue needs.

    DomainError (service.domain.errors)
    └── InputError                 the request body cannot be accepted
        ├── kind "invalid"/"structure"   not JSON, not FHIR, FHIR-invalid        -> 400
        ├── kind "too-costly"            over a configured limit                 -> 413
        ├── kind "not-supported"         unsupported content type                -> 415
        ├── kind "not-acceptable"        Accept/_format admits no FHIR JSON      -> 406
        ├── kind "security"              a notification without its token        -> 401
        └── kind "processing"/"business-rule"  valid FHIR that cannot be evaluated -> 422

``service.api.errors`` maps ``kind`` to the HTTP status; nothing else does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from service.domain.errors import DomainError

__all__ = ["InputError", "InputErrorKind", "Problem"]

# The closed set of kinds: an OperationOutcome issue type each (http://hl7.org/fhir/issue-type),
# mapped to an HTTP status by service.api.errors.STATUS_BY_KIND (a test keeps both in step).
InputErrorKind = Literal[
    "invalid",
    "structure",
    "value",
    "too-costly",
    "not-supported",
    "not-acceptable",
    "processing",
    "business-rule",
    "security",
    "not-implemented",
]


@dataclass(frozen=True, slots=True)
class Problem:
    """One point to report: an OperationOutcome issue."""

    diagnostics: str
    expression: str | None = None


class InputError(DomainError):
    """A request body PainPath cannot accept, with one or more problems."""

    def __init__(self, kind: InputErrorKind, problems: list[Problem]) -> None:
        super().__init__("; ".join(p.diagnostics for p in problems))
        self.kind = kind
        self.problems = problems

    @classmethod
    def one(
        cls, kind: InputErrorKind, diagnostics: str, expression: str | None = None
    ) -> InputError:
        """An error with a single problem."""
        return cls(kind, [Problem(diagnostics, expression)])
