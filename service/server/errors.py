"""Errors of the outbound FHIR server client, each carrying what an OperationOutcome needs.

    UpstreamError              the FHIR server could not give a usable answer        -> 502
    ├── UpstreamTimeoutError        no answer within the configured timeout (retries spent) -> 504
    ├── UpstreamUnavailableError    connection refused/reset/dropped (retries spent)      -> 502
    ├── UpstreamStatusError    an HTTP error status (with its OperationOutcome)      -> 502
    │   └── UpstreamNotFoundError   404/410 on a read the caller asked for by id          -> 404
    └── UpstreamAuthError      no token could be obtained (SMART Backend Services)   -> 502

``url`` never carries a query string (search parameters can hold identifiers, and tokens must
never be logged); ``outcome`` is the upstream OperationOutcome when the server sent one.
``service.api.errors`` maps these to HTTP answers; nothing else does.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from service.fhir.types import Json

__all__ = [
    "UpstreamAuthError",
    "UpstreamError",
    "UpstreamNotFoundError",
    "UpstreamStatusError",
    "UpstreamTimeoutError",
    "UpstreamUnavailableError",
    "redact_url",
]


def redact_url(url: str) -> str:
    """The URL without its query string, fragment or user info (safe to log and to show)."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class UpstreamError(Exception):
    """The FHIR server failed; ``describe()`` is the text shown to PainPath's caller."""

    def __init__(
        self,
        message: str,
        *,
        request: tuple[str, str] = ("GET", ""),
        status: int | None = None,
        outcome: Json | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.method = request[0]
        self.url = redact_url(request[1]) if request[1] else ""
        self.status = status
        self.outcome = outcome
        self.attempts = attempts

    def upstream_diagnostics(self) -> list[str]:
        """The diagnostics of the upstream OperationOutcome's issues (may be empty)."""
        if not isinstance(self.outcome, dict):
            return []
        issues = self.outcome.get("issue")
        found = []
        for item in issues if isinstance(issues, list) else []:
            if isinstance(item, dict):
                text = item.get("diagnostics") or (item.get("details") or {}).get("text")
                if text:
                    found.append(str(text))
        return found

    def describe(self) -> str:
        """One line naming the upstream request and what went wrong."""
        where = f"{self.method} {self.url}".strip()
        tries = f" after {self.attempts} attempts" if self.attempts > 1 else ""
        status = f" (HTTP {self.status})" if self.status else ""
        said = "; ".join(self.upstream_diagnostics())
        return f"FHIR server: {where}: {self.message}{status}{tries}" + (
            f"; the server said: {said}" if said else ""
        )


class UpstreamTimeoutError(UpstreamError):
    """The FHIR server did not answer in time."""


class UpstreamUnavailableError(UpstreamError):
    """The FHIR server could not be reached or dropped the connection."""


class UpstreamStatusError(UpstreamError):
    """The FHIR server answered with an HTTP error status."""


class UpstreamNotFoundError(UpstreamStatusError):
    """The resource asked for by id does not exist on the FHIR server (404/410)."""


class UpstreamAuthError(UpstreamError):
    """No access token could be obtained for the FHIR server."""
